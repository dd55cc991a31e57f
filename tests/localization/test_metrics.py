"""IoU / AUC / CIoU / NSA on hand-made maps and masks."""
import pytest
import torch

from mmlib.localization.metrics import (binarize, class_ious, cocktail_scores, iou, no_sound_area, object_peaks,
                                        solo_scores, success_auc, success_rate, truth_masks)


def mask(h, w, r0, c0, r1, c1):
    m = torch.zeros(h, w, dtype=torch.bool)
    m[r0:r1, c0:c1] = True
    return m


def test_binarize_is_relative_to_each_maps_max_and_strict():
    maps = torch.tensor([[[1.0, 0.5], [0.1, 0.0]], [[4.0, 2.0], [0.4, 0.3]]])
    assert binarize(maps, 0.1).tolist() == [[[True, True], [False, False]], [[True, True], [False, False]]]
    assert binarize(maps, 0.5).tolist() == [[[True, False], [False, False]], [[True, False], [False, False]]]
    assert not binarize(torch.zeros(1, 3, 3), 0.1).any()  # an all-zero map localizes nothing


def test_iou_perfect_empty_half_disjoint():
    gt = mask(4, 4, 0, 0, 2, 4)  # 8 pixels
    assert float(iou(gt, gt)) == 1.0
    assert float(iou(torch.zeros_like(gt), gt)) == 0.0
    assert float(iou(mask(4, 4, 0, 0, 1, 4), gt)) == 0.5  # half of gt, inside it
    assert float(iou(mask(4, 4, 1, 0, 3, 4), gt)) == pytest.approx(4 / 12)  # half overlap, shifted
    assert float(iou(mask(4, 4, 2, 0, 4, 4), gt)) == 0.0
    assert float(iou(torch.zeros_like(gt), torch.zeros_like(gt))) == 0.0


def test_success_rate_counts_ties():
    ious = torch.tensor([0.3, 0.5, 0.7, 0.1], dtype=torch.float64)
    assert success_rate(ious, 0.5) == 0.5
    assert success_rate(ious, 0.3) == 0.75


@pytest.mark.parametrize("value, area", [(1.0, 1.0), (0.0, 0.025), (0.5, 0.525)])
def test_auc_by_hand(value, area):
    # all IoUs equal: the success rate is 1 for t <= value and 0 after; t = 0 always succeeds
    assert success_auc(torch.full((5,), value, dtype=torch.float64)) == pytest.approx(area)


def test_solo_scores_against_the_union_of_boxes():
    truth = {"boxes": torch.tensor([[[0, 0, 2, 2]], [[2, 2, 4, 4]]])}
    maps = torch.zeros(2, 4, 4)
    maps[0, 0:2, 0:2] = 1.0  # perfect
    maps[1, 0:2, 0:2] = 1.0  # wrong place
    s = solo_scores(maps, truth)
    assert s["iou@0.5"] == 0.5 and s["miou"] == 0.5
    assert s["auc"] == pytest.approx((1.0 + 0.025) / 2)
    maps[1] += 0.2  # the background is now above 0.1 x max: the whole frame, IoU 4 / 16
    assert solo_scores(maps, truth)["miou"] == pytest.approx((1 + 0.25) / 2)


def scene():
    """One 4 x 4 mosaic: class 1 top-left (sounding), class 2 top-right (sounding), class 3 bottom-left (silent)."""
    truth = {"classes": torch.tensor([[1, 2, 3]]), "sounding": torch.tensor([[True, True, False]]),
             "boxes": torch.tensor([[[0, 0, 2, 2], [0, 2, 2, 4], [2, 0, 4, 2]]])}
    return truth


def test_truth_masks_per_class():
    masks, sounding = truth_masks(scene(), 4, 5)
    assert sounding.tolist() == [[False, True, True, False, False]]
    assert torch.equal(masks[0, 1], mask(4, 4, 0, 0, 2, 2)) and torch.equal(masks[0, 3], mask(4, 4, 2, 0, 4, 2))
    assert not masks[0, 0].any() and not masks[0, 4].any()


def test_ciou_averages_over_sounding_classes_only():
    maps = torch.zeros(1, 5, 4, 4)
    maps[0, 1, 0:2, 0:2] = 1.0  # class 1 perfect
    maps[0, 2, 0:1, 2:4] = 1.0  # class 2: half its box
    maps[0, 3] = 1.0  # the silent class lights everything: CIoU ignores it
    masks, sounding = truth_masks(scene(), 4, 5)
    assert class_ious(maps, masks, sounding).tolist() == [pytest.approx(0.75)]


def test_nsa_over_non_sounding_channels():
    maps = torch.zeros(1, 5, 4, 4)
    maps[0, 1] = maps[0, 2] = 1.0  # sounding channels do not count
    _, sounding = truth_masks(scene(), 4, 5)
    assert no_sound_area(maps, sounding).tolist() == [1.0]
    maps[0, 3] = 0.5  # the silent object's channel is lit everywhere: one of three quiet channels fails
    assert no_sound_area(maps, sounding).tolist() == [pytest.approx(2 / 3)]
    maps[0, 0, :2] = 0.2  # exactly 0.2 counts as quiet; above does not
    assert no_sound_area(maps, sounding).tolist() == [pytest.approx(2 / 3)]
    maps[0, 0, :2] = 0.21
    assert no_sound_area(maps, sounding).tolist() == [pytest.approx((0.5 + 0 + 1) / 3)]


def test_cocktail_scores():
    maps = torch.zeros(1, 5, 4, 4)
    maps[0, 1, 0:2, 0:2] = 1.0
    maps[0, 2, 0:1, 2:4] = 1.0
    s = cocktail_scores(maps, scene())
    assert s["ciou@0.3"] == 1.0 and s["ciou@0.5"] == 1.0 and s["nsa"] == 1.0
    assert s["auc"] == pytest.approx(0.775)  # CIoU 0.75: success up to t = 0.75, then a 0.05-wide triangle


def test_object_peaks_by_hand():
    maps = torch.zeros(1, 4, 4)
    maps[0, 0, 1] = 0.9  # inside class 1's box
    maps[0, 3, 3] = 0.7  # outside every box
    maps[0, 2, 1] = 0.4  # inside the silent class 3's box
    assert object_peaks(maps, scene()).tolist() == [[pytest.approx(0.9), 0.0, pytest.approx(0.4)]]
