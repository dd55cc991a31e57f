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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterator

import yaml


class NotebookError(RuntimeError):
    """A notebook could not be run; the message names the notebook and the reason."""


@dataclass
class RunReport:
    notebook: Path
    output: Path
    seconds: float


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """The names declared in the notebook's ``parameters`` cell."""
    import papermill as pm

    nb_path = Path(notebook)
    if not nb_path.is_file():
        raise NotebookError(f"notebook {str(nb_path)!r} does not exist")
    params = pm.inspect_notebook(str(nb_path))
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


def check_parameters(notebook: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Reject undeclared names; return only the parameters that differ from the defaults.

    Dropping unchanged values keeps a default-profile run free of papermill's injected cell,
    so the stored notebooks stay identical in structure to their sources.
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
        Path(tmp).unlink(missing_ok=True)
        raise NotebookError(f"{notebook} failed: {str(err).strip().splitlines()[-1] if str(err).strip() else err!r}"
                            ) from err
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
