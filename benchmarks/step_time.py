"""Median training-step time of methods, as a ratio to joint training measured in the same run.

A "step" is everything ``fit`` does for one batch: hooks, forward, loss, backward, gradient
edits and the optimizer step. Timings are medians over many steps after a warm-up, with one
thread, so the ratio is what the method costs on top of joint training. They count the
process's CPU time (``--clock wall``: elapsed time), which the load of a shared machine does
not stretch.

    python benchmarks/step_time.py                       # joint only
    python benchmarks/step_time.py --methods ogm-ge opm  # ratios vs joint, same run
    python benchmarks/step_time.py --dataset mfeat --steps 300
    python benchmarks/step_time.py --methods mmpareto --separate-uni --optimizer adamw
    python benchmarks/step_time.py --methods mmpareto mmpareto:batched=true  # name:key=value,...
    python benchmarks/step_time.py --dataset av-mnist --benchmark --output benchmarks/results/step_time.csv
    python benchmarks/step_time.py --fit --dataset av-mnist --methods relearning:period=4

``--benchmark`` times every method of the benchmark notebook (``mm.benchmark.compared()``: the
registry minus its exclusions), each built and headed as the notebook builds it; ``--output``
writes the table as CSV (``mm.benchmark.write_step_times``) with the machine it ran on, for the
notebook to read. Run it under portable numerics, as the notebooks run: ``mmlib exec -- python ...``.

``--fit`` times whole ``fit`` runs at the default profile's epochs instead of single steps:
methods that act at epoch ends (Diagnosing & Re-learning's diagnosis, G-Blending's loss
measurements) cost nothing per step, so their price shows only in the amortised epoch time
(validation included, as ``fit`` runs it). With ``--benchmark --fit`` the ratios are per epoch
(the CSV's ``unit`` column says which).

The optimizer is the ``default`` profile's (SGD with momentum) unless ``--optimizer`` says
otherwise; every method trains the same model (``--separate-uni``: one linear classifier per
modality, as MMPareto's chapter uses).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

import torch

import mmlib as mm
from mmlib.data.base import BatchLoader
from mmlib.methods.base import TrainState
from mmlib.train import Hooks, make_optimizer, train_step


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


def step_times(data, method_names: list, steps: int, warmup: int, batch_size: int, fusion: str,
               optimizer: dict, separate_uni: bool = False, seed: int = 0, clock: str = "cpu") -> list[float]:
    """Seconds per training step (``mmlib.train.train_step``), one entry per measured step.

    ``clock="cpu"`` (default) counts this process's CPU time, which other processes on a shared
    machine do not stretch (the step runs on one thread); ``"wall"`` counts elapsed time.
    ``method_names``: method specs (names, ``name:key=value`` or what ``make_methods`` takes).
    ``optimizer``: ``name``, ``lr``, ``weight_decay``, ``momentum`` (as ``make_optimizer``).
    """
    mm.seed_everything(seed)
    model = mm.build_model(data, fusion=fusion, separate_uni=separate_uni)
    hooks = Hooks(mm.methods.make_methods(method_names))
    opt = make_optimizer(model, **optimizer)
    gen = torch.Generator().manual_seed(seed)
    state = TrainState(model=model, optimizer=opt, modalities=model.modalities, num_classes=data.num_classes,
                       num_epochs=1, device=torch.device("cpu"), generator=gen, batch_size=batch_size,
                       data=data, task=mm.task.Classification())
    hooks.call("on_fit_start", state)
    hooks.call("on_train_epoch_start", state)
    loader = BatchLoader(data.train, batch_size, shuffle=True, generator=gen, drop_last=True)
    times: list[float] = []
    model.train()
    while len(times) < steps + warmup:
        for batch in loader:
            t0 = CLOCKS[clock]()
            train_step(model, state, hooks, batch)
            times.append(CLOCKS[clock]() - t0)
            if len(times) >= steps + warmup:
                break
    return times[warmup:]


def epoch_time(data, method_names: list, train: dict, fusion: str, separate_uni: bool = False,
               seed: int = 0) -> float:
    """CPU seconds per epoch of one whole ``fit`` (every hook, validation and the final test), amortised.

    CPU time of this single-threaded process, not wall time: a whole fit lasts long enough for
    other processes on a shared machine to stretch its wall time.
    """
    mm.seed_everything(seed)
    model = mm.build_model(data, fusion=fusion, separate_uni=separate_uni)
    t0 = time.process_time()
    mm.fit(model, data, mm.methods.make_methods(method_names), seed=seed, **train)
    return (time.process_time() - t0) / train["num_epochs"]


def cpu_name() -> str:
    """The processor's model name (Linux), else what ``platform`` knows."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="*", default=[], help="method names to compare with joint training")
    p.add_argument("--benchmark", action="store_true",
                   help="time every method of the benchmark notebook (mm.benchmark.compared()) as it runs them")
    p.add_argument("--output", default=None, help="also write the table to this CSV file")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="cpu",
                   help="cpu: this process's CPU time (default; robust on a shared machine); wall: elapsed time")
    p.add_argument("--dataset", default="av-digits")
    p.add_argument("--fusion", default="concat")
    p.add_argument("--separate-uni", action="store_true", help="one linear classifier per modality in the head")
    p.add_argument("--optimizer", choices=["sgd", "adamw"], default=None,
                   help="default: the default profile's optimizer and settings for the dataset")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--fit", action="store_true", help="time whole fits (amortised epoch time), not steps")
    p.add_argument("--epochs", type=int, default=None, help="with --fit: epochs (default: the profile's)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the ratio is the median over rounds")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = mm.load_dataset(args.dataset)
    train = mm.profiles.resolve("default").train(args.dataset)
    name = args.optimizer or train["optimizer"]
    optimizer = {"name": name, "lr": train["lr"] if name == train["optimizer"] else 1e-3,
                 "weight_decay": train["weight_decay"], "momentum": train["momentum"]}
    extra = mm.benchmark.compared() if args.benchmark else args.methods
    names = ["joint"] + [m for m in extra if m != "joint"]
    fit_train = {**train, "optimizer": name, "lr": optimizer["lr"], "batch_size": args.batch_size,
                 "num_epochs": args.epochs or train["num_epochs"]}
    # the step mode runs one "epoch" of steps (TrainState.num_epochs = 1): settings counted in epochs follow it
    epochs = fit_train["num_epochs"] if args.fit else 1
    specs = {n: mm.benchmark.method_spec(n, data.modalities, epochs) if args.benchmark else n for n in names}
    fusions = {n: mm.benchmark.fusion_of(n) if args.benchmark else args.fusion for n in names}
    medians: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.rounds):  # interleave so that machine noise hits every method alike
        for n in names:
            if args.fit:
                medians[n].append(epoch_time(data, [specs[n]], fit_train, fusions[n], args.separate_uni))
                continue
            medians[n].append(statistics.median(step_times(data, [specs[n]], args.steps, args.warmup,
                                                           args.batch_size, fusions[n], optimizer, args.separate_uni,
                                                           clock=args.clock)))
    unit = "epoch" if args.fit else "step"
    meta = {"unit": unit, "dataset": args.dataset, "separate_uni": args.separate_uni, "optimizer": name,
            "batch_size": args.batch_size, "steps": 0 if args.fit else args.steps,
            "epochs": fit_train["num_epochs"] if args.fit else 0, "rounds": args.rounds, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "clock": args.clock, "portable": mm.portable.wanted(),
            "cpu": cpu_name(), "cores": os.cpu_count(), "date": datetime.date.today().isoformat()}
    print(f"fusion={args.fusion} " + " ".join(f"{k}={v}" for k, v in meta.items()))
    print(f"{'method':<24}{f'median {unit} (ms)':>18}{'ratio vs joint':>16}{'ratio range':>16}")
    rows = []
    for n in names:  # each round's median over that round's joint median: machine drift cancels
        ratios = [a / b for a, b in zip(medians[n], medians["joint"])]
        rows.append({"method": n, "head": fusions[n], "median_ms": statistics.median(medians[n]) * 1e3,
                     "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)})
        print(f"{n:<24}{rows[-1]['median_ms']:>18.3f}{rows[-1]['ratio']:>16.3f}"
              f"{min(ratios):>10.3f}-{max(ratios):.3f}" + (f"  ({fusions[n]})" if fusions[n] != args.fusion else ""))
    if args.output:
        print(f"written: {mm.benchmark.write_step_times(args.output, rows, meta)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
