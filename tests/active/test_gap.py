"""Gap diagnostics on hand-made embeddings."""
import math

import pytest
import torch

from mmlib.active.gap import mean_gap, modality_gap, modality_separability, neighbour_agreement, retrieval_recall


def test_gap_is_the_distance_between_centroids_of_normalised_rows():
    a = torch.tensor([[2.0, 0.0], [3.0, 0.0]])  # both (1, 0) after normalisation
    b = torch.tensor([[0.0, 5.0], [0.0, 1.0]])  # both (0, 1)
    assert modality_gap(a, b) == pytest.approx(math.sqrt(2))
    assert modality_gap(torch.eye(2), torch.eye(2).flip(0)) == pytest.approx(0.0)  # same centroid (½, ½)
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert modality_gap(c, d) == pytest.approx(math.sqrt(0.5 ** 2 + 0.5 ** 2))


def test_mean_gap_averages_pairs():
    a, b, c = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]])
    assert mean_gap({"a": a, "b": b, "c": c}) == pytest.approx((math.sqrt(2) + 0 + math.sqrt(2)) / 3)
    with pytest.raises(ValueError, match="one shape"):
        modality_gap(a, torch.ones(2, 2))


def test_retrieval_recall_counts_partners_in_the_top_k():
    eye = torch.eye(3)
    assert retrieval_recall(eye, eye, 1) == 1.0
    shifted = eye[[1, 2, 0]]  # a_i's nearest b is b_{i-1}, never b_i
    assert retrieval_recall(eye, shifted, 1) == 0.0
    assert retrieval_recall(eye, shifted, 3) == 1.0
    b = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.1, 0.0], [0.0, 0.0, 1.0]])
    # a_1 = (0,1,0): cosines to b are 0, 0.0995, 0 -> partner b_1 first; a_0: b_0 (1.0) beats b_1 (0.995)
    assert retrieval_recall(eye, b, 1) == 1.0
    a = torch.tensor([[1.0, 0.2, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # a_0 now prefers b_1 over b_0
    assert retrieval_recall(a, b, 1) == pytest.approx(2 / 3)


def test_separability_of_separate_and_identical_modalities():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(40, 4, generator=g) * 0.1 + torch.tensor([3.0, 0, 0, 0])
    b = torch.randn(40, 4, generator=g) * 0.1 + torch.tensor([0, 3.0, 0, 0])
    assert modality_separability(a, b) == 1.0
    assert modality_separability(a, a.clone()) == 0.5  # identical embeddings cannot be told apart
    with pytest.raises(ValueError, match="at least 4"):
        modality_separability(a[:3], b[:3])


def test_neighbour_agreement():
    q = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert neighbour_agreement(q, q, torch.tensor([0, 0, 1, 1])) == 1.0
    assert neighbour_agreement(q, q, torch.tensor([0, 1, 0, 1])) == 0.0
    keys = q[[2, 3, 0, 1]]  # keys_j point the other way: every nearest key belongs to the other pair
    assert neighbour_agreement(q, keys, torch.tensor([0, 0, 1, 1])) == 0.0


def test_diagnose_collects_every_measure():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(30, 4, generator=g)
    b = a + 0.05 * torch.randn(30, 4, generator=g)
    y = torch.arange(30) % 3
    from mmlib.active.gap import diagnose
    d = diagnose({"a": a, "b": b}, y)
    assert d["gap"] == pytest.approx(modality_gap(a, b))
    assert d["r1"] == pytest.approx((retrieval_recall(a, b, 1) + retrieval_recall(b, a, 1)) / 2)
    assert d["agree/a"] == neighbour_agreement(a, a, y)
    assert set(d) == {"gap", "separability", "r1", "r10", "agree/cross", "agree/a", "agree/b"}
    assert "agree/cross" not in diagnose({"a": a, "b": b})


def test_projection_puts_the_gap_on_the_first_axis():
    from mmlib.active.gap import project_2d
    g = torch.Generator().manual_seed(1)
    a = torch.randn(50, 5, generator=g) + torch.tensor([4.0, 0, 0, 0, 0])
    b = torch.randn(50, 5, generator=g) + torch.tensor([0, 4.0, 0, 0, 0])
    pa, pb = project_2d(a, b)
    assert pa.shape == (2, 50) and pb.shape == (2, 50)
    assert pa[0].mean() - pb[0].mean() == pytest.approx(modality_gap(a, b), abs=1e-6)
    assert abs(pa[1].mean() - pb[1].mean()) < 1e-6  # the second axis is orthogonal to the gap
