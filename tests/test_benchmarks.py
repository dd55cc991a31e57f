"""The step-time benchmark keeps working: method arguments parse and a tiny run prints ratios."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("step_time", ROOT / "benchmarks" / "step_time.py")
step_time = importlib.util.module_from_spec(spec)
spec.loader.exec_module(step_time)


def test_tiny_run_prints_a_ratio_per_method(capsys):
    assert step_time.main(["--dataset", "mfeat", "--methods", "mmpareto:batched=true", "--steps", "2",
                           "--warmup", "1", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "optimizer=sgd" in out and "mmpareto:batched=true" in out and "joint " in out


def test_benchmark_mode_times_every_compared_method_and_writes_the_file(capsys, tmp_path):
    import mmlib as mm

    out = tmp_path / "step_time.csv"
    assert step_time.main(["--dataset", "mfeat", "--benchmark", "--steps", "2", "--warmup", "1", "--rounds", "1",
                           "--output", str(out)]) == 0
    table = mm.benchmark.read_step_times(out)
    assert list(table.index) == mm.benchmark.compared()
    assert table.loc["joint", "ratio"] == 1.0 and (table["ratio"] > 0).all()
    assert {"cpu", "cores", "clock", "portable", "torch", "date", "optimizer"} <= set(table.columns)
    assert table.loc["ensemble", "head"] == "sum" and table.loc["joint", "head"] == "concat"
    assert "(sum)" in capsys.readouterr().out  # the ensemble runs on its benchmark head


def test_fit_mode_prints_the_amortised_epoch_ratio(capsys):
    assert step_time.main(["--fit", "--dataset", "mfeat", "--epochs", "3", "--methods", "relearning:period=1,reinits=1",
                           "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "epochs=3 rounds=1" in out and "median epoch (ms)" in out and "relearning:period=1,reinits=1" in out


def test_benchmark_fit_mode_writes_epoch_ratios_with_epoch_scaled_settings(tmp_path):
    import mmlib as mm

    out = tmp_path / "fit.csv"
    assert step_time.main(["--fit", "--benchmark", "--dataset", "mfeat", "--epochs", "4", "--rounds", "1",
                           "--output", str(out)]) == 0
    table = mm.benchmark.read_step_times(out)
    assert list(table.index) == mm.benchmark.compared()
    assert set(table["unit"]) == {"epoch"} and set(table["epochs"]) == {4} and set(table["steps"]) == {0}




loc_spec = importlib.util.spec_from_file_location("localization_time", ROOT / "benchmarks" / "localization_time.py")
localization_time = importlib.util.module_from_spec(loc_spec)
loc_spec.loader.exec_module(localization_time)


def test_localization_timing_prints_each_stage(capsys):
    assert localization_time.main(["--profile", "quick", "--n-scenes", "40", "--ablation"]) == 0
    out = capsys.readouterr().out
    assert "seed 0: stage 1" in out and "no L_cat" in out and "s CPU" in out


def test_epoch_time_tiny_run_prints_both_ratios(capsys):
    spec = importlib.util.spec_from_file_location("epoch_time", ROOT / "benchmarks" / "epoch_time.py")
    epoch_time = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(epoch_time)
    assert epoch_time.main(["--dataset", "mfeat", "--methods", "sample-resampling", "--epochs", "2",
                            "--warmup", "1", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "ratio w/o copies" in out and "sample-resampling " in out and "joint " in out
