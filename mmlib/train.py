"""``fit``: the one training loop. Methods plug in through hooks (``mmlib/methods/base.py``).

What differs between kinds of work (the default loss, how a split is evaluated, which
validation metric selects the epoch) belongs to a task (``mmlib/task.py``; classification by
default), so this loop imports no method. Model selection is on the validation split: after every
epoch the task evaluates it and the best epoch's weights are kept; the test split is evaluated
once, for those weights. (The official codes of these papers pick the best *test* epoch; we do not.)

With ``checkpoint=path`` the loop saves model, optimizer, method states, history and random
states atomically after every epoch and resumes from that file if it exists and belongs to the
same run (``mmlib/checkpoint.py``).
Under ``torch.distributed`` (initialised by the caller) the model is wrapped in DDP and each
rank reads its share of every batch order; methods all-reduce what they must via ``state``.
Before every evaluation the BatchNorm running statistics are averaged over ranks, so all ranks
evaluate the same model, report the same metrics and select the same epoch.
"""
from __future__ import annotations

import copy
import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor

from . import checkpoint as ckpt_io
from . import checks, portable
from .data.base import BatchLoader, MultimodalDataset
from .methods.base import Method, TrainState, exclusive_owner, overrides
from .methods.spec import MethodSpec, make_methods
from .task import Classification, Task

OPTIMIZERS = {"sgd": torch.optim.SGD, "adamw": torch.optim.AdamW, "adam": torch.optim.Adam}


LOG_DTYPES = {"epoch": "int64", "step": "int64", "name": "str", "value": "float64"}  # FitResult.log


@dataclass
class FitResult:
    """What ``fit`` returns.

    Attributes:
        model: the trained model with the best-validation weights restored.
        history: one row per epoch (train loss, validation metrics).
        records: diagnostics that methods logged (epoch, step, name, value).
        val, test: metrics of the selected epoch on validation and test.
    """

    model: torch.nn.Module
    history: list[dict[str, float]]
    records: list[dict[str, Any]]
    best_epoch: int
    val: dict[str, float]
    test: dict[str, float]
    seconds: float
    methods: list[Method] = field(default_factory=list)

    @property
    def log(self) -> pd.DataFrame:
        """Method diagnostics as a long table: epoch, step, name, value.

        The column types are fixed, also for a run that logged nothing: an empty table of
        ``object`` columns would turn every table it is concatenated with (``Runs.logs``) into
        ``object`` columns, on which pandas' group-bys and pivots run many times slower and
        ``DataFrame.round`` silently does nothing.
        """
        return pd.DataFrame(self.records, columns=list(LOG_DTYPES)).astype(LOG_DTYPES)

    @property
    def curves(self) -> pd.DataFrame:
        return pd.DataFrame(self.history)


def resolve_methods(methods: MethodSpec | Iterable[MethodSpec] | None) -> list[Method]:
    """The methods of one ``fit`` (any spec of ``mmlib/methods/spec.py``; instances are used as given)."""
    out = make_methods(methods, fresh=False)
    Hooks(out)  # fails early when two methods own one exclusive hook
    return out


def make_optimizer(model: torch.nn.Module, name: str, lr: float, weight_decay: float,
                   momentum: float) -> torch.optim.Optimizer:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {sorted(OPTIMIZERS)}")
    kwargs: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay}
    if name == "sgd":
        kwargs["momentum"] = momentum
    return OPTIMIZERS[name](model.parameters(), **kwargs)


def _distributed() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def sync_batchnorm_stats(model: torch.nn.Module, world_size: int) -> None:
    """Average BatchNorm running statistics over ranks (rank 0's batch counter), before evaluation.

    DDP broadcasts rank 0's buffers before each training forward, but every rank then updates
    them with its own batch, so after an epoch the ranks hold different statistics and would
    report different metrics. Averaging them (rather than SyncBatchNorm) leaves training as it is
    and costs one all-reduce per BatchNorm layer per epoch.
    """
    if world_size <= 1:
        return
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._NormBase) and module.track_running_stats:
            for buf in (module.running_mean, module.running_var):
                if buf is not None:
                    dist.all_reduce(buf)
                    buf.div_(world_size)
            if module.num_batches_tracked is not None:
                dist.broadcast(module.num_batches_tracked, 0)


class Hooks:
    """The methods of one run, sorted by hook: exclusive owners checked once, up front."""

    def __init__(self, methods: list[Method]):
        self.methods = methods
        self.loss_owner = exclusive_owner(methods, "compute_loss")
        self.backward_owner = exclusive_owner(methods, "backward")
        self.loader_owner = exclusive_owner(methods, "train_loader")
        self.feature_methods = [m for m in methods if overrides(m, "on_features")]

    def call(self, hook: str, *args: Any) -> None:
        for m in self.methods:
            getattr(m, hook)(*args)


def train_step(net: torch.nn.Module, state: TrainState, hooks: Hooks, batch: dict[str, Any]) -> dict[str, Tensor]:
    """One optimisation step on one batch, with every hook in its place; returns the losses.

    ``net`` is the model or its DDP wrapper; ``state.model`` is always the bare model.
    """
    hooks.call("on_train_batch_start", state, batch)
    feature_hook = None
    if hooks.feature_methods:
        def feature_hook(feats):
            for m in hooks.feature_methods:
                feats = m.on_features(state, feats)
            return feats
    out = net(batch["inputs"], feature_hook=feature_hook)
    hooks.call("on_after_forward", state, out, batch)
    losses = (hooks.loss_owner.compute_loss(state, out, batch) if hooks.loss_owner
              else state.task.loss(state, out, batch))
    if hooks.backward_owner:
        hooks.backward_owner.backward(state, losses)
    else:
        sum(losses.values()).backward()
    hooks.call("on_after_backward", state)
    hooks.call("on_before_optimizer_step", state, state.optimizer)
    state.optimizer.step()
    state.optimizer.zero_grad(set_to_none=True)
    state.step += 1
    return losses


def fit(model: torch.nn.Module, data: MultimodalDataset, methods: MethodSpec | Iterable[MethodSpec] | None = None,
        *, num_epochs: int = 10, batch_size: int = 64, lr: float = 1e-3, optimizer: str = "adamw",
        weight_decay: float = 1e-4, momentum: float = 0.9, lr_step: int | None = None, lr_gamma: float = 0.1,
        seed: int = 0, device: str | torch.device = "cpu", task: Task | None = None, select: str | None = None,
        checkpoint: str | Path | None = None) -> FitResult:
    """Train ``model`` on ``data.train`` with ``methods``; select the epoch on ``data.val``.

    Args:
        methods: Method instances, names or other specs (``mmlib/methods/spec.py``); none
            means the task's loss alone (joint training for classification).
        lr_step: if set, multiply the learning rate by ``lr_gamma`` every ``lr_step`` epochs.
        task: what the loss, evaluation and selection are (default ``Classification()``).
        select: validation metric that picks the epoch (default: the first method's
            ``select_metric``, else the task's ``select``; a task's ``None`` keeps the last epoch).
        checkpoint: file to save after every epoch and to resume from (same run only).
    """
    checks.check_fit(model, data, num_epochs=num_epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                     weight_decay=weight_decay, momentum=momentum, lr_step=lr_step, lr_gamma=lr_gamma, seed=seed,
                     device=device, select=select if task is None or isinstance(task, Classification) else None)
    start_time = time.perf_counter()
    portable.verify()
    methods = resolve_methods(methods)
    task = task or Classification()
    device = torch.device(device)
    model.to(device)
    opt = make_optimizer(model, optimizer, lr, weight_decay, momentum)
    sched = torch.optim.lr_scheduler.StepLR(opt, lr_step, lr_gamma) if lr_step else None
    select = select or next((m.select_metric for m in methods if getattr(m, "select_metric", None)), task.select)
    rank, world = _distributed()
    hooks = Hooks(methods)
    net = model
    if world > 1:
        unused = any(m.unused_parameters for m in methods)
        net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=unused)
    gen = torch.Generator().manual_seed(seed)
    state = TrainState(model=model, optimizer=opt, modalities=tuple(model.modalities),
                       num_classes=data.num_classes, num_epochs=num_epochs, device=device, generator=gen,
                       batch_size=batch_size, data=data, task=task, rank=rank, world_size=world)
    default_loader = BatchLoader(data.train, batch_size, shuffle=True, generator=gen, rank=rank, world_size=world)

    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"score": -float("inf"), "epoch": -1, "weights": None, "val": {}}
    first_epoch = 0
    ckpt = Path(checkpoint) if checkpoint else None
    run_id = None
    if ckpt is not None:
        run_id = ckpt_io.identity(model, methods, task, {"name": optimizer, "lr": lr, "weight_decay": weight_decay,
                                                         "momentum": momentum, "lr_step": lr_step,
                                                         "lr_gamma": lr_gamma, "batch_size": batch_size},
                                  seed, data, world)
    saved = ckpt_io.load(ckpt, run_id, num_epochs) if ckpt is not None and ckpt.exists() else None

    hooks.call("on_fit_start", state)
    if saved is not None:
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        if sched is not None and saved.get("scheduler"):
            sched.load_state_dict(saved["scheduler"])
        for m, s in zip(methods, saved["methods"]):
            m.load_state_dict(s)
        history, state.records, best = saved["history"], saved["records"], saved["best"]
        gen.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        first_epoch, state.step, state.resumed = saved["epoch"] + 1, saved["step"], True

    for epoch in range(first_epoch, num_epochs):
        state.epoch = epoch
        model.train()
        loader = (hooks.loader_owner.train_loader(state, data.train) if hooks.loader_owner else None) \
            or default_loader
        hooks.call("on_train_epoch_start", state)
        total, count = 0.0, 0
        for batch in loader:
            batch = {**batch, "inputs": {k: v.to(device) for k, v in batch["inputs"].items()},
                     "y": batch["y"].to(device)}
            losses = train_step(net, state, hooks, batch)
            total += float(sum(v.detach() for v in losses.values())) * len(batch["y"])
            count += len(batch["y"])
        if world > 1:  # the epoch's mean loss over every rank's samples
            total, count = state.all_reduce(torch.tensor([total, count], dtype=torch.float64)).tolist()
        if sched is not None:
            sched.step()
        hooks.call("on_train_epoch_end", state)
        sync_batchnorm_stats(model, world)
        val = task.evaluate(model, data.val, data, device)
        if select is not None and select not in val:
            raise ValueError(f"select={select!r} is not a validation metric; choose from {sorted(val)}")
        history.append({"epoch": epoch, "train_loss": total / max(count, 1), **{f"val/{k}": v for k, v in val.items()}})
        score = val[select] if select is not None else epoch
        if score > best["score"]:
            best = {"score": score, "epoch": epoch, "val": val,
                    "weights": copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})}
        if ckpt is not None and rank == 0:
            ckpt_io.save({"identity": run_id, "model": model.state_dict(), "optimizer": opt.state_dict(),
                          "scheduler": sched.state_dict() if sched else None,
                          "methods": [m.state_dict() for m in methods], "history": history,
                          "records": state.records, "best": best, "generator": gen.get_state(),
                          "torch_rng": torch.get_rng_state(), "epoch": epoch, "step": state.step,
                          "num_epochs": num_epochs}, ckpt)
    hooks.call("on_fit_end", state)
    model.load_state_dict(best["weights"])
    model.eval()
    test = task.evaluate(model, data.test, data, device)
    return FitResult(model, history, state.records, best["epoch"], best["val"], test,
                     time.perf_counter() - start_time, methods)


#: ``fit``'s training settings, the keys a profile may set or override (``mmlib/profiles.py``)
TRAIN_KEYS = tuple(name for name, p in inspect.signature(fit).parameters.items()
                   if p.kind is p.KEYWORD_ONLY and name not in ("seed", "device", "task", "select", "checkpoint"))
