"""Summaries over seeds, the imbalance gap, paired differences and logged diagnostics, on hand-made tables."""
import math

import numpy as np
import pandas as pd
import pytest

import mmlib as mm
from mmlib.analysis import (conflict_summary, format_paired, gaps_by_seed, gradient_stats, imbalance_gaps, mean_std,
                            paired, paired_differences, per_epoch, posthoc_windows, probed_modalities,
                            regulation_summary, seeds_ahead, summarize, trace_peaks, weight_summary, window_epochs)


def test_summarize_is_exported_from_the_package():
    assert mm.summarize is summarize and mm.analysis.summarize is summarize


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


def test_probed_modalities_keeps_column_order_and_skips_empty_probes():
    t = pd.DataFrame({"probe/b": [0.1, np.nan], "acc": [0.5, 0.5], "probe/a": [np.nan, 0.2], "probe/c": [np.nan] * 2})
    assert probed_modalities(t) == ["b", "a"]


def test_gaps_by_seed_gives_points_per_seed():
    out = gaps_by_seed(gap_table()).sort_values(["modality", "seed"])
    assert list(out.columns) == ["dataset", "modality", "seed", "alone", "probe", "slice", "gap"]
    assert out[["dataset", "modality", "seed"]].values.tolist() == [["d", "a", 0], ["d", "a", 1],
                                                                    ["d", "b", 0], ["d", "b", 1]]
    # a: alone 90, 90; probe 80, 60; slice 70, 50.  b: alone 80, 60; probe 50, 70; slice 40, 60
    assert out["alone"].tolist() == pytest.approx([90, 90, 80, 60])
    assert out["probe"].tolist() == pytest.approx([80, 60, 50, 70])
    assert out["slice"].tolist() == pytest.approx([70, 50, 40, 60])
    assert out["gap"].tolist() == pytest.approx([10, 30, 30, -10])
    assert gaps_by_seed(gap_table(), joint_label="nothing").empty


# --- paired differences ------------------------------------------------------------------

def pair_table():
    rows = [  # dataset, label, seed, acc: values in 1/16ths so that differences are exact
        ("d", "a", 0, 0.5), ("d", "a", 1, 0.625), ("d", "a", 2, 0.75), ("d", "a", 3, 0.875),
        ("d", "b", 3, 0.75), ("d", "b", 2, 0.8125), ("d", "b", 1, 0.625), ("d", "b", 0, 0.375),
        ("e", "a", 0, 0.5), ("e", "a", 1, 0.25), ("e", "b", 0, 0.75),  # e: seed 1 has no "b" run
    ]
    return pd.DataFrame(rows, columns=["dataset", "label", "seed", "acc"])


def test_paired_differences_pair_by_seed_in_points():
    wide = paired_differences(pair_table(), "acc", [("a", "b"), ("b", "a")])
    assert list(wide.columns) == ["a − b", "b − a"]
    d = wide.loc["d"].sort_index()
    assert d["a − b"].tolist() == [12.5, 0.0, -6.25, 12.5]  # seed 1 is a tie
    assert (d["b − a"] == -d["a − b"]).all()
    e = wide.loc["e"].sort_index()
    assert e.loc[0, "a − b"] == -25.0 and math.isnan(e.loc[1, "a − b"])
    raw = paired_differences(pair_table(), "acc", [("a", "b")], scale=1.0)
    assert raw.loc[("d", 0), "a − b"] == 0.125


def test_paired_differences_unknown_label_is_an_error():
    with pytest.raises(KeyError, match=r"no runs labelled \['c'\]"):
        paired_differences(pair_table(), "acc", [("a", "c")])


def test_seeds_ahead_counts_strictly_positive_differences():
    assert seeds_ahead(pd.Series([1.0, 0.0, -1.0, np.nan, 2.0])) == 2
    assert seeds_ahead(pd.Series([0.0, 0.0])) == 0  # ties are nobody's
    assert seeds_ahead(pd.Series([], dtype=float)) == 0


def test_paired_summarises_mean_std_ahead_and_seeds():
    out = paired(pair_table(), "acc", [("a", "b"), ("b", "a")])
    assert out.index.names == ["dataset", "metric", "contrast"]
    assert list(out.columns) == ["mean", "std", "ahead", "seeds"]
    # d: a - b = 12.5, 0, -6.25, 12.5 -> mean 4.6875, squared deviations sum 263.671875 / 3 -> std 9.375
    ab = out.loc[("d", "acc", "a − b")]
    assert (ab["mean"], ab["std"], ab["ahead"], ab["seeds"]) == (4.6875, 9.375, 2, 4)
    ba = out.loc[("d", "acc", "b − a")]
    assert (ba["mean"], ba["std"], ba["ahead"], ba["seeds"]) == (-4.6875, 9.375, 1, 4)  # the tie counts for neither
    e = out.loc[("e", "acc", "a − b")]  # one paired seed: std 0
    assert (e["mean"], e["std"], e["ahead"], e["seeds"]) == (-25.0, 0.0, 0, 1)


def test_paired_leaves_out_contrasts_without_a_paired_seed():
    t = pd.concat([pair_table(), pd.DataFrame([("d", "c", 0, 0.25)], columns=["dataset", "label", "seed", "acc"])])
    out = paired(t, "acc", [("c", "a"), ("a", "b")])
    assert out.index.tolist() == [("d", "acc", "c − a"), ("d", "acc", "a − b"), ("e", "acc", "a − b")]
    assert out.loc[("d", "acc", "c − a"), "mean"] == -25.0  # only seed 0 has both
    assert format_paired(out).loc["c − a", ("e", "acc")] == "–"


def test_paired_differences_with_a_metric_one_label_lacks():
    t = pair_table().assign(probe=lambda t: t["acc"].where(t["label"] == "a"))  # no probe on b runs
    wide = paired_differences(t, "probe", [("a", "b")])
    assert wide["a − b"].isna().all()
    assert paired(t, ["acc", "probe"], [("a", "b")]).index.get_level_values("metric").unique().tolist() == ["acc"]


def test_paired_over_several_metrics_and_its_display():
    t = pair_table().assign(f1=lambda t: t["acc"] / 2)
    out = paired(t, ["acc", "f1"], [("a", "b")])
    assert out.loc[("d", "f1", "a − b"), "mean"] == pytest.approx(4.6875 / 2)
    shown = format_paired(out)
    assert list(shown.columns) == [("d", "acc"), ("e", "acc"), ("d", "f1"), ("e", "f1")]  # metric by metric
    assert shown.index.tolist() == ["a − b"]
    assert shown.loc["a − b", ("d", "acc")] == "4.7 ± 9.4 (2/4)"
    assert shown.loc["a − b", ("e", "acc")] == "-25.0 ± 0.0 (0/1)"


# --- logged diagnostics ------------------------------------------------------------------

def test_per_epoch_averages_steps_and_filters_by_prefix():
    logs = pd.DataFrame([
        # epoch, step, name, value, seed, label
        (0, 0, "rho/a", 1.0, 0, "y"), (0, 1, "rho/a", 3.0, 0, "y"), (0, 0, "k/a", 0.5, 0, "y"),
        (1, 2, "rho/a", 4.0, 0, "y"), (0, 0, "rho/a", 2.0, 0, "x"), (0, 0, "rho/a", 6.0, 1, "x"),
    ], columns=["epoch", "step", "name", "value", "seed", "label"])
    out = per_epoch(logs, "rho/")
    assert list(out.columns) == ["label", "seed", "epoch", "name", "value"]
    assert out.values.tolist() == [["x", 0, 0, "rho/a", 2.0], ["x", 1, 0, "rho/a", 6.0],
                                   ["y", 0, 0, "rho/a", 2.0], ["y", 0, 1, "rho/a", 4.0]]
    ordered = per_epoch(logs, order=["y", "x"])
    assert list(ordered["label"].cat.categories) == ["y", "x"]
    assert len(ordered) == 5 and set(ordered["name"]) == {"rho/a", "k/a"}


def test_gradient_stats_pivots_stat_per_modality_and_adds_the_norm_ratio():
    rows = []
    for step, (cos, nm, nu) in enumerate([(0.5, 1.0, 2.0), (-0.1, 3.0, 4.0)]):
        for stat, v in [("cos", cos), ("conflict", float(cos < 0)), ("norm_mm", nm), ("norm_uni", nu)]:
            rows.append((0, step, f"{stat}/a", v, 0, "m"))
        rows.append((0, step, "cos/b", 0.9, 0, "m"))
    rows.append((0, 1, "epoch_seen", 0.0, 0, "m"))  # no modality: not a gradient statistic
    logs = pd.DataFrame(rows, columns=["epoch", "step", "name", "value", "seed", "label"])
    out = gradient_stats(logs, dataset_of={"a": "d1", "b": "d2"})
    assert list(out.columns) == ["dataset", "label", "seed", "epoch", "step", "modality",
                                 "conflict", "cos", "norm_mm", "norm_uni", "ratio"]
    a = out[out["modality"] == "a"].sort_values("step")
    assert a["ratio"].tolist() == [0.5, 0.75] and a["conflict"].tolist() == [0.0, 1.0]
    assert a["dataset"].unique().tolist() == ["d1"]
    b = out[out["modality"] == "b"]
    assert b["cos"].tolist() == [0.9, 0.9] and b["norm_mm"].isna().all() and b["dataset"].eq("d2").all()
    assert "dataset" not in gradient_stats(logs).columns


def steps_table():
    """Two runs of one encoder: seed 0 with conflicts (epochs 0-3, two steps each), seed 1 without."""
    s0 = pd.DataFrame({"epoch": [0, 0, 1, 1, 2, 2, 3, 3],
                       "conflict": [1, 1, 0, 1, 0, 0, 1, 0],
                       "cos": [-0.2, -0.4, 0.5, -0.3, 0.6, 0.7, -0.1, 0.8],
                       "c": [0.9, 0.7, 0.5, 0.8, 0.5, 0.5, 0.6, 0.5],
                       "norm_mm": [1.0, 3.0] * 4, "norm_uni": [2.0] * 4 + [4.0] * 4})
    s1 = s0.assign(conflict=0, cos=0.5, c=0.5)
    both = pd.concat([s0.assign(seed=0), s1.assign(seed=1)], ignore_index=True)
    both["step"] = range(len(both))
    return both.assign(dataset="d", modality="a", label="m", ratio=both["norm_mm"] / both["norm_uni"])


def test_conflict_summary_by_hand():
    out = conflict_summary(steps_table())
    assert out.index.names == ["dataset", "modality", "seed"]
    assert list(out.columns) == ["conflict (% steps)", "epoch 1 (%)", "2nd half (%)", "cos | conflict",
                                 "‖g_m‖/‖g_u‖", "std ratio"]
    s0 = out.loc[("d", "a", 0)]
    assert s0["conflict (% steps)"] == 50.0  # 4 of 8 steps
    assert s0["epoch 1 (%)"] == 100.0
    assert s0["2nd half (%)"] == 25.0  # epochs 2 and 3 (>= 3 / 2): 1 of 4 steps
    assert s0["cos | conflict"] == pytest.approx(-0.25)  # (-0.2 - 0.4 - 0.3 - 0.1) / 4
    assert s0["‖g_m‖/‖g_u‖"] == pytest.approx(0.75)  # mean of 1/2, 3/2, 1/4, 3/4: not the ratio of means (2/3)
    assert s0["std ratio"] == pytest.approx(1.0)  # both norms alternate by +-1 around their mean
    s1 = out.loc[("d", "a", 1)]
    assert s1["conflict (% steps)"] == 0.0 and math.isnan(s1["cos | conflict"])


def test_weight_summary_by_hand():
    out = weight_summary(steps_table())
    assert out.index.names == ["dataset", "modality", "label"]
    row = out.loc[("d", "a", "m")]  # both seeds: 4 conflicts in 16 steps
    assert row["conflict (% steps)"] == 25.0
    assert row["mean c"] == pytest.approx((5.0 + 8 * 0.5) / 16)
    assert row["mean c | conflict"] == pytest.approx((0.9 + 0.7 + 0.8 + 0.6) / 4)


# --- InfoReg diagnostics --------------------------------------------------------------------

def _epoch_logs(name, values, seed=0, label="inforeg"):
    return pd.DataFrame({"epoch": range(len(values)), "step": range(len(values)), "name": name,
                         "value": values, "seed": seed, "label": label})


def test_trace_peaks_by_hand():
    logs = pd.concat([_epoch_logs("trace/a", [0.5, 2.0, 4.0, 4.0, 1.0]), _epoch_logs("trace/b", [0.0, 1.0, 0.5]),
                      _epoch_logs("alpha/a", [9.0, 9.0])])
    out = trace_peaks(logs).set_index("modality")
    assert out.loc["a", ["peak_epoch", "peak", "first", "last", "rise"]].tolist() == [2, 4.0, 0.5, 1.0, 8.0]
    assert out.loc["b", "peak_epoch"] == 1 and math.isnan(out.loc["b", "rise"])  # a zero first trace
    assert list(out.index) == ["a", "b"]


def test_window_epochs_separates_the_early_window_from_reopenings():
    nan = float("nan")
    logs = pd.concat([_epoch_logs("window/a", [nan, nan, 1, 1, 0, 0, 1, 0, 1]),
                      _epoch_logs("window/b", [nan, nan, 1, 1, 1]), _epoch_logs("window/c", [nan, nan, 0, 1])])
    out = window_epochs(logs).set_index("modality")
    assert out.loc["a", "open"] == [2, 3, 6, 8]
    assert (out.loc["a", "first_closed"], out.loc["a", "prime"], out.loc["a", "reopened"]) == (4, 2, 2)
    assert math.isnan(out.loc["b", "first_closed"]) and (out.loc["b", "prime"], out.loc["b", "reopened"]) == (3, 0)
    assert (out.loc["c", "first_closed"], out.loc["c", "prime"], out.loc["c", "reopened"]) == (2, 0, 1)


def test_regulation_summary_by_hand():
    logs = pd.concat([_epoch_logs("alpha/a", [0.0, 2.0, 1.0, 0.0]), _epoch_logs("alpha/b", [0.0, 0.0])])
    out = regulation_summary(logs).set_index("modality")
    assert out.loc["a", ["regulated (% steps)", "alpha | regulated"]].tolist() == [50.0, 1.5]
    assert out.loc["b", "regulated (% steps)"] == 0.0 and math.isnan(out.loc["b", "alpha | regulated"])


def test_posthoc_windows_apply_eq_11_to_logged_traces_for_each_threshold():
    # tested epochs 2..6 (epoch 7 was not trained): 0.5, (3-2)/3, (3.3-3)/3.3 = 0.09, (1-3.3)/1 < 0, (1.2-1)/1.2
    logs = _epoch_logs("trace/a", [1.0, 2.0, 3.0, 3.3, 1.0, 1.2, 1.0], label="joint")
    out = posthoc_windows(logs, [0.04, 0.4, 0.9]).set_index("threshold")
    assert out.loc[0.04, "open"] == [2, 3, 4, 6] and out.loc[0.04, "prime"] == 3 and out.loc[0.04, "reopened"] == 1
    assert out.loc[0.4, "open"] == [2] and out.loc[0.4, "first_closed"] == 3
    assert out.loc[0.9, "open"] == [] and out.loc[0.9, "prime"] == 0
    assert posthoc_windows(logs.iloc[:0], [0.04]).empty
    short = posthoc_windows(logs[logs["epoch"] < 2], [0.04]).iloc[0]  # two epochs: nothing to test
    assert short["open"] == [] and short["prime"] == 0 and math.isnan(short["first_closed"])


def test_posthoc_windows_with_the_released_codes_statistic():
    # moving-average change from epoch 0: 1, 1, 2/3, 3/6, (3 - 0) / 9 = 0.33, then (0.3 - 0) / 9.3 < 0.05
    logs = _epoch_logs("trace/a", [1.0, 2.0, 3.0, 3.0, 0.3, 0.3], label="joint")
    out = posthoc_windows(logs, [0.05], rule="code").iloc[0]
    assert out["open"] == [0, 1, 2, 3, 4] and out["first_closed"] == 5 and out["prime"] == 5
    with pytest.raises(ValueError, match="rule"):
        posthoc_windows(logs, [0.05], rule="icml")
def test_direction_word_follows_mean_against_spread():
    from mmlib.analysis import direction

    assert direction(pd.Series([1.0, 2.0, 3.0])) == "higher"  # mean 2 > std 1
    assert direction(pd.Series([-1.0, -2.0, -3.0]), lower="below") == "below"
    assert direction(pd.Series([1.0, -1.0, 3.0])) == "not different"  # mean 1 < std 2
    assert direction(pd.Series([0.5, float("nan")])) == "higher"  # one seed: no spread


def test_late_mean_per_run_from_an_epoch():
    from mmlib.analysis import late_mean

    logs = pd.DataFrame({"label": ["m"] * 4 + ["j"] * 2, "seed": [0, 0, 0, 1, 0, 0], "epoch": [0, 1, 2, 1, 0, 1],
                         "name": ["epoch_size"] * 5 + ["other"], "value": [10.0, 14.0, 16.0, 12.0, 10.0, 99.0]})
    got = late_mean(logs, "epoch_size", from_epoch=1)
    assert got.to_dict() == {("m", 0): 15.0, ("m", 1): 12.0}
