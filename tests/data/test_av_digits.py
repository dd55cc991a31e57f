"""av-digits: shapes, sizes, determinism, the informativeness knobs, leakage, and errors."""
import numpy as np
import pytest
import torch

import mmlib as mm
from mmlib.data.av_digits import load_av_digits, log_spectrogram, render_frames

N = 300  # small but enough for class means (180 / 60 / 60)


def ncm_accuracy(data, modality):
    """Nearest-class-mean classifier fitted on train, scored on test."""
    xtr, xte = data.train.inputs[modality].flatten(1), data.test.inputs[modality].flatten(1)
    means = torch.stack([xtr[data.train.y == c].mean(0) for c in range(data.num_classes)])
    pred = torch.cdist(xte, means).argmin(1)
    return float((pred == data.test.y).float().mean())


@pytest.fixture(scope="module")
def small():
    return mm.load_dataset("av-digits", n_samples=N)


def test_default_shapes(small):
    assert small.modalities == ("audio", "visual")
    # n_fft 128 -> 65 bins; 0.128 s at 8 kHz = 1024 samples, hop 64, centred -> 17 frames
    assert small.input_shape("audio") == (1, 65, 17)
    assert small.input_shape("visual") == (1, 12, 12)
    for s in small.splits().values():
        assert s.inputs["audio"].dtype == torch.float32 and s.inputs["visual"].dtype == torch.float32


def test_split_sizes_follow_fractions(small):
    assert (len(small.train), len(small.val), len(small.test)) == (180, 60, 60)
    d = load_av_digits(n_samples=100, split=(0.5, 0.3, 0.2))
    assert (len(d.train), len(d.val), len(d.test)) == (50, 30, 20)


def test_each_split_has_at_least_ten_samples():
    d = load_av_digits(n_samples=30)  # 0.2 * 30 = 6, raised to 10
    assert (len(d.train), len(d.val), len(d.test)) == (18, 10, 10)


def test_labels_in_range_and_metadata(small):
    for s in small.splits().values():
        assert s.y.dtype == torch.long
        assert int(s.y.min()) >= 0 and int(s.y.max()) <= 9
        assert s.index.tolist() == list(range(len(s)))
    assert small.num_classes == 10
    assert small.class_names == [str(c) for c in range(10)]
    assert small.encoders["audio"] == ("cnn", {"in_channels": 1, "width": 8, "out_dim": 32})
    assert small.info["data_seed"] == 0 and small.info["audio_missing"] == 0.2
    assert small.weak == "visual"


def test_audio_is_standardised_with_training_statistics(small):
    a = small.train.inputs["audio"]
    assert abs(float(a.mean())) < 1e-4
    assert abs(float(a.std()) - 1.0) < 1e-4


def test_same_seed_same_tensors_other_seed_other_tensors(small):
    again = load_av_digits(n_samples=N, data_seed=0)
    other = load_av_digits(n_samples=N, data_seed=1)
    for name, s in small.splits().items():
        for m in small.modalities:
            assert torch.equal(s.inputs[m], again.splits()[name].inputs[m])
            assert not torch.equal(s.inputs[m], other.splits()[name].inputs[m])
        assert torch.equal(s.y, again.splits()[name].y)
    assert not torch.equal(small.train.y, other.train.y)


def test_visual_missing_everywhere_without_noise_gives_blank_frames():
    d = load_av_digits(n_samples=60, visual_missing=1.0, visual_noise=0.0)
    for s in d.splits().values():
        assert torch.count_nonzero(s.inputs["visual"]) == 0


def test_clean_visual_frames_hold_the_digit_scaled_to_unit_range():
    d = load_av_digits(n_samples=60, visual_missing=0.0, visual_noise=0.0, frame_size=8)
    v = d.train.inputs["visual"]
    assert float(v.min()) == 0.0 and float(v.max()) == 1.0  # digits' pixels are 0..16, divided by 16
    assert torch.all(v.flatten(1).sum(1) > 0)


def test_clean_audio_separates_the_classes():
    d = load_av_digits(n_samples=N, audio_missing=0.0, audio_noise=0.05)
    assert ncm_accuracy(d, "audio") > 0.9


def test_missing_audio_carries_no_class_information():
    d = load_av_digits(n_samples=N, audio_missing=1.0, audio_noise=0.05)
    assert ncm_accuracy(d, "audio") < 0.3  # chance is 0.1


def test_clean_aligned_frames_separate_the_classes():
    d = load_av_digits(n_samples=N, visual_missing=0.0, visual_noise=0.0, frame_size=8)
    assert ncm_accuracy(d, "visual") > 0.8


def test_no_test_frame_appears_in_train():
    # sklearn's 1797 digits images are pairwise distinct, so with frame_size=8 (no offset)
    # and no noise, a shared frame could only come from an image in both splits.
    d = load_av_digits(n_samples=N, frame_size=8, visual_noise=0.0, visual_missing=0.0)
    train = {tuple(f.flatten().tolist()) for f in d.train.inputs["visual"]}
    for split in (d.val, d.test):
        frames = [tuple(f.flatten().tolist()) for f in split.inputs["visual"]]
        assert not train.intersection(frames)


def test_render_frames_places_the_image_inside_the_frame():
    img = np.arange(64, dtype=np.float32).reshape(1, 8, 8) % 16 + 1  # no zero pixel
    frames = render_frames(img, 10, 0.0, np.ones(1, dtype=np.float32), np.random.default_rng(0))
    assert frames.shape == (1, 1, 10, 10)
    nz = torch.nonzero(frames[0, 0])
    r0, c0 = nz.min(0).values.tolist()
    assert nz.max(0).values.tolist() == [r0 + 7, c0 + 7]
    assert torch.allclose(frames[0, 0, r0:r0 + 8, c0:c0 + 8], torch.from_numpy(img[0] / 16.0))


def test_log_spectrogram_of_silence_is_log_of_the_floor():
    spec = log_spectrogram(torch.zeros(2, 256), n_fft=64, hop=32)
    assert spec.shape == (2, 1, 33, 9)
    assert torch.allclose(spec, torch.full_like(spec, float(np.log(1e-3))))


@pytest.mark.parametrize("kwargs,match", [
    ({"visual_missing": 1.5}, r"visual_missing must be a fraction in \[0, 1\], got 1.5"),
    ({"audio_missing": -0.1}, r"audio_missing must be a fraction in \[0, 1\], got -0.1"),
    ({"n_samples": 29}, r"n_samples must be at least 30 \(3 splits x 10 classes\), got 29"),
    ({"frame_size": 7}, r"frame_size must be >= 8 \(the digits are 8x8\), got 7"),
    ({"split": (0.7, 0.2, 0.2)}, r"split fractions must be three positive numbers summing to 1"),
])
def test_bad_arguments_are_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_av_digits(**{"n_samples": 60, **kwargs})


def test_unknown_argument_through_load_dataset_lists_valid_ones():
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['n_sample'\]; valid: .*'n_samples'"):
        mm.load_dataset("av-digits", n_sample=100)


@pytest.mark.parametrize("kwargs,kind,match", [
    ({"n_samples": 100.0}, TypeError, r"n_samples must be an integer, got 100\.0 \(float\)"),
    ({"n_samples": "100"}, TypeError, r"n_samples must be an integer, got '100' \(str\); pass a number"),
    ({"frame_size": 10.5}, TypeError, r"frame_size must be an integer >= 8 \(the digits are 8x8\), got 10\.5"),
    ({"visual_noise": -0.1}, ValueError, r"visual_noise must be a finite number >= 0, got -0\.1"),
    ({"audio_noise": "0.4"}, TypeError, r"audio_noise must be a real number >= 0, got '0\.4' \(str\)"),
    ({"visual_missing": "0.1"}, TypeError, r"visual_missing must be a real number, got '0\.1' \(str\)"),
    ({"data_seed": -1}, ValueError, r"data_seed must be >= 0, got -1"),
    ({"base_hz": 0}, ValueError, r"base_hz must be a finite number > 0, got 0"),
    ({"hop": 0}, ValueError, r"hop must be >= 1, got 0"),
    ({"width": True}, TypeError, r"width must be an integer >= 1, got True \(bool\)"),
    ({"n_fft": 4096}, ValueError, r"n_fft must be below twice the clip length \(sample_rate x duration = 1024"),
    ({"split": ("a", 0.5, 0.5)}, ValueError, r"split fractions must be three positive numbers summing to 1"),
])
def test_argument_types_and_ranges_are_checked_before_generating(kwargs, kind, match):
    with pytest.raises(kind, match=match):
        load_av_digits(**{"n_samples": 60, **kwargs})


def test_silent_audio_stays_finite():
    d = mm.load_dataset("av-digits", n_samples=60, audio_missing=1.0, audio_noise=0.0)  # checks finiteness
    audio = torch.cat([s.inputs["audio"] for s in d.splits().values()])
    assert torch.isfinite(audio).all() and len(audio.unique()) == 1  # constant: no class information
