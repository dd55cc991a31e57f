"""The selection-time benchmark keeps working: a tiny pool prints one line per selector and budget."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("selection_time", ROOT / "benchmarks" / "selection_time.py")
selection_time = importlib.util.module_from_spec(spec)
spec.loader.exec_module(selection_time)


def test_tiny_pool_prints_a_line_per_selector_and_budget(capsys):
    assert selection_time.main(["--pool", "80", "--dim", "8", "--budgets", "5", "10",
                                "--selectors", "random", "mmcsal:swaps=0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("pool=80 dim=8")
    rows = [line.split() for line in lines[2:]]
    assert [(r[0], r[1]) for r in rows] == [("random", "5"), ("random", "10"), ("mmcsal:swaps=0", "5"),
                                            ("mmcsal:swaps=0", "10")]
