"""The benchmark notebook covers every registered method: it reads the registry, and its stored run is current.

A method registered after the notebook was last executed makes ``test_stored_run_covers_every_compared_method``
fail until the notebook is re-executed (``mmlib run --inplace --profile default notebooks/benchmark.ipynb``).
"""
import ast
from pathlib import Path

import nbformat

import mmlib as mm

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "benchmark.ipynb"


def _nb():
    return nbformat.read(NOTEBOOK, as_version=4)


def _glued(nb, name):
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                return ast.literal_eval(out["data"]["application/papermill.record/text/plain"])
    raise AssertionError(f"the stored notebook glues no {name!r}: execute it")


def test_the_method_list_is_read_from_the_registry_and_the_exclusions_are_shown():
    code = "\n".join(c.source for c in _nb().cells if c.cell_type == "code")
    assert "names = mm.benchmark.compared()" in code
    assert "mm.benchmark.excluded()" in code
    assert "mm.benchmark.run_all(data, names," in code
    registered = mm.METHODS.names()
    quoted = [n for n in registered if f'"{n}"' in code or f"'{n}'" in code]
    # no hand-written list of methods: only the baselines it compares with or reads logs from are named
    assert set(quoted) <= {"joint", "joint-uni", "g-blending", "ensemble"}, quoted


def test_every_registered_method_is_run_or_excluded_with_a_reason():
    registered = set(mm.METHODS.names())
    excluded = set(mm.benchmark.excluded().index)
    assert set(mm.benchmark.compared()) | excluded == registered
    assert all(mm.benchmark.EXCLUDED[n] for n in excluded)


def test_stored_run_covers_every_compared_method():
    stored = _glued(_nb(), "bench_methods").split(", ")
    assert stored == mm.benchmark.compared(), "re-execute notebooks/benchmark.ipynb: the registry changed"
