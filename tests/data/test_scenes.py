"""av-solo / av-cocktail: shapes, ground truth, silent objects, disjoint pools, determinism, errors."""
import numpy as np
import pytest
import torch

import mmlib as mm
from mmlib.data.scenes import INK, SceneSplit, box_masks, ink_box, load_av_cocktail, load_av_solo, mix_audio


@pytest.fixture(scope="module")
def solo():
    return load_av_solo(n_scenes=100)


@pytest.fixture(scope="module")
def cocktail():
    return load_av_cocktail(n_scenes=100)


def test_shapes_and_sizes(solo, cocktail):
    # n_fft 256 -> 129 bins; 0.128 s at 8 kHz = 1024 samples, hop 128, centred -> 9 frames
    assert solo.input_shape("audio") == cocktail.input_shape("audio") == (129, 9)
    assert solo.input_shape("visual") == (1, 20, 20) and cocktail.input_shape("visual") == (1, 40, 40)
    assert [len(s) for s in solo.splits().values()] == [60, 20, 20]
    assert solo.train.truth["boxes"].shape == (60, 1, 4) and cocktail.train.truth["boxes"].shape == (60, 4, 4)
    assert isinstance(solo.test, SceneSplit) and solo.name == "av-solo" and cocktail.name == "av-cocktail"
    assert mm.load_dataset("av-solo", n_scenes=100).info["kind"] == "solo"


def test_cocktail_layout(cocktail):
    for part in cocktail.splits().values():
        t = part.truth
        assert all(len(set(row.tolist())) == 4 for row in t["classes"])  # four different classes
        assert (t["sounding"].sum(1) == 2).all()
        # y is the lowest sounding class (a placeholder no training step reads)
        assert torch.equal(part.y, torch.where(t["sounding"], t["classes"], 10).amin(1))
        # each object lies inside its own 20 x 20 quadrant
        b = t["boxes"]
        for j in range(4):
            r, c = 20 * (j // 2), 20 * (j % 2)
            assert (b[:, j, 0] >= r).all() and (b[:, j, 2] <= r + 20).all()
            assert (b[:, j, 1] >= c).all() and (b[:, j, 3] <= c + 20).all()


def test_solo_classes_are_balanced_and_y_is_the_object(solo):
    assert torch.equal(solo.train.y, solo.train.truth["classes"][:, 0])
    assert torch.bincount(solo.train.y, minlength=10).tolist() == [6] * 10
    assert solo.train.truth["sounding"].all()


def test_boxes_are_the_tight_ink_boxes():
    d = load_av_cocktail(n_scenes=30, visual_noise=0.0)
    x = d.train.inputs["visual"][:, 0]
    boxes = d.train.truth["boxes"]
    inside = box_masks(boxes, 40).any(1)
    assert not ((x >= INK) & ~inside).any()  # no ink outside the boxes
    for i in range(len(x)):
        for r0, c0, r1, c1 in boxes[i].tolist():
            patch = x[i, r0:r1, c0:c1] >= INK
            assert patch[0].any() and patch[-1].any() and patch[:, 0].any() and patch[:, -1].any()


def test_ink_box_by_hand():
    patch = np.zeros((6, 6), dtype=np.float32)
    patch[1, 2] = patch[3, 4] = 0.9
    patch[5, 0] = INK / 2  # faint: not ink
    assert ink_box(patch) == (1, 2, 4, 5)
    assert ink_box(np.zeros((3, 3))) == (0, 0, 3, 3)


def test_box_masks_by_hand():
    m = box_masks(torch.tensor([[1, 2, 3, 5]]), (4, 6))[0]
    expected = torch.zeros(4, 6, dtype=torch.bool)
    expected[1:3, 2:5] = True
    assert torch.equal(m, expected)


def test_a_silent_object_adds_no_energy():
    tone = {"sample_rate": 8000, "duration": 0.128, "base_hz": 300.0, "semitones": 2.0, "pitch_jitter": 0.1}
    sounding = np.array([[True, False, True, False]])

    def wave(classes, flags=sounding, noise=0.0):
        return mix_audio(np.array([classes]), flags, np.random.default_rng(7), noise, **tone)

    a = wave([0, 5, 3, 8])
    # the silent objects' classes do not change a single sample; a sounding one's does
    assert torch.equal(a, wave([0, 7, 3, 1]))
    assert not torch.equal(a, wave([0, 5, 4, 8]))
    # making a silent object sound adds energy; nothing sounding is silence
    assert float((wave([0, 5, 3, 8], np.array([[True, True, True, False]])) - a).pow(2).sum()) > 1.0
    assert float(wave([0, 5, 3, 8], np.zeros((1, 4), dtype=bool)).abs().max()) == 0.0
    # the energy sits at the sounding classes' fundamentals
    spectrum = torch.fft.rfft(a[0].double()).abs()
    hz = np.fft.rfftfreq(1024, 1 / 8000)
    at = lambda c: float(spectrum[np.argmin(np.abs(hz - 300 * 2 ** (2 * c / 12)))])  # noqa: E731
    assert min(at(0), at(3)) > 20 * max(at(5), at(8))


def test_image_pools_are_disjoint_across_splits(solo, cocktail):
    used = {name: set(solo.splits()[name].truth["image"].flatten().tolist())
            | set(cocktail.splits()[name].truth["image"].flatten().tolist()) for name in ("train", "val", "test")}
    assert not used["train"] & used["test"] and not used["train"] & used["val"] and not used["val"] & used["test"]


def test_deterministic_in_its_arguments(solo):
    again = load_av_solo(n_scenes=100)
    for a, b in zip(solo.splits().values(), again.splits().values()):
        assert torch.equal(a.inputs["visual"], b.inputs["visual"]) and torch.equal(a.inputs["audio"], b.inputs["audio"])
        assert all(torch.equal(a.truth[k], b.truth[k]) for k in a.truth)
    other = load_av_solo(n_scenes=100, data_seed=1)
    assert not torch.equal(solo.train.inputs["visual"], other.train.inputs["visual"])


def test_audio_is_standardised_with_training_statistics(solo):
    a = solo.train.inputs["audio"]
    assert abs(float(a.mean())) < 1e-4 and abs(float(a.std()) - 1.0) < 1e-3


def test_subset_keeps_the_truth(cocktail):
    sub = cocktail.test.subset(torch.tensor([3, 1]))
    assert isinstance(sub, SceneSplit)
    assert torch.equal(sub.truth["boxes"], cocktail.test.truth["boxes"][[3, 1]])
    assert torch.equal(sub.inputs["visual"], cocktail.test.inputs["visual"][[3, 1]])


@pytest.mark.parametrize("kwargs, match", [
    ({"object_size": 15}, "object_size must be at most 14"),
    ({"frame_size": 10}, r"frame_size must be >= 12 \(object_size=12 must fit"),
    ({"n_scenes": 10}, "n_scenes must be >= 30"),
    ({"semitones": 4.0}, "Nyquist"),
    ({"visual_noise": -1.0}, "visual_noise"),
])
def test_bad_arguments_fail_first(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        load_av_solo(**kwargs)


def test_bad_num_sounding():
    with pytest.raises(ValueError, match="num_sounding must be at most 4"):
        load_av_cocktail(num_sounding=5)
    with pytest.raises(TypeError, match="num_sounding"):
        load_av_cocktail(num_sounding=1.5)
