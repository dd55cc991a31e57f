"""Robustness: sweeps reuse trained models, per-sample rows agree with the metrics, binning by level."""
import numpy as np
import pandas as pd
import pytest

import mmlib as mm
from mmlib import corrupt, robustness


@pytest.fixture(scope="module")
def trained():
    from tests.helpers import make_tiny_data

    data = make_tiny_data(modalities=("a", "b"), n=90)
    runs = mm.concat([mm.run(data, m, fusion=f, seeds=[0, 1], label=label, probes=False, num_epochs=3,
                             batch_size=16, lr=1e-2)
                      for label, (m, f) in {"qmf": ("qmf", "qmf"), "tmc": ("tmc", "evidential"),
                                            "joint": (None, "concat")}.items()])
    return data, runs


def test_sweep_evaluates_every_model_on_every_condition(trained):
    data, runs = trained
    conditions = {s: corrupt.noisy(data, {"a": s}, splits=["test"]) for s in (0.0, 3.0)}
    table = robustness.sweep(runs, conditions)
    assert len(table) == len(runs.table) * 2
    clean = table[table["condition"] == 0.0].reset_index(drop=True)
    assert np.allclose(clean["acc"], runs.table["acc"])  # no corruption: the run's own test metrics
    assert list(clean["label"]) == list(runs.table["label"]) and list(clean["seed"]) == list(runs.table["seed"])
    assert {"f1", "acc/a", "acc/b"} <= set(table.columns)


def test_sweep_refuses_another_dataset_and_runs_without_models(trained, make_data):
    data, runs = trained
    other = make_data(modalities=("a", "b"))
    other.name = "other"
    with pytest.raises(ValueError, match=r"trained on \['tiny'\], not on 'other'"):
        robustness.sweep(runs, {0: other})
    with pytest.raises(ValueError, match="kept no models"):
        robustness.sweep(mm.experiment.Runs(runs.table), {0: data})
    with pytest.raises(ValueError, match="conditions is empty"):
        robustness.sweep(runs, {})


def test_per_sample_rows_match_metrics_and_carry_levels_and_head_diagnostics(trained):
    data, runs = trained
    qv = corrupt.quality_varying(data, 2.0, splits=["test"])
    rows = robustness.per_sample(runs, qv)
    assert len(rows) == len(runs.table) * len(data.test)
    acc = robustness.sweep(runs, {"qv": qv}).set_index(["label", "seed"])["acc"]
    mean = rows.groupby(["label", "seed"])["correct"].mean()
    assert np.allclose(mean.loc[acc.index], acc)
    levels = corrupt.per_sample(qv, "test")
    first = rows[(rows["label"] == "qmf") & (rows["seed"] == 0)]
    assert np.array_equal(first["level/a"], levels["a"].numpy())
    assert np.allclose(first["weight/a"] + first["weight/b"], 1.0)
    tmc = rows[rows["label"] == "tmc"]
    assert ((tmc["u"] > 0) & (tmc["u"] <= 1) & (tmc["u"] <= tmc["u/a"])).all()  # combining reduces uncertainty
    assert rows.loc[rows["label"] == "joint", "weight/a"].isna().all()
    masks = robustness.per_sample(runs, corrupt.incomplete(data, 0.5, splits=["test"]), labels=["tmc"])
    assert masks["present/a"].dtype == bool and "level/a" not in masks
    assert set(masks["label"]) == {"tmc"} and len(masks) == 2 * len(data.test)
    with pytest.raises(ValueError, match=r"no runs labelled \['tcm'\]"):
        robustness.per_sample(runs, data, labels=["tcm"])


def test_by_level_bins_by_hand():
    rows = pd.DataFrame({"dataset": "d", "label": "x", "seed": 0, "level": [0.0, 0.5, 1.0, 1.5, 2.0, 2.0],
                         "correct": [True, True, False, True, False, False]})
    out = robustness.by_level(rows, "level", [0, 1, 2])
    assert list(out["count"]) == [3, 3]
    assert np.allclose(out["correct"], [100 * 2 / 3, 100 / 3])
    assert np.allclose(out["centre"], [0.5, 1.5]) and list(out["bin"]) == ["[0, 1]", "(1, 2]"]
    with pytest.raises(ValueError, match="increasing"):
        robustness.by_level(rows, "level", [1, 0])
    with pytest.raises(KeyError, match="no column 'lvl'"):
        robustness.by_level(rows, "lvl", [0, 1])


def test_per_sample_sweep_tags_conditions(trained):
    data, runs = trained
    conditions = {s: corrupt.noisy(data, {"b": s}, splits=["test"]) for s in (0.0, 2.0)}
    rows = robustness.per_sample_sweep(runs, conditions)
    assert len(rows) == 2 * len(runs.table) * len(data.test)
    acc = robustness.sweep(runs, conditions).groupby("condition")["acc"].mean()
    assert np.allclose(rows.groupby("condition")["correct"].mean(), acc)
    assert (rows["level/b"] == rows["condition"]).all()
