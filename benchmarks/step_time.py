"""Median training-step time of methods, as a ratio to joint training measured in the same run.

A "step" is everything ``fit`` does for one batch: hooks, forward, loss, backward, gradient
edits and the optimizer step. Timings are medians over many steps after a warm-up, with one
thread, so the ratio is what the method costs on top of joint training.

    python benchmarks/step_time.py                       # joint only
    python benchmarks/step_time.py --methods ogm-ge opm  # ratios vs joint, same run
    python benchmarks/step_time.py --dataset mfeat --steps 300
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
               seed: int = 0) -> list[float]:
    """Seconds per training step (``mmlib.train.train_step``), one entry per measured step."""
    mm.seed_everything(seed)
    model = mm.build_model(data, fusion=fusion)
    hooks = Hooks(mm.experiment.make_methods(method_names))
    opt = make_optimizer(model, "adamw", 1e-3, 1e-4, 0.9)
    gen = torch.Generator().manual_seed(seed)
    state = TrainState(model=model, optimizer=opt, modalities=model.modalities, num_classes=data.num_classes,
                       num_epochs=1, device=torch.device("cpu"), generator=gen, batch_size=batch_size)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="*", default=[], help="method names to compare with joint training")
    p.add_argument("--dataset", default="av-digits")
    p.add_argument("--fusion", default="concat")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median of round medians is kept")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = mm.load_dataset(args.dataset)
    names = ["joint"] + [m for m in args.methods if m != "joint"]
    medians: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.rounds):  # interleave so that machine noise hits every method alike
        for n in names:
            medians[n].append(statistics.median(step_times(data, [n], args.steps, args.warmup, args.batch_size,
                                                           args.fusion)))
    base = statistics.median(medians["joint"])
    print(f"dataset={args.dataset} fusion={args.fusion} batch={args.batch_size} steps={args.steps}x{args.rounds} "
          f"torch={torch.__version__} threads={torch.get_num_threads()}")
    print(f"{'method':<16}{'median step (ms)':>18}{'ratio vs joint':>16}")
    for n in names:
        med = statistics.median(medians[n])
        print(f"{n:<16}{med * 1e3:>18.3f}{med / base:>16.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
