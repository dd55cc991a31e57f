"""Meta tests over the book: every notebook is well-formed, listed in _toc.yml, and runs quick."""
from pathlib import Path

import nbformat
import pytest
import yaml

from mmlib.cli import notebooks_in_toc
from mmlib.runner import execute

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb") if not p.name.startswith("."))


def _toc_files():
    files = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("file", "root"):
                if isinstance(node.get(key), str):
                    files.append(node[key])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load((ROOT / "_toc.yml").read_text()))
    return files


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_well_formed(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert {"profile", "seeds", "device", "data_root"} <= set(tagged[0].source.split()), "standard parameters"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "stored outputs must be executed (make notebooks)"
    assert f"notebooks/{path.stem}" in _toc_files()
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells), \
        "stored notebooks are the default profile: no injected parameters"


def test_toc_files_exist_and_runner_finds_notebooks(monkeypatch):
    for f in _toc_files():
        assert any((ROOT / f"{f}{ext}").exists() for ext in ("", ".md", ".ipynb")), f
    monkeypatch.chdir(ROOT)
    assert sorted(p.name for p in notebooks_in_toc()) == sorted(p.name for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_under_quick_profile(path, tmp_path):
    report = execute(path, tmp_path / path.name, {"profile": "quick"}, cwd=path.parent)
    assert report.output.exists()
