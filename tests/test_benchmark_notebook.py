"""The benchmark notebook covers every registered method: it reads the registry, and its stored run is current.

A method registered after the notebook was last executed makes ``test_stored_run_covers_every_compared_method``
fail until the notebook is re-executed; its message gives the exact commands (``RERUN``).
"""
import ast
from pathlib import Path

import nbformat

import mmlib as mm

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "benchmark.ipynb"
RERUN = ("\nRe-execute the benchmark notebook with the default profile on this tree, then check it:\n"
         "  mmlib exec -- mmlib run --inplace --profile default notebooks/benchmark.ipynb\n"
         "  TQDM_DISABLE=1 mmlib exec -- python -m pytest notebooks/benchmark.ipynb --nbval --nbval-current-env "
         "--nbval-sanitize-with .nbval-sanitize.cfg -q -p no:cacheprovider\n"
         "(nothing else needs editing: the notebook reads the registry; a new method that is not a balancing "
         "method goes in mm.benchmark.EXCLUDED, a deviation from its defaults in mm.benchmark.SETTINGS)")


def _nb():
    return nbformat.read(NOTEBOOK, as_version=4)


def _glued(nb, name):
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("metadata", {}).get("scrapbook", {}).get("name") == name:
                return ast.literal_eval(out["data"]["application/papermill.record/text/plain"])
    raise AssertionError(f"the stored notebook glues no {name!r}: it was not executed." + RERUN)


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
    current = mm.benchmark.compared()
    not_run = [n for n in current if n not in stored]
    gone = [n for n in stored if n not in current]
    assert stored == current, (f"the stored run of notebooks/benchmark.ipynb compares {len(stored)} methods, the "
                               f"registry now gives {len(current)}: not run {not_run}, no longer compared {gone}."
                               + RERUN)


def test_stored_run_is_the_default_profile_with_several_seeds():
    assert _glued(_nb(), "bench_n_seeds") >= 3, "the stored run is not the default profile." + RERUN
