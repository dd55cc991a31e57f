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


def test_fit_mode_prints_the_amortised_epoch_ratio(capsys):
    assert step_time.main(["--fit", "--dataset", "mfeat", "--epochs", "3", "--methods", "relearning:period=1,reinits=1",
                           "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "epochs=3x1" in out and "epoch (ms)" in out and "relearning:period=1,reinits=1" in out


loc_spec = importlib.util.spec_from_file_location("localization_time", ROOT / "benchmarks" / "localization_time.py")
localization_time = importlib.util.module_from_spec(loc_spec)
loc_spec.loader.exec_module(localization_time)


def test_localization_timing_prints_each_stage(capsys):
    assert localization_time.main(["--profile", "quick", "--n-scenes", "40", "--ablation"]) == 0
    out = capsys.readouterr().out
    assert "seed 0: stage 1" in out and "no L_cat" in out and "s CPU" in out
