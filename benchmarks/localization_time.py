"""Training time of the two-stage sounding-object localization (``mmlib.localization.run``), per stage.

Trains both stages with a profile's settings for ``av-solo`` and ``av-cocktail`` (one thread, as
``seed_everything`` sets) and prints, per seed, the seconds of each ``fit`` and the process's CPU
time for the whole run, so the chapter's budget can be checked on any machine.

    python benchmarks/localization_time.py                        # default profile, seed 0, the paper's stage two
    python benchmarks/localization_time.py --seeds 0 1 2 --ablation   # the chapter's runs (adds "no L_cat")
    python benchmarks/localization_time.py --profile quick
"""
from __future__ import annotations

import argparse
import resource
import sys
import time

import mmlib as mm


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--ablation", action="store_true", help="also train stage two without L_cat")
    parser.add_argument("--n-scenes", type=int, default=None, help="override both datasets' n_scenes")
    args = parser.parse_args(argv)
    overrides = {} if args.n_scenes is None else {"n_scenes": args.n_scenes}
    cfg = mm.profiles.resolve(args.profile, seeds=args.seeds, **overrides)
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    solo, cocktail = cfg.load("av-solo"), cfg.load("av-cocktail")
    data_cpu = cpu_seconds() - cpu0
    variants = {"stage 2": {}, **({"no L_cat": {"use_cat": False}} if args.ablation else {})}
    runs = mm.localization.run(solo, cocktail, seeds=cfg.seeds, stage1=cfg.train("av-solo"),
                               stage2=cfg.train("av-cocktail"), variants=variants)
    print(f"profile={cfg.name} seeds={cfg.seeds} variants={list(variants)} data: {data_cpu:.1f} s CPU")
    for r in runs.results:
        stages = ", ".join(f"{label} {f.seconds:.1f} s" for label, f in r.stage2.items())
        print(f"seed {r.seed}: stage 1 {r.stage1.seconds:.1f} s, {stages} (wall clock of each fit)")
    print(f"total: {cpu_seconds() - cpu0:.1f} s CPU, {time.perf_counter() - wall0:.1f} s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
