"""The benchmark harness: which methods it runs (from the registry), how it builds them, what it reports."""
import pandas as pd
import pytest

import mmlib as mm
from mmlib import benchmark
from mmlib.methods.joint import Unimodal
from tests.helpers import make_tiny_data


def test_every_registered_method_is_compared_or_excluded_with_a_reason():
    names = benchmark.compared()
    registered = set(mm.METHODS.names())
    assert set(names) | (registered & set(benchmark.EXCLUDED)) == registered
    assert not set(names) & set(benchmark.EXCLUDED)
    assert names[0] == "joint" and len(names) == len(set(names))
    assert all(isinstance(why, str) and len(why) > 20 for why in benchmark.EXCLUDED.values())
    assert list(benchmark.excluded().index) == sorted(registered & set(benchmark.EXCLUDED))


def test_a_newly_registered_method_is_compared_without_editing_anything():
    assert benchmark.compared(["b-method", "unimodal", "joint", "a-method"]) == ["joint", "b-method", "a-method"]


def test_the_classic_baselines_are_compared():
    assert {"joint", "joint-uni", "g-blending", "ensemble"} <= set(benchmark.compared())


def test_method_spec_uses_defaults_then_settings_then_example(monkeypatch):
    assert benchmark.method_spec("ogm-ge", ("audio", "image")) == "ogm-ge"
    spec = benchmark.method_spec("unimodal", ("audio", "image"))  # needs a modality: its example()
    assert isinstance(spec, Unimodal) and spec.modality == "image"
    monkeypatch.setitem(benchmark.SETTINGS, "opm", {"kwargs": {"q_base": 0.3}, "why": "a test"})
    assert benchmark.method_spec("opm", ("audio", "image")) == ("opm", {"q_base": 0.3})
    assert benchmark.fusion_of("ensemble") == "sum" and benchmark.fusion_of("opm") == "concat"


def test_every_compared_method_can_be_built():
    for name in benchmark.compared():
        mm.methods.make_methods(benchmark.method_spec(name, ("audio", "image"), num_epochs=8))


def test_settings_counted_in_epochs_follow_the_runs_epochs(monkeypatch):
    # D&R at the official proportion (every 20 of 90 epochs, 3 re-initialisations): 8 epochs -> period 2
    assert benchmark.method_spec("relearning", ("audio", "image"), num_epochs=8) == \
        ("relearning", {"period": 2, "reinits": 3})
    assert benchmark.method_spec("relearning", ("a", "b"), num_epochs=20) == ("relearning", {"period": 4, "reinits": 3})
    # too short to re-initialise at all: reinits=None, which the constructor accepts (3 would raise)
    spec = benchmark.method_spec("relearning", ("a", "b"), num_epochs=2)
    assert spec == ("relearning", {"period": 1, "reinits": None})
    mm.methods.make_methods(spec)
    with pytest.raises(ValueError, match="pass num_epochs"):
        benchmark.method_spec("relearning", ("a", "b"))
    # the valuation chapter's warm-up keeps its share of training: 5 of 20 -> 2 of 8, at least 1
    fn = benchmark.SETTINGS["sample-resampling"]["kwargs"]
    assert fn(8) == {"warmup": 2} and fn(20) == {"warmup": 5} and fn(1) == {"warmup": 1}
    # G-Blending re-estimates after every third of training (BalanceBenchmark: 10 of 30 epochs)
    assert benchmark.method_spec("g-blending", ("a", "b"), num_epochs=6) == ("g-blending", {"super_epoch": 2})
    assert benchmark.method_spec("g-blending", ("a", "b"), num_epochs=30) == ("g-blending", {"super_epoch": 10})
    monkeypatch.setitem(benchmark.SETTINGS, "opm", {"kwargs": lambda e: {"q_base": e / 100}, "why": "a test"})
    assert benchmark.method_spec("opm", ("a", "b"), num_epochs=30) == ("opm", {"q_base": 0.3})
    assert benchmark.describe(["opm"], num_epochs=30).loc["opm", "setting"] == "q_base=0.3"


def test_describe_groups_the_classic_baselines_apart():
    table = benchmark.describe(["joint", "g-blending", "ogm-ge"], num_epochs=8)
    assert list(table["kind"]) == ["reference", "classic baseline", "balancing method"]


def test_yardstick_is_joints_seed_to_seed_std_in_points():
    # joint: 0.80, 0.70, 0.90 -> mean 0.80, sample std 0.10 -> 10 points
    assert benchmark.yardstick(_table(), "acc") == pytest.approx(10.0)
    assert benchmark.yardstick(_table(), "acc", baseline="b") == pytest.approx(pd.Series([75, 72, 95]).std())
    one = benchmark.yardstick(_table().query("seed == 0"), "acc")  # one seed: no spread, no reading
    assert one != one
    summary = pd.DataFrame({"contrast": ["a − joint"], "mean": [9.0], "std": [0.0], "ahead": [1], "seeds": [1]})
    assert list(benchmark.readings(summary.set_index("contrast"), one)) == ["within noise"]
    with pytest.raises(KeyError, match="no runs labelled 'joint-uni'"):
        benchmark.yardstick(_table(), "acc", baseline="joint-uni")


def test_readings_need_every_seed_and_a_mean_beyond_the_noise():
    summary = pd.DataFrame({"contrast": ["a − joint", "b − joint", "c − joint", "d − joint", "e − joint"],
                            "mean": [3.0, 3.0, 1.0, -3.0, -3.0], "std": [1.0] * 5,
                            "ahead": [3, 2, 3, 0, 1], "seeds": [3] * 5}).set_index("contrast")
    words = benchmark.readings(summary, noise=2.0)
    assert list(words) == ["ahead", "within noise", "within noise", "behind", "within noise"]
    assert list(words.index) == list(summary.index)
    # the noise is strict: a mean equal to it is not beyond it
    assert list(benchmark.readings(summary, noise=3.0)) == ["within noise"] * 5


def test_settings_are_checked():
    benchmark.check_settings()
    with pytest.raises(ValueError, match="unknown key"):
        benchmark.check_settings({"opm": {"fuson": "sum", "why": "typo"}})
    with pytest.raises(ValueError, match="needs a 'why'"):
        benchmark.check_settings({"opm": {"fusion": "sum"}})
    with pytest.raises(KeyError, match="unknown fusion"):
        benchmark.check_settings({"opm": {"fusion": "sums", "why": "typo"}})


def test_describe_shows_each_methods_setting():
    table = benchmark.describe(["joint", "ensemble", "unimodal"])
    assert table.loc["ensemble", "setting"] == "fusion=sum"
    assert table.loc["joint", "setting"] == "defaults"
    assert table.loc["unimodal", "setting"] == "Unimodal.example()"
    assert table.loc["joint", "class"] == "Joint"


def _table():
    # accuracy of three labels on three seeds; ranks by hand below
    acc = {"joint": [0.80, 0.70, 0.90], "a": [0.85, 0.70, 0.80], "b": [0.75, 0.72, 0.95]}
    return pd.DataFrame([{"dataset": "d", "label": lbl, "seed": s, "acc": v}
                         for lbl, vals in acc.items() for s, v in enumerate(vals)])


def test_mean_ranks_by_hand():
    # seed 0: a 1, joint 2, b 3; seed 1: b 1, joint and a tie at 2.5; seed 2: b 1, joint 2, a 3
    ranks = benchmark.mean_ranks(_table(), "acc").loc["d"]
    assert ranks.loc["joint", "mean rank"] == pytest.approx((2 + 2.5 + 2) / 3)
    assert ranks.loc["a", "mean rank"] == pytest.approx((1 + 2.5 + 3) / 3)
    assert ranks.loc["b", "mean rank"] == pytest.approx((3 + 1 + 1) / 3)
    assert ranks.loc["b", "std"] == pytest.approx(pd.Series([3, 1, 1]).std())


def test_versus_joint_is_paired_by_seed_with_seeds_ahead():
    out = benchmark.versus(_table(), "acc")
    a = out.loc[("d", "acc", "a − joint")]
    assert a["mean"] == pytest.approx((5 + 0 - 10) / 3) and a["ahead"] == 1 and a["seeds"] == 3
    b = out.loc[("d", "acc", "b − joint")]
    assert b["mean"] == pytest.approx((-5 + 2 + 5) / 3) and b["ahead"] == 2


def test_step_time_file_round_trip(tmp_path):
    rows = [{"method": "joint", "head": "concat", "median_ms": 10.0, "ratio": 1.0, "ratio_min": 1.0,
             "ratio_max": 1.0},
            {"method": "opm", "head": "concat", "median_ms": 12.5, "ratio": 1.25, "ratio_min": 1.2,
             "ratio_max": 1.3}]
    path = benchmark.write_step_times(tmp_path / "sub" / "t.csv", rows, {"cpu": "Test CPU", "dataset": "mfeat"})
    back = benchmark.read_step_times(path)
    assert back.loc["opm", "ratio"] == pytest.approx(1.25) and back.loc["joint", "cpu"] == "Test CPU"
    assert benchmark.read_step_times(tmp_path / "missing.csv").empty


def test_run_all_runs_every_method_with_the_same_seeds_and_probes_the_weak_modality():
    data = make_tiny_data(n=60)
    runs = benchmark.run_all(data, ["joint", "ensemble"], seeds=[0, 1], probe="b", num_epochs=2, batch_size=16)
    t = runs.table
    assert list(t["label"]) == ["joint", "joint", "ensemble", "ensemble"]
    assert list(t["seed"]) == [0, 1, 0, 1]
    assert list(t["fusion"]) == ["concat", "concat", "sum", "sum"]
    assert t["probe/b"].between(0, 1).all() and "probe/a" not in t
    with pytest.raises(ValueError, match="probe='c'"):
        benchmark.run_all(data, ["joint"], seeds=[0], probe="c", num_epochs=1)
