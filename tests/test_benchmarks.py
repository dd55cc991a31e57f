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
