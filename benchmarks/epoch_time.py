"""Epoch time of re-sampling methods as a ratio to joint training, with and without their extra copies.

An "epoch" is what ``fit`` does between two validations: ``train_loader``, the epoch-start hooks,
every training step and the epoch-end hooks (where valuation runs). Re-sampled epochs are longer
because they train on copies; the ratio "without copies" removes the copies' share of the steps'
time (steps x copies / samples trained), leaving the valuation and bookkeeping overhead. Medians
over the measured epochs (after ``--warmup`` epochs without copies), with one thread, in process
CPU time rather than wall-clock time, so that other processes on a shared machine do not count.

    python benchmarks/epoch_time.py                          # av-mnist, the two methods' defaults
    python benchmarks/epoch_time.py --methods sample-resampling:features=eval
    python benchmarks/epoch_time.py --dataset mfeat --epochs 4
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

import mmlib as mm
from mmlib.methods.base import TrainState
from mmlib.train import Hooks, make_optimizer, train_step

DEFAULT_METHODS = ["sample-resampling", "sample-resampling:features=eval", "modality-resampling",
                   "modality-resampling:features=eval"]


def epoch_times(data, method: str, epochs: int, warmup: int, train: dict, seed: int = 0) -> list[dict[str, float]]:
    """Per measured epoch: ``total`` and ``steps`` seconds, ``samples`` trained (originals + copies)."""
    mm.seed_everything(seed)
    model = mm.build_model(data)
    name, kwargs = mm.methods.parse_name(method)
    spec = method if name == "joint" else (name, {"warmup": warmup, **kwargs})
    hooks = Hooks(mm.methods.make_methods(spec))
    opt = make_optimizer(model, train["optimizer"], train["lr"], train["weight_decay"], train["momentum"])
    gen = torch.Generator().manual_seed(seed)
    state = TrainState(model=model, optimizer=opt, modalities=model.modalities, num_classes=data.num_classes,
                       num_epochs=epochs, device=torch.device("cpu"), generator=gen, batch_size=train["batch_size"],
                       data=data, task=mm.task.Classification())
    default = mm.data.BatchLoader(data.train, train["batch_size"], shuffle=True, generator=gen)
    hooks.call("on_fit_start", state)
    out = []
    for epoch in range(epochs):
        state.epoch = epoch
        model.train()
        t0 = time.process_time()
        loader = (hooks.loader_owner.train_loader(state, data.train) if hooks.loader_owner else None) or default
        hooks.call("on_train_epoch_start", state)
        steps, samples = 0.0, 0
        for batch in loader:
            s0 = time.process_time()
            train_step(model, state, hooks, batch)
            steps += time.process_time() - s0
            samples += len(batch["y"])
        hooks.call("on_train_epoch_end", state)
        if epoch >= warmup:
            out.append({"total": time.process_time() - t0, "steps": steps, "samples": samples})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="*", default=DEFAULT_METHODS, help="re-sampling method specs")
    p.add_argument("--dataset", default="av-mnist")
    p.add_argument("--epochs", type=int, default=6, help="epochs per run, warm-up included")
    p.add_argument("--warmup", type=int, default=2, help="epochs before the first copies (not measured)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds; medians over all measured epochs")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = mm.load_dataset(args.dataset)
    train = mm.profiles.resolve("default").train(args.dataset)
    names = ["joint"] + [m for m in args.methods if m != "joint"]
    epochs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for _ in range(args.rounds):  # interleave so that machine noise hits every method alike
        for n in names:
            epochs[n] += epoch_times(data, n, args.epochs, args.warmup, train)
    n_train = len(data.train)
    joint = statistics.median(e["total"] for e in epochs["joint"])
    print(f"dataset={args.dataset} N={n_train} batch={train['batch_size']} epochs={args.epochs} "
          f"(first {args.warmup} without copies, not measured) rounds={args.rounds} torch={torch.__version__} "
          f"threads={torch.get_num_threads()}")
    print(f"{'method':<38}{'epoch (CPU s)':>14}{'samples/N':>11}{'ratio':>8}{'ratio w/o copies':>18}")
    for n in names:
        total = statistics.median(e["total"] for e in epochs[n])
        no_copies = statistics.median(e["total"] - e["steps"] * (e["samples"] - n_train) / e["samples"]
                                      for e in epochs[n])
        size = statistics.median(e["samples"] / n_train for e in epochs[n])
        print(f"{n:<38}{total:>14.3f}{size:>11.2f}{total / joint:>8.3f}{no_copies / joint:>18.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
