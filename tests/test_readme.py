"""The README's "own training loop" example runs as written."""
import ast
import re
from pathlib import Path


def test_own_loop_example_runs(capsys):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    example = next(b for b in blocks if "TrainState(" in b)
    exec(compile(example, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    metrics = ast.literal_eval(printed.strip().splitlines()[-1])
    assert metrics["acc"] > 0.6, metrics  # trained, not chance (0.1)
