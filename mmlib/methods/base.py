"""The method interface: a ``Method`` is a set of hooks that ``fit`` calls at fixed places.

Every hook does nothing by default; a method overrides only what it needs. ``fit`` calls the
hooks in this order, methods in list order (the same sequence works in your own loop)::

    for m in methods: m.on_fit_start(state)              # always, also when resuming
    if resuming: for m in methods: m.load_state_dict(saved)   # then state.resumed is True
    for epoch in range(first_epoch, num_epochs):
        loader = <the one train_loader owner>(state, data.train) or the default shuffled loader
        for m in methods: m.on_train_epoch_start(state)
        for batch in loader:
            for m in methods: m.on_train_batch_start(state, batch)
            out = model(batch["inputs"], feature_hook=<each method's on_features, in order>)
            for m in methods: m.on_after_forward(state, out, batch)
            losses = <the one compute_loss owner>(state, out, batch)   # else the task's loss
            <the one backward owner>(state, losses)                    # default: sum(losses).backward()
            for m in methods: m.on_after_backward(state)
            for m in methods: m.on_before_optimizer_step(state, optimizer)
            optimizer.step(); optimizer.zero_grad()
        for m in methods: m.on_train_epoch_end(state)
        <validation with the task's evaluate; the task's select metric keeps the best epoch>
    for m in methods: m.on_fit_end(state)

``on_fit_start`` sets a method up (parameters by module, generators seeded from the run's seed,
``state.data`` for anything it needs from the splits); ``load_state_dict`` then restores what
``state_dict`` saved, so no hook needs lazy set-up.

``compute_loss``, ``backward`` and ``train_loader`` are exclusive: at most one method in the
list may override each; ``fit`` raises an error naming both when two do. Gradient edits go in
``on_before_optimizer_step`` (after the DDP all-reduce). Methods record diagnostics with
``state.log(name, value)``; notebooks plot from ``FitResult.log``.

A method that leaves some parameters without a gradient (``Unimodal``) or fills ``.grad`` itself
without ``loss.backward()`` (MMPareto) sets ``unused_parameters = True``: under DDP, ``fit`` then
asks the reducer to look for parameters that did not take part.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..models.net import Output

EXCLUSIVE_HOOKS = ("compute_loss", "backward", "train_loader")


@dataclass
class TrainState:
    """What a hook may read (and the ``log`` it may write); one object per ``fit`` call.

    ``model`` is the bare ``MultimodalNet`` (not a DDP wrapper), so ``state.model.encoders[m]``
    and ``state.model.head`` are always reachable. ``data`` holds the splits (``data.train``,
    ``data.val``; never use ``data.test`` for a decision). ``rank`` and ``world_size`` describe
    the data-parallel group (0 and 1 without one); ``resumed`` says whether this run continued
    from a checkpoint. ``task`` is the run's ``mmlib.task.Task``.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    modalities: tuple[str, ...]
    num_classes: int
    num_epochs: int
    device: torch.device
    generator: torch.Generator
    epoch: int = 0
    step: int = 0
    batch_size: int = 0
    data: Any = None
    task: Any = None
    rank: int = 0
    world_size: int = 1
    resumed: bool = False
    records: list[dict[str, Any]] = field(default_factory=list)

    def log(self, name: str, value: float | Tensor) -> None:
        """Record one diagnostic value at the current epoch and step."""
        if isinstance(value, Tensor):
            value = value.detach().item()
        self.records.append({"epoch": self.epoch, "step": self.step, "name": name, "value": float(value)})

    def all_reduce(self, tensor: Tensor) -> Tensor:
        """Sum ``tensor`` over all processes (in place; identity without DDP)."""
        if self.world_size > 1:
            dist.all_reduce(tensor)
        return tensor


class Method:
    """Base class for training methods; every hook is a no-op.

    Hooks: see the module docstring for the call order.
    """

    registry_name = "method"
    unused_parameters = False  # True: some parameters get no gradient from loss.backward() (see above)

    @classmethod
    def example(cls, modalities: tuple[str, ...]) -> "Method":
        """An instance for the contract tests (override if the constructor needs arguments)."""
        return cls()

    def on_fit_start(self, state: TrainState) -> None:
        """Once, before the first epoch."""

    def train_loader(self, state: TrainState, split) -> Any:
        """Return this epoch's training loader, or None for the default (exclusive)."""
        return None

    def on_train_epoch_start(self, state: TrainState) -> None:
        """At the start of each training epoch."""

    def on_train_batch_start(self, state: TrainState, batch: dict[str, Any]) -> None:
        """Before the forward pass of each batch."""

    def on_features(self, state: TrainState, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        """Edit the features between encoders and fusion head (training only)."""
        return feats

    def on_after_forward(self, state: TrainState, out: Output, batch: dict[str, Any]) -> None:
        """After the forward pass, with the fused and unimodal logits."""

    def compute_loss(self, state: TrainState, out: Output, batch: dict[str, Any]) -> dict[str, Tensor] | None:
        """Named losses to sum and back-propagate (exclusive)."""
        return None

    def backward(self, state: TrainState, losses: dict[str, Tensor]) -> None:
        """Fill ``.grad`` from the losses (exclusive; default: their sum, backward)."""
        sum(losses.values()).backward()

    def on_after_backward(self, state: TrainState) -> None:
        """After gradients exist, before any edit."""

    def on_before_optimizer_step(self, state: TrainState, optimizer: torch.optim.Optimizer) -> None:
        """Edit gradients in place just before the optimizer step."""

    def on_train_epoch_end(self, state: TrainState) -> None:
        """After the last batch of each epoch (before validation)."""

    def on_fit_end(self, state: TrainState) -> None:
        """Once, after training (before the best checkpoint is restored)."""

    def state_dict(self) -> dict[str, Any]:
        """Method state to checkpoint (window counters, histories, ...)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({hp})"


def in_window(epoch: int, start_epoch: int, end_epoch: int | None) -> bool:
    """Whether ``epoch`` lies in the inclusive, 0-based window (``end_epoch=None``: no end)."""
    return start_epoch <= epoch and (end_epoch is None or epoch <= end_epoch)


def overrides(method: Method, hook: str) -> bool:
    """Whether ``method`` defines its own ``hook``."""
    return getattr(type(method), hook) is not getattr(Method, hook)


def exclusive_owner(methods: list[Method], hook: str) -> Method | None:
    """The one method that overrides an exclusive hook, or None; two owners are an error."""
    owners = [m for m in methods if overrides(m, hook)]
    if len(owners) > 1:
        names = " and ".join(type(m).__name__ for m in owners)
        raise ValueError(f"{names} both define {hook}(), which only one method may own; "
                         f"combine them in one method or drop one from the list")
    return owners[0] if owners else None


def modality_params(model: nn.Module, modality: str) -> list[nn.Parameter]:
    """The parameters of one modality's encoder, selected by module (never by name)."""
    return [p for p in model.encoders[modality].parameters() if p.requires_grad]
