"""Every registered selector: B distinct real indices, deterministic from the seed (contract)."""
import pytest
import torch
import torch.nn.functional as F

import mmlib as mm
from mmlib.active.selection import covering_radius, pair_features


def pool(n=60, clusters=6, seed=0, spread=0.15):
    """Two modalities of ``clusters`` tight, well-separated clusters (the same cluster in both)."""
    g = torch.Generator().manual_seed(seed)
    centres = {m: F.normalize(torch.randn(clusters, 8, generator=g), dim=1) for m in "ab"}
    label = torch.arange(n) % clusters
    emb = {m: F.normalize(c[label] + spread * torch.randn(n, 8, generator=g), dim=1) for m, c in centres.items()}
    return emb, label


def selector(name):
    return mm.SELECTORS.get(name).example(("a", "b"))


@pytest.mark.parametrize("name", mm.SELECTORS.names())
@pytest.mark.parametrize("budget", [1, 6, 25, 60])
def test_distinct_indices_deterministic_from_the_seed(name, budget):
    emb, _ = pool()
    idx = selector(name).select(emb, budget, seed=3)
    assert idx.dtype == torch.long and idx.shape == (budget,)
    assert len(torch.unique(idx)) == budget and int(idx.min()) >= 0 and int(idx.max()) < 60
    assert torch.equal(idx, selector(name).select(emb, budget, seed=3))


@pytest.mark.parametrize("name", mm.SELECTORS.names())
def test_selection_does_not_read_labels_or_change_inputs(name):
    emb, _ = pool()
    before = {m: z.clone() for m, z in emb.items()}
    selector(name).select(emb, 6, seed=0)
    assert all(torch.equal(before[m], emb[m]) for m in emb)


def test_random_depends_on_the_seed():
    emb, _ = pool()
    rnd = mm.SELECTORS.create("random")
    assert not torch.equal(rnd.select(emb, 10, 0), rnd.select(emb, 10, 1))


@pytest.mark.parametrize("name", ["kmeans", "kcenter", "mmcsal"])
def test_one_pair_per_cluster_on_separated_clusters(name):
    emb, label = pool()
    for seed in range(3):
        idx = selector(name).select(emb, 6, seed)
        assert sorted(label[idx].tolist()) == list(range(6)), (name, seed)


def test_kcenter_covering_radius_no_worse_than_random():
    emb, _ = pool(n=120, clusters=12, spread=0.3)
    phi = pair_features(emb)
    for seed in range(5):
        k = covering_radius(phi, mm.SELECTORS.create("kcenter").select(emb, 12, seed))
        r = covering_radius(phi, mm.SELECTORS.create("random").select(emb, 12, seed))
        assert k <= r, seed


def test_covering_radius_by_hand():
    phi = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    assert covering_radius(phi, torch.tensor([0])) == pytest.approx(1.0)  # point 1 is orthogonal to point 0
    assert covering_radius(phi, torch.tensor([2])) == pytest.approx(0.4)
    assert covering_radius(phi, torch.tensor([0, 1, 2])) == pytest.approx(0.0, abs=1e-7)


def test_kcenter_picks_the_farthest_point_next():
    emb = {"a": torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])}
    emb["b"] = emb["a"].clone()
    idx = mm.SELECTORS.create("kcenter", view="a").select(emb, 3, seed=0)
    first = int(idx[0])
    d = 1 - emb["a"] @ emb["a"][first]
    assert int(idx[1]) == int(d.argmax())


def test_kmeans_takes_the_real_pair_nearest_each_centroid():
    emb, label = pool(n=30, clusters=3, spread=0.05)
    idx = mm.SELECTORS.create("kmeans").select(emb, 3, 0)
    x = torch.cat([emb["a"], emb["b"]], 1) / 2 ** 0.5
    for c in range(3):  # the chosen pair of each cluster is the one nearest that cluster's mean
        members = (label == c).nonzero().squeeze(1)
        centre = x[members].mean(0)
        chosen = [int(i) for i in idx if label[i] == c]
        assert chosen == [int(members[(x[members] - centre).norm(dim=1).argmin()])]


def test_bad_selector_arguments():
    with pytest.raises(ValueError, match="n_init"):
        mm.SELECTORS.create("kmeans", n_init=0)
    with pytest.raises(ValueError, match="unknown view"):
        mm.SELECTORS.create("kcenter", view="c").select(pool()[0], 3)
    with pytest.raises(TypeError, match="modality must be"):
        mm.SELECTORS.create("single-modality", modality=1)
