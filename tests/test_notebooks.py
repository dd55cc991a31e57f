"""Meta tests over the book: every notebook is well-formed, listed in _toc.yml, and runs quick.

Measured numbers reach the prose through myst-nb's glue: markdown types none, and every name
it pastes is glued, once, by a code cell when the notebook runs.
"""
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from mmlib.cli import notebooks_in_toc
from mmlib.runner import execute

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("*.ipynb") if not p.name.startswith("."))


GLUE_REF = re.compile(r"\{glue(?::\w+)?\}`([^`]+)`")  # {glue:text}`name:.1f` -> "name:.1f"
TYPED_MEAN_STD = re.compile(r"\d+\.\d+ ?± ?\d+\.\d+")


def glue_references(nb) -> set[str]:
    """Names pasted into markdown cells (a format spec after the last colon is dropped)."""
    return {ref.split(":")[0] for c in nb.cells if c.cell_type == "markdown" for ref in GLUE_REF.findall(c.source)}


def glued_names(nb) -> list[str]:
    """Names glued by code cells' outputs, in order (a repeated name is a book warning)."""
    return [o["metadata"]["scrapbook"]["name"] for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if "scrapbook" in o.get("metadata", {})]


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
def test_no_cell_hides_its_value_with_a_semicolon(path):
    """nbval runs cells with store_history=False, where IPython ignores a trailing ';': the value
    papermill hid (say ``<Legend at 0x...>``) shows up there and the outputs differ. Assign it."""
    nb = nbformat.read(path, as_version=4)
    last = [[ln for ln in c.source.rstrip().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
            for c in nb.cells if c.cell_type == "code"]
    hiding = [lines[-1] for lines in last if lines and lines[-1].rstrip().endswith(";")]
    assert not hiding, f"assign the value instead of ending the cell with ';': {hiding}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_prose_types_no_measured_mean_std(path):
    nb = nbformat.read(path, as_version=4)
    typed = [m for c in nb.cells if c.cell_type == "markdown" for m in TYPED_MEAN_STD.findall(c.source)]
    assert not typed, f"glue these from outputs instead of typing them: {typed}"


def test_glue_helpers_on_a_hand_made_notebook():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("gap {glue:text}`gap:.1f` and {glue}`fig`, typed 1.0"),
        nbformat.v4.new_code_cell("glue(...)", outputs=[nbformat.v4.new_output(
            "display_data", data={"application/papermill.record/text/plain": "1.0"},
            metadata={"scrapbook": {"name": "gap", "mime_prefix": "application/papermill.record/"}})])])
    assert glue_references(nb) == {"gap", "fig"}
    assert glued_names(nb) == ["gap"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_under_quick_profile(path, tmp_path):
    report = execute(path, tmp_path / path.name, {"profile": "quick"}, cwd=path.parent)
    assert report.output.exists()
    ran = nbformat.read(report.output, as_version=4)
    names = glued_names(ran)
    assert len(names) == len(set(names)), "a name glued twice"
    missing = glue_references(ran) - set(names)
    assert not missing, f"the prose pastes names that no cell glues: {sorted(missing)}"


PAGE_GLUE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+\.ipynb)::([^`:]+)(?::[^`]*)?`")


def test_book_pages_paste_only_what_stored_notebooks_glue():
    # myst-nb reads "path::key" without a format spec as "path:" + spec "key", so pages always give one
    pages = sorted((ROOT / "book").glob("*.md"))
    for page in pages:
        text = page.read_text()
        bare = re.findall(r"\{glue(?::\w+)?\}`[^`]+::[^`:]+`", text)
        assert not bare, f"{page.name}: give a format spec (e.g. ':s' or ':.1f') in {bare}"
        for path, key in PAGE_GLUE.findall(text):
            nb_path = (page.parent / path).resolve()
            assert nb_path in NOTEBOOKS, f"{page.name} pastes from {path}, which is not a notebook of the book"
            assert key in glued_names(nbformat.read(nb_path, as_version=4)), f"{page.name}: {path} glues no {key!r}"
