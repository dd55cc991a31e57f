"""Selector interface: input checks, the joint distance's feature map, nearest-unused matching."""
import pytest
import torch
import torch.nn.functional as F

import mmlib as mm
from mmlib.active.selection.base import (alignment, check_budget, check_embeddings, nearest_unused,
                                         pair_features)


def unit(n, d, seed):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=1)


def test_joint_features_give_the_mean_of_unimodal_and_cross_distances():
    u, w = unit(7, 4, 0), unit(7, 4, 1)
    phi = pair_features({"a": u, "b": w})
    d_a, d_b = 1 - u @ u.T, 1 - w @ w.T
    d_x = 1 - 0.5 * (u @ w.T + w @ u.T)
    assert torch.allclose(1 - phi @ phi.T, (d_a + d_b + d_x) / 3, atol=1e-6)
    assert torch.allclose((1 - phi @ phi.T).diagonal(), (1 - (u * w).sum(1)) / 3, atol=1e-6)


def test_joint_features_for_three_modalities_and_single_views():
    e = {m: unit(5, 3, i) for i, m in enumerate("abc")}
    phi = pair_features(e)
    uni = sum(e[m] @ e[m].T for m in "abc")
    cross = sum(0.5 * (e[x] @ e[y].T + e[y] @ e[x].T) for x, y in [("a", "b"), ("a", "c"), ("b", "c")])
    assert torch.allclose(phi @ phi.T, (uni + cross) / 6, atol=1e-6)
    assert torch.equal(pair_features(e, "b"), e["b"])
    with pytest.raises(ValueError, match="unknown view 'd'"):
        pair_features(e, "d")


def test_alignment_is_the_paired_cosine():
    u, w = unit(4, 3, 0), unit(4, 3, 1)
    assert torch.allclose(alignment({"a": u, "b": w}), (u * w).sum(1))


@pytest.mark.parametrize("budget, error, match", [(0, ValueError, "at least 1"), (-2, ValueError, "at least 1"),
                                                  (11, ValueError, "exceeds the pool of 10"),
                                                  (2.0, TypeError, "budget must be"), (True, TypeError, "budget"),
                                                  ("5", TypeError, "budget")])
def test_bad_budgets_fail_with_a_clear_message(budget, error, match):
    with pytest.raises(error, match=match):
        check_budget(budget, 10)
    with pytest.raises(error, match=match):
        mm.SELECTORS.create("random").select({"a": unit(10, 2, 0), "b": unit(10, 2, 1)}, budget)


def test_bad_embeddings_fail_before_any_work():
    good = unit(6, 2, 0)
    with pytest.raises(TypeError, match="dict modality"):
        check_embeddings(good)
    with pytest.raises(ValueError, match="same pool"):
        check_embeddings({"a": good, "b": good[:5]})
    with pytest.raises(ValueError, match="2-D float"):
        check_embeddings({"a": good, "b": torch.ones(6, dtype=torch.long)})
    with pytest.raises(ValueError, match="NaN"):
        check_embeddings({"a": good, "b": good.clone().fill_(float("nan"))})
    assert torch.allclose(check_embeddings({"a": 3 * good})["a"], good)


def test_nearest_unused_never_repeats_a_point():
    points = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # all three want point 0
    assert nearest_unused(points, targets).tolist() == [0, 2, 1]
    with pytest.raises(ValueError, match="distinct"):
        nearest_unused(points[:2], targets)


def test_unknown_selector_lists_the_known_ones():
    with pytest.raises(mm.UnknownNameError, match="kcenter"):
        mm.SELECTORS.create("k-centre")
