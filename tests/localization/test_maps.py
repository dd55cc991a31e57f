"""Inference maps and baselines: upsampling, cluster-to-class sums, softmax maps, suppression, priors."""
import numpy as np
import pytest
import torch

from mmlib.localization import maps as M
from tests.localization.helpers import small_net, tiny


def test_upsample_keeps_constants_and_shapes():
    assert torch.allclose(M.upsample(torch.full((2, 5, 5), 0.3), 20), torch.full((2, 20, 20), 0.3))
    assert M.upsample(torch.rand(2, 3, 5, 5), 20).shape == (2, 3, 20, 20)


def test_cluster_to_class_sums_assigned_clusters_and_drops_unused():
    maps = torch.arange(4.0).view(1, 4, 1, 1)  # cluster k has value k
    out = M.cluster_to_class(maps, np.array([2, 0, 2, -1]), 3)
    assert out.flatten().tolist() == [1.0, 0.0, 2.0]


def test_class_maps_are_a_distribution_over_classes_and_suppression_matters():
    data = tiny("cocktail", 40)
    model = small_net(data).train()
    model.dictionary.normal_(generator=torch.Generator().manual_seed(0))
    perm = np.random.default_rng(0).permutation(10)
    with_l = M.class_maps(model, data.val, perm, 10)
    without = M.class_maps(model, data.val, perm, 10, suppress=False)
    assert with_l.shape == (len(data.val), 10, 40, 40) and model.training
    assert torch.allclose(with_l.sum(1), torch.ones(len(data.val), 40, 40), atol=1e-5)
    assert not torch.allclose(with_l, without)
    # a permutation of clusters permutes the class channels
    ident = M.class_maps(model, data.val, np.arange(10), 10)
    assert torch.allclose(with_l[:, perm], ident, atol=1e-6)


def test_agnostic_maps_split_l_by_the_audio_class_probabilities():
    data = tiny("cocktail", 40)
    model = small_net(data)
    maps = M.agnostic_class_maps(model, data.val, np.arange(10), 10)
    assert torch.allclose(maps.sum(1), M.solo_maps(model, data.val), atol=1e-5)


def test_solo_maps_with_pairs():
    data = tiny("solo")
    maps, p_pos, p_neg = M.solo_maps(small_net(data), data.val, pairs=True)
    assert maps.shape == (len(data.val), 20, 20) and p_pos.shape == p_neg.shape == (len(data.val),)
    assert torch.all((maps > 0) & (maps < 1))


def test_random_maps_are_seeded_distributions():
    a = M.random_class_maps(3, 10, 5, 20, torch.Generator().manual_seed(1))
    b = M.random_class_maps(3, 10, 5, 20, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and torch.allclose(a.sum(1), torch.ones(3, 20, 20), atol=1e-5)


def test_centre_prior_peaks_in_the_middle():
    g = M.centre_prior(2, 20)
    assert g.shape == (2, 20, 20) and float(g.max()) == pytest.approx(float(g[0, 9, 9]))
    assert torch.equal(g[0], g[0].flip(0)) and torch.equal(g[0], g[0].T)
    assert float(g[0, 0, 0]) == pytest.approx(np.exp(-(9.5 / 5) ** 2), rel=1e-5)  # std 0.25 x 20 = 5 pixels
