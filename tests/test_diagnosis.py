"""The learning-state diagnosis: purity on hand-made clusterings, scaling, k-means settings, the split it reads."""
import math

import numpy as np
import pytest
import torch

import mmlib as mm
from mmlib import diagnosis
from mmlib.diagnosis import cluster_purity, learning_state, minmax_scale, purity, reinit_strength, train_subset
from mmlib.evaluate import predict


# --- purity ----------------------------------------------------------------------------------

def test_purity_by_hand():
    # cluster 0 holds labels {0, 0, 1} (majority 2), cluster 1 holds {1, 2, 2} (majority 2): 4 / 6
    assert purity([0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 1]) == pytest.approx(4 / 6)
    assert purity([0, 0, 1, 1, 2, 2], [7, 7, 3, 3, 9, 9]) == 1.0  # any cluster ids, any order
    assert purity([0, 1, 1, 2, 2, 2], [0, 0, 0, 0, 0, 0]) == pytest.approx(3 / 6)  # one cluster: the majority share


def test_purity_counts_majorities_per_cluster_not_per_class():
    # four singleton clusters are pure; read the other way round (clusters per class) it would be 2 / 4
    assert purity([0, 0, 0, 1], [0, 1, 2, 3]) == 1.0
    assert purity([0, 1, 2, 3], [0, 0, 0, 1]) == pytest.approx(2 / 4)


def test_purity_rejects_mismatched_or_empty_input():
    with pytest.raises(ValueError, match="equal length"):
        purity([0, 1], [0])
    with pytest.raises(ValueError, match="non-empty"):
        purity([], [])


# --- scaling and k-means --------------------------------------------------------------------

def test_minmax_scale_by_hand_and_constant_columns():
    x = np.array([[0.0, 5.0, -2.0], [2.0, 5.0, 0.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(minmax_scale(x), [[-1.0, -1.0, -1.0], [0.0, -1.0, -0.5], [1.0, -1.0, 1.0]])


def test_scaling_lets_a_small_informative_dimension_count():
    # dim 0 separates the classes on a tiny scale, dim 1 is uniform noise on a huge scale:
    # unscaled k-means would cut along dim 1 (purity ~ 0.5); scaled, dim 0 wins
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 100)
    x = np.stack([y * 0.01, rng.uniform(0, 1000, 200)], axis=1)
    assert cluster_purity(x, y, 2) == 1.0


def test_kmeans_gets_n_init_and_the_seed_explicitly(monkeypatch):
    seen = {}

    class Spy(diagnosis.KMeans):
        def __init__(self, **kwargs):
            seen.update(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(diagnosis, "KMeans", Spy)
    x, y = np.random.default_rng(0).normal(size=(30, 3)), np.arange(30) % 3
    cluster_purity(x, y, 3, seed=5)
    assert seen == {"n_init": 10, "random_state": 5, "n_clusters": 3}
    cluster_purity(x, y, 3, n_init=2, seed=0)
    assert seen["n_init"] == 2 and seen["random_state"] == 0


def test_purity_is_reproducible_with_a_fixed_seed():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(120, 4)), rng.integers(0, 4, 120)  # no structure: k-means depends on its seed
    first = [cluster_purity(x, y, 4, n_init=1, seed=s) for s in range(6)]
    assert [cluster_purity(x, y, 4, n_init=1, seed=s) for s in range(6)] == first
    assert len(set(first)) > 1  # the seed matters here, so fixing it is what makes purity repeat


def test_separated_blobs_are_pure_and_torch_input_works():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    x = torch.eye(3)[y] * 10 + torch.randn(90, 3, generator=g)
    assert cluster_purity(x, y, 3) == 1.0


def test_too_few_samples_for_the_clusters_is_an_error():
    with pytest.raises(ValueError, match="at least 5 samples"):
        cluster_purity(np.zeros((4, 2)), np.zeros(4), 5)


# --- alpha -----------------------------------------------------------------------------------

def test_reinit_strength_is_tanh_of_lambda_times_gap():
    assert reinit_strength(0.1, 3.0) == pytest.approx(0.2913126124515909, abs=1e-15)
    assert reinit_strength(0.0, 3.0) == 0.0
    assert reinit_strength(0.5, 10.0) == pytest.approx(math.tanh(5.0))
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="lam"):
            reinit_strength(0.1, bad)


# --- the learning state of a model -----------------------------------------------------------

def test_learning_state_reads_train_and_val_not_test_and_restores_the_mode(make_data):
    data = make_data(("a", "b"), n=90)
    mm.seed_everything(0)
    model = mm.build_model(data)
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    state = learning_state(model, data)
    assert set(state) == {"a", "b"}
    for d in state.values():
        assert d["gap"] == abs(d["purity_train"] - d["purity_val"])
        assert 0 < d["purity_val"] <= 1 and 0 < d["purity_train"] <= 1
    assert model.training
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    data.test.inputs["a"] = torch.full_like(data.test.inputs["a"], float("nan"))  # the test split is never read
    assert learning_state(model, data) == state


def test_diagnosis_table_pivots_logged_names_and_ignores_others():
    import pandas as pd

    from mmlib.diagnosis import diagnosis_table

    rows = [(1, "purity_train/a", 0.9), (1, "purity_val/a", 0.7), (1, "gap/a", 0.2), (1, "alpha/a", 0.5),
            (1, "purity_train/b", 0.4), (1, "purity_val/b", 0.3), (1, "gap/b", 0.1), (1, "alpha/b", 0.3),
            (1, "rho/a", 2.0), (3, "gap/a", 0.05)]
    logs = pd.DataFrame([{"epoch": e, "step": 0, "name": n, "value": v, "seed": 0, "label": "x"} for e, n, v in rows])
    out = diagnosis_table(logs)
    assert list(out.columns) == ["label", "seed", "epoch", "modality", "purity_train", "purity_val", "gap", "alpha"]
    row = out.set_index(["epoch", "modality"]).loc[(1, "b")]
    assert (row["purity_train"], row["purity_val"], row["gap"], row["alpha"]) == (0.4, 0.3, 0.1, 0.3)
    late = out.set_index(["epoch", "modality"]).loc[(3, "a")]
    assert late["gap"] == 0.05 and pd.isna(late["alpha"])
    assert len(out) == 3
    assert diagnosis_table(logs[logs["name"] == "rho/a"]).empty


# --- equal sample sizes ----------------------------------------------------------------------

def test_train_subset_matches_the_validation_size_and_depends_only_on_the_seed():
    idx = train_subset(100, 30, "val", seed=0)
    assert len(idx) == 30 and len(set(idx.tolist())) == 30 and list(idx) == sorted(idx)
    assert np.array_equal(idx, train_subset(100, 30, "val", seed=0))
    assert not np.array_equal(idx, train_subset(100, 30, "val", seed=1))
    assert len(train_subset(100, 30, 40, seed=0)) == 40
    assert train_subset(100, 30, None, seed=0) is None
    assert train_subset(30, 30, "val", seed=0) is None and train_subset(30, 10, 50, seed=0) is None
    for bad in ("all", 0, -3, 2.5, True):
        with pytest.raises(ValueError, match="train_samples"):
            train_subset(100, 30, bad, seed=0)


def test_learning_state_clusters_the_subset_it_names(make_data):
    data = make_data(("a", "b"), n=150)
    mm.seed_everything(0)
    model = mm.build_model(data)
    full, matched = learning_state(model, data, train_samples=None), learning_state(model, data)
    feats = predict(model, data.train)
    idx = train_subset(len(data.train), len(data.val), "val", 0)
    for m in ("a", "b"):
        assert full[m]["purity_train"] == cluster_purity(feats["feats"][m], feats["y"], data.num_classes)
        assert matched[m]["purity_train"] == cluster_purity(feats["feats"][m][idx], feats["y"][idx],
                                                            data.num_classes)
        assert matched[m]["purity_val"] == full[m]["purity_val"]


def test_equal_sizes_remove_the_purity_floor_of_features_without_signal():
    """Features independent of the labels: the smaller split looks purer unless the sizes match."""
    rng = np.random.default_rng(0)
    floor, matched = [], []
    for rep in range(4):
        train, val = rng.normal(size=(1200, 8)), rng.normal(size=(400, 8))
        y_train, y_val = rng.integers(0, 10, 1200), rng.integers(0, 10, 400)
        p_val = cluster_purity(val, y_val, 10, n_init=2, seed=rep)
        idx = train_subset(1200, 400, "val", rep)
        floor.append(p_val - cluster_purity(train, y_train, 10, n_init=2, seed=rep))
        matched.append(p_val - cluster_purity(train[idx], y_train[idx], 10, n_init=2, seed=rep))
    assert min(floor) > 0.01  # the smaller split is purer on every draw
    assert abs(np.mean(matched)) < 0.5 * np.mean(floor)
