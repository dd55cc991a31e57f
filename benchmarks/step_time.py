"""Median training-step time of methods, as a ratio to joint training measured in the same run.

A "step" is everything ``fit`` does for one batch: hooks, forward, loss, backward, gradient
edits and the optimizer step. Timings are medians over many steps after a warm-up, with one
thread, so the ratio is what the method costs on top of joint training.

    python benchmarks/step_time.py                       # joint only
    python benchmarks/step_time.py --methods ogm-ge opm  # ratios vs joint, same run
    python benchmarks/step_time.py --dataset mfeat --steps 300
    python benchmarks/step_time.py --methods mmpareto --separate-uni --optimizer adamw
    python benchmarks/step_time.py --methods mmpareto mmpareto:batched=true  # name:key=value,...
    python benchmarks/step_time.py --fit --dataset av-mnist --methods relearning:period=4

``--fit`` times whole ``fit`` runs at the default profile's epochs instead of single steps:
methods that act at epoch ends (Diagnosing & Re-learning's diagnosis) cost nothing per step, so
their price shows only in the amortised epoch time (validation included, as ``fit`` runs it).

The optimizer is the ``default`` profile's (SGD with momentum) unless ``--optimizer`` says
otherwise; every method trains the same model (``--separate-uni``: one linear classifier per
modality, as MMPareto's chapter uses).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

import mmlib as mm
from mmlib.data.base import BatchLoader
from mmlib.methods.base import TrainState
from mmlib.train import Hooks, make_optimizer, train_step


def step_times(data, method_names: list[str], steps: int, warmup: int, batch_size: int, fusion: str,
               optimizer: dict, separate_uni: bool = False, seed: int = 0) -> list[float]:
    """Seconds per training step (``mmlib.train.train_step``), one entry per measured step.

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
            t0 = time.perf_counter()
            train_step(model, state, hooks, batch)
            times.append(time.perf_counter() - t0)
            if len(times) >= steps + warmup:
                break
    return times[warmup:]


def epoch_time(data, method_names: list[str], train: dict, fusion: str, separate_uni: bool = False,
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="*", default=[], help="method names to compare with joint training")
    p.add_argument("--dataset", default="av-digits")
    p.add_argument("--fusion", default="concat")
    p.add_argument("--separate-uni", action="store_true", help="one linear classifier per modality in the head")
    p.add_argument("--optimizer", choices=["sgd", "adamw"], default=None,
                   help="default: the default profile's optimizer and settings for the dataset")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the ratio is the median over rounds")
    p.add_argument("--fit", action="store_true", help="time whole fits (amortised epoch time), not steps")
    p.add_argument("--epochs", type=int, default=None, help="with --fit: epochs (default: the profile's)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = mm.load_dataset(args.dataset)
    train = mm.profiles.resolve("default").train(args.dataset)
    name = args.optimizer or train["optimizer"]
    optimizer = {"name": name, "lr": train["lr"] if name == train["optimizer"] else 1e-3,
                 "weight_decay": train["weight_decay"], "momentum": train["momentum"]}
    names = ["joint"] + [m for m in args.methods if m != "joint"]
    medians: dict[str, list[float]] = {n: [] for n in names}
    fit_train = {**train, "optimizer": name, "lr": optimizer["lr"], "batch_size": args.batch_size,
                 "num_epochs": args.epochs or train["num_epochs"]}
    for _ in range(args.rounds):  # interleave so that machine noise hits every method alike
        for n in names:
            if args.fit:
                medians[n].append(epoch_time(data, [n], fit_train, args.fusion, args.separate_uni))
                continue
            medians[n].append(statistics.median(step_times(data, [n], args.steps, args.warmup, args.batch_size,
                                                           args.fusion, optimizer, args.separate_uni)))
    size = f"epochs={fit_train['num_epochs']}x{args.rounds}" if args.fit else f"steps={args.steps}x{args.rounds}"
    print(f"dataset={args.dataset} fusion={args.fusion} separate_uni={args.separate_uni} optimizer={name} "
          f"batch={args.batch_size} {size} torch={torch.__version__} threads={torch.get_num_threads()}")
    unit = "epoch (ms)" if args.fit else "median step (ms)"
    print(f"{'method':<24}{unit:>18}{'ratio vs joint':>16}{'ratio range':>16}")
    for n in names:  # each round's median over that round's joint median: machine drift cancels
        ratios = [a / b for a, b in zip(medians[n], medians["joint"])]
        print(f"{n:<24}{statistics.median(medians[n]) * 1e3:>18.3f}{statistics.median(ratios):>16.3f}"
              f"{min(ratios):>10.3f}-{max(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
