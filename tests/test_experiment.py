"""run over seeds, Runs, summaries and the imbalance-gap table."""
import math

import numpy as np
import pandas as pd
import pytest


from mmlib.experiment import concat, imbalance_gaps, mean_std, run, summarize
from mmlib.methods import Method


# --- run ---------------------------------------------------------------------------------

class EpochLogger(Method):
    """Logs the epoch number once per epoch, so ``Runs.logs`` has rows."""

    registry_name = "epoch-logger"

    def on_train_epoch_end(self, state):
        state.log("epoch_seen", state.epoch)


FIT = {"num_epochs": 2, "batch_size": 16, "lr": 1e-2}


@pytest.fixture(scope="module")
def runs():
    from tests.helpers import make_tiny_data

    return run(make_tiny_data(), EpochLogger(), seeds=(0, 1), **FIT)


def test_run_gives_one_row_per_seed_with_expected_columns(runs):
    t = runs.table
    assert len(t) == 2
    assert t["seed"].tolist() == [0, 1]
    expected = {"dataset", "label", "fusion", "seed", "acc", "f1", "map", "acc/a", "acc/b",
                "best_epoch", "seconds", "probe/a", "probe/b"}
    assert set(t.columns) == expected
    assert t["label"].tolist() == ["epoch-logger"] * 2
    assert t["dataset"].tolist() == ["tiny"] * 2 and t["fusion"].tolist() == ["concat"] * 2
    for col in ("acc", "f1", "map", "acc/a", "probe/b"):
        assert t[col].between(0, 1).all()
    assert t["best_epoch"].isin([0, 1]).all()
    assert len(runs.results) == 2


def test_runs_logs_and_curves_concatenate_seeds(runs):
    logs = runs.logs
    assert list(logs.columns) == ["epoch", "step", "name", "value", "seed", "label"]
    assert len(logs) == 4  # two epochs x two seeds
    assert logs.groupby("seed")["value"].apply(list).to_dict() == {0: [0.0, 1.0], 1: [0.0, 1.0]}
    curves = runs.curves
    assert len(curves) == 4
    assert {"epoch", "train_loss", "val/acc", "val/acc/a", "seed", "label"} <= set(curves.columns)
    assert curves["seed"].tolist() == [0, 0, 1, 1]


def test_run_label_fusion_no_probes_no_keep(make_data):
    data = make_data(n=45)
    r = run(data, None, seeds=[3], label="mine", fusion="sum", probes=False, keep=False, **FIT)
    assert r.table["label"].tolist() == ["mine"] and r.table["fusion"].tolist() == ["sum"]
    assert not any(c.startswith("probe/") for c in r.table.columns)
    assert r.results == []
    assert r.logs.empty and r.curves.empty


def test_run_default_label_is_joint_or_method_names(make_data):
    data = make_data(n=45)
    r = run(data, seeds=[0], probes=False, num_epochs=1, batch_size=16)
    assert r.table["label"].tolist() == ["joint"]
    r = run(data, ["joint-uni", EpochLogger()], seeds=[0], probes=False, num_epochs=1, batch_size=16)
    assert r.table["label"].tolist() == ["joint-uni+epoch-logger"]


def test_run_is_reproducible_per_seed(make_data, runs):
    again = run(make_data(), EpochLogger(), seeds=(1,), **FIT)
    row = runs.table[runs.table["seed"] == 1].iloc[0]
    for col in ("acc", "f1", "map", "acc/a", "acc/b", "probe/a", "probe/b"):
        assert again.table[col].iloc[0] == row[col]


def test_adding_and_concatenating_runs(runs):
    both = runs + runs
    assert len(both.table) == 4 and len(both.results) == 4
    assert both.table.index.tolist() == [0, 1, 2, 3]
    cat = concat([runs, runs, runs])
    assert len(cat.table) == 6 and len(cat.logs) == 12
    assert concat([]).table.empty


# --- summaries ---------------------------------------------------------------------------

def test_mean_std_by_hand():
    assert mean_std(pd.Series([1.0, 2.0, 3.0])) == "2.0 ± 1.0"
    assert mean_std(pd.Series([5.0])) == "5.0 ± 0.0"
    assert mean_std(pd.Series([0.1, 0.2]), digits=3) == f"0.150 ± {math.sqrt(0.005):.3f}"


def test_summarize_formats_mean_std_in_percent_and_counts_seeds():
    table = pd.DataFrame({"dataset": ["d"] * 3, "label": ["x", "x", "y"], "seed": [0, 1, 0],
                          "acc": [0.5, 0.7, 0.9], "f1": [0.4, 0.4, 0.8]})
    out = summarize(table, ["acc", "f1", "not-there"])
    assert list(out.columns) == ["acc", "f1", "seeds"]
    assert out.loc[("d", "x"), "acc"] == "60.0 ± 14.1"
    assert out.loc[("d", "x"), "f1"] == "40.0 ± 0.0"
    assert out.loc[("d", "y"), "acc"] == "90.0 ± 0.0"  # a single seed: std 0
    assert out["seeds"].tolist() == [2, 1]
    raw = summarize(table, ["acc"], by=["label"], scale=1.0, digits=2)
    assert raw.loc["x", "acc"] == "0.60 ± 0.14"


def test_summarize_keeps_group_order_and_handles_empty():
    table = pd.DataFrame({"dataset": ["d", "d"], "label": ["zeta", "alpha"], "acc": [0.1, 0.2]})
    assert summarize(table, ["acc"]).index.get_level_values("label").tolist() == ["zeta", "alpha"]
    empty = summarize(pd.DataFrame(), ["acc"])
    assert empty.empty and list(empty.columns) == ["dataset", "label"]


def gap_table():
    nan = np.nan
    rows = [
        # dataset, label, seed, acc/a, acc/b, probe/a, probe/b
        ("d", "joint", 1, 0.5, 0.6, 0.6, 0.7),
        ("d", "joint", 0, 0.7, 0.4, 0.8, 0.5),
        ("d", "a alone", 0, 0.9, nan, nan, nan),
        ("d", "a alone", 1, 0.9, nan, nan, nan),
        ("d", "b alone", 1, nan, 0.6, nan, nan),
        ("d", "b alone", 0, nan, 0.8, nan, nan),
        ("e", "joint", 0, 0.5, 0.5, 0.5, 0.5),  # no "alone" runs: no row
    ]
    return pd.DataFrame(rows, columns=["dataset", "label", "seed", "acc/a", "acc/b", "probe/a", "probe/b"])


def test_imbalance_gaps_pairs_by_seed():
    out = imbalance_gaps(gap_table())
    assert list(out.columns) == ["dataset", "modality", "trained alone", "joint: linear probe",
                                 "joint: head slice", "gap (alone - probe)", "seeds"]
    a, b = out.to_dict("records")
    # a: alone 90, 90; probe 80 (seed 0), 60 (seed 1); gaps 10, 30
    assert a == {"dataset": "d", "modality": "a", "trained alone": "90.0 ± 0.0",
                 "joint: linear probe": "70.0 ± 14.1", "joint: head slice": "60.0 ± 14.1",
                 "gap (alone - probe)": "20.0 ± 14.1", "seeds": 2}
    # b: alone 80 (seed 0), 60 (seed 1); probe 50, 70; gaps 30, -10 -> std sqrt(800)
    assert b == {"dataset": "d", "modality": "b", "trained alone": "70.0 ± 14.1",
                 "joint: linear probe": "60.0 ± 14.1", "joint: head slice": "50.0 ± 14.1",
                 "gap (alone - probe)": "10.0 ± 28.3", "seeds": 2}


def test_imbalance_gaps_counts_only_paired_seeds_and_custom_labels():
    t = gap_table()
    t = t[~((t["label"] == "a alone") & (t["seed"] == 1))]
    t["label"] = t["label"].replace({"joint": "jt", "a alone": "only a", "b alone": "only b"})
    out = imbalance_gaps(t, joint_label="jt", alone_label="only {modality}").set_index("modality")
    assert out.loc["a", "seeds"] == 1
    assert out.loc["a", "gap (alone - probe)"] == "10.0 ± 0.0"
    assert out.loc["b", "seeds"] == 2


def test_imbalance_gaps_without_matching_runs_is_empty():
    assert imbalance_gaps(gap_table(), joint_label="nothing").empty
