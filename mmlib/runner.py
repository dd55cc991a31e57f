"""Execute notebooks with papermill under a profile: the engine behind ``mmlib run``.

Papermill only warns about a parameter the notebook does not declare; here that is an error,
raised before anything runs. In-place runs execute into a temporary file and replace the
notebook only on success, so a failing run never destroys the stored outputs.

Kernels start in the portable-numerics environment (``mmlib/portable.py``): importing mmlib put
it into this process's environment, which every kernel inherits. ``execute_many`` runs several
notebooks at once, one single-threaded kernel each.
"""
from __future__ import annotations

import ast
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Iterator

import yaml


class NotebookError(RuntimeError):
    """A notebook could not be run; the message names the notebook and the reason."""


@dataclass
class RunReport:
    notebook: Path
    output: Path
    seconds: float


def check_notebook(notebook: str | Path) -> Path:
    """An existing ``.ipynb`` file; a directory, a Markdown file or a missing path is an error."""
    path = Path(notebook)
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.ipynb"))
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        raise NotebookError(f"{str(path)!r} is a directory; a .ipynb notebook file is expected{hint}")
    if path.suffix != ".ipynb":
        twin = path.with_suffix(".ipynb")
        hint = f"; did you mean {str(twin)!r}?" if twin.is_file() else ""
        raise NotebookError(f"{str(path)!r} is not a notebook: a .ipynb file is expected{hint}")
    if not path.is_file():
        raise NotebookError(f"notebook {str(path)!r} does not exist")
    return path


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """The names declared in the notebook's ``parameters`` cell."""
    import papermill as pm

    nb_path = check_notebook(notebook)
    try:
        params = pm.inspect_notebook(str(nb_path))
    except Exception as err:  # not JSON, not a notebook, no kernel: papermill's message, one line
        text = str(err).strip().splitlines()
        raise NotebookError(f"cannot read notebook {str(nb_path)!r}: {text[-1] if text else type(err).__name__}; "
                            f"is it a Jupyter notebook saved by Jupyter?") from None
    if not params:
        raise NotebookError(f"{nb_path} has no cell tagged 'parameters'; tag the cell of plain defaults")
    return params


def load_params(path: str | Path | None) -> dict[str, Any]:
    """Parameters from a YAML file (a mapping of name -> value)."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise NotebookError(f"cannot read parameter file {str(path)!r}: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise NotebookError(f"parameter file {str(path)!r} must hold a mapping name: value, got {type(data).__name__}")
    return data


def match_default(notebook: Path, name: str, value: Any, default: Any) -> Any:
    """``value`` in the shape of a list or mapping ``default``: a single string becomes a list of one.

    ``-p datasets mfeat`` reaches us as the string ``"mfeat"``, which a notebook would iterate
    letter by letter; it is wrapped as ``["mfeat"]`` with a note. Any other scalar where the
    default is a list, or a non-mapping where it is a mapping, is an error with an example.
    """
    if isinstance(default, list) and isinstance(value, str):
        print(f"mmlib run: note: {notebook}: parameter {name!r} is a list; using [{value!r}] for {value!r}",
              file=sys.stderr)
        return [value]
    if isinstance(default, list) and isinstance(value, (bool, int, float, dict)):
        raise NotebookError(f"{notebook}: parameter {name!r} must be a list like its default {default!r}, "
                            f"got {value!r}; e.g. -p {name} '[{value}]'")
    if isinstance(default, dict) and value is not None and not isinstance(value, dict):
        raise NotebookError(f"{notebook}: parameter {name!r} must be a mapping like its default {default!r}, "
                            f"got {value!r}; e.g. -p {name} '{{name: value}}'")
    return value


def check_parameters(notebook: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Reject undeclared names; return only the parameters that differ from the defaults.

    Dropping unchanged values keeps a default-profile run free of papermill's injected cell,
    so the stored notebooks stay identical in structure to their sources. Values are put in
    the shape of list and mapping defaults first (``match_default``).
    """
    declared = declared_parameters(notebook)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise NotebookError(f"{notebook}: unknown parameter(s) {unknown}; it declares {sorted(declared)}")
    changed = {}
    for name, value in params.items():
        try:
            default = ast.literal_eval(declared[name]["default"])
        except (ValueError, SyntaxError, KeyError):
            default = object()
        value = match_default(notebook, name, value, default)
        if default != value or type(default) is not type(value):
            changed[name] = value
    return changed


def execute(notebook: str | Path, output: str | Path, params: dict[str, Any], cwd: str | Path | None = None,
            timeout: int | None = None) -> RunReport:
    """Run one notebook into ``output`` (atomically: a failed run leaves ``output`` untouched)."""
    import papermill as pm

    notebook, output = Path(notebook), Path(output)
    params = check_parameters(notebook, params)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".ipynb", dir=output.parent, prefix=f".{output.stem}-")
    os.close(fd)
    start = time.perf_counter()
    env_before = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        pm.execute_notebook(str(notebook), tmp, parameters=params or None, kernel_name="python3",
                            cwd=str(cwd or notebook.parent), progress_bar=False, execution_timeout=timeout)
    except Exception as err:  # papermill raises its own error type with the failing cell
        message = failure_message(notebook, err, Path(tmp), timeout)
        Path(tmp).unlink(missing_ok=True)
        raise NotebookError(message) from err
    finally:
        if env_before is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = env_before
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
    os.replace(tmp, output)
    return RunReport(notebook, output, time.perf_counter() - start)


def execute_many(jobs: list[tuple[Path, Path]], params: dict[str, Any], workers: int = 1,
                 timeout: int | None = None) -> Iterator[RunReport]:
    """Run ``(notebook, output)`` pairs, ``workers`` at a time; yield each report as it finishes.

    Every notebook's parameters are checked before the first one starts. A failure stops the
    notebooks not yet started and raises its ``NotebookError`` once the running ones are done.
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise NotebookError(f"jobs must be a whole number >= 1, got {workers!r}")
    for notebook, _ in jobs:
        check_parameters(notebook, params)
    if workers == 1 or len(jobs) == 1:
        for notebook, output in jobs:
            yield execute(notebook, output, params, timeout=timeout)
        return
    # spawn, not fork: this process has torch loaded, and a forked copy of its runtime is not safe
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(execute, nb, out, params, None, timeout) for nb, out in jobs]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def failed_cell(executed: Path, index: int | None) -> str:
    """``"cell 3 of 9 (`first line`)"``, counted in the source notebook, from the executed copy.

    ``index`` is papermill's index in the executed copy (which may hold an injected parameters
    cell); ``None`` means the last cell that started (a timeout names no cell).
    """
    import nbformat

    try:
        cells = nbformat.read(executed, as_version=4).cells
    except Exception:  # the copy may be missing or half-written; the message then names no cell
        return ""
    # papermill adds markdown cells pointing at an error after it computed the index; drop them
    cells = [c for c in cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
    if index is None:
        started = [i for i, c in enumerate(cells) if c.metadata.get("papermill", {}).get("start_time")]
        index = started[-1] if started else None
    if index is None or not 0 <= index < len(cells):
        return ""
    injected = ["injected-parameters" in c.metadata.get("tags", []) for c in cells]
    if injected[index]:
        return "the injected parameters cell"
    first = next((line.strip() for line in cells[index].source.splitlines() if line.strip()), "")
    first = first if len(first) <= 60 else first[:57] + "..."
    return f"cell {index - sum(injected[:index]) + 1} of {len(cells) - sum(injected)} (`{first}`)"


def failure_message(notebook: Path, err: Exception, executed: Path, timeout: int | None) -> str:
    """What went wrong, in one line: the cell and the error, or the cell that ran out of time."""
    from nbclient.exceptions import CellTimeoutError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(err, CellTimeoutError):
        where = failed_cell(executed, None) or "a cell"
        limit = f"{timeout} s" if timeout else "the --timeout"
        return (f"{notebook} failed: {where} exceeded the timeout of {limit}; raise --timeout "
                f"or run a smaller profile (--profile quick)")
    if isinstance(err, PapermillExecutionError):
        where = failed_cell(executed, err.cell_index) or f"cell {err.cell_index}"
        return f"{notebook} failed in {where}: {err.ename}: {err.evalue}"
    text = str(err).strip()
    return f"{notebook} failed: {text.splitlines()[-1] if text else repr(err)}"
