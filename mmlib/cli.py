"""``mmlib`` command line: ``mmlib run`` executes notebooks with a profile; ``mmlib list`` shows registries.

Examples::

    mmlib run --inplace --jobs 2                         # every notebook, default profile, outputs stored
    mmlib run notebooks/imbalance.ipynb --profile quick --output-dir _build/quick
    mmlib run notebooks/imbalance.ipynb -p seeds '[0, 1, 2, 3, 4]' -p overrides '{"num_epochs": 40}'
    mmlib run notebooks/imbalance.ipynb --params my_run.yaml --output-dir runs/
    eval "$(mmlib env)"                                  # this shell: the portable-numerics environment
    mmlib exec -- pytest --nbval notebooks/               # one command in that environment
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import yaml

from .runner import NotebookError, execute_many, load_params


def notebooks_in_toc(toc: Path = Path("_toc.yml")) -> list[Path]:
    """Notebooks listed in the book's table of contents, in order."""
    if not toc.exists():
        return sorted(p for p in Path("notebooks").glob("*.ipynb") if not p.name.startswith("."))
    found: list[Path] = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("file") or node.get("root")
            if isinstance(f, str) and f.startswith("notebooks/"):
                p = Path(f if f.endswith(".ipynb") else f + ".ipynb")
                if p.exists():
                    found.append(p)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(yaml.safe_load(toc.read_text()))
    return found


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    notebooks = [Path(n) for n in args.notebooks] or notebooks_in_toc()
    if not notebooks:
        print("mmlib run: no notebooks given and none found in _toc.yml", file=sys.stderr)
        return 2
    if not args.inplace and not args.output_dir:
        print("mmlib run: choose --inplace (store outputs in the notebooks) or --output-dir DIR", file=sys.stderr)
        return 2
    try:
        params = load_params(args.params)
    except NotebookError as err:
        print(f"mmlib run: {err}", file=sys.stderr)
        return 2
    for key, value in args.p or []:
        try:
            params[key] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            print(f"mmlib run: -p {key}: not valid YAML ({problem}): {value!r}; close every bracket and quote, "
                  f"e.g. -p seeds '[0, 1]'", file=sys.stderr)
            return 2
    if args.profile:
        params["profile"] = args.profile
    jobs = [(nb, nb if args.inplace else Path(args.output_dir) / nb.name) for nb in notebooks]
    start, total = time.perf_counter(), 0.0
    bar = tqdm(total=len(jobs), desc="notebooks", unit="nb", file=sys.stderr, disable=None)
    try:
        for report in execute_many(jobs, params, workers=args.jobs, timeout=args.timeout):
            total += report.seconds
            bar.update()
            tqdm.write(f"{report.notebook}: {report.seconds:.1f} s -> {report.output}", file=sys.stderr)
    except NotebookError as err:
        bar.close()
        print(f"mmlib run: {err}", file=sys.stderr)
        return 1
    bar.close()
    wall = time.perf_counter() - start
    print(f"mmlib run: {len(notebooks)} notebook(s) in {wall:.1f} s ({total:.1f} s of notebook time, "
          f"{args.jobs} at a time)", file=sys.stderr)
    return 0


def _seconds(text: str) -> int:
    """``--timeout``: a positive whole number of seconds."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number of seconds, got {text!r}")
    return value


def _list(args: argparse.Namespace) -> int:
    from . import DATASETS, ENCODERS, FUSIONS, METHODS
    from .profiles import PROFILES

    for reg in (DATASETS, ENCODERS, FUSIONS, METHODS):
        print(f"{reg.kind}s: {', '.join(reg.names())}")
    print(f"profiles: {', '.join(PROFILES)}")
    return 0


def _env(args: argparse.Namespace) -> int:
    from . import portable

    print(portable.shell_exports())
    return 0


def _exec(args: argparse.Namespace) -> int:
    from . import portable

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("mmlib exec: give a command, e.g. mmlib exec -- pytest --nbval notebooks/", file=sys.stderr)
        return 2
    try:
        os.execvpe(command[0], command, portable.process_env())
    except OSError as err:
        print(f"mmlib exec: cannot run {command[0]!r}: {err.strerror}", file=sys.stderr)
        return 127


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mmlib", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks with papermill")
    run.add_argument("notebooks", nargs="*", help="notebooks to run (default: every notebook in _toc.yml)")
    run.add_argument("--profile", help="quick, default or paper (sets the 'profile' parameter)")
    run.add_argument("--params", help="YAML file of parameters")
    run.add_argument("-p", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="one parameter; VALUE is read as YAML")
    run.add_argument("--output-dir", help="write executed copies here")
    run.add_argument("--inplace", action="store_true", help="store outputs in the notebooks themselves")
    run.add_argument("--timeout", type=_seconds, default=None, help="seconds allowed per cell")
    run.add_argument("--jobs", "-j", type=int, default=1,
                     help="notebooks executed at once, one single-threaded kernel each (default 1)")
    run.set_defaults(func=_run)
    lst = sub.add_parser("list", help="list registered datasets, encoders, fusions, methods, profiles")
    lst.set_defaults(func=_list)
    env = sub.add_parser("env", help="print the portable-numerics environment as shell exports")
    env.set_defaults(func=_env)
    ex = sub.add_parser("exec", help="run a command in the portable-numerics environment")
    ex.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments (after --)")
    ex.set_defaults(func=_exec)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # usage errors and --help: argparse has printed; return its code
        return exit.code if isinstance(exit.code, int) else 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
