"""Tasks: what differs between kinds of work, so that ``fit`` stays one loop for all of them.

A task owns three things that ``fit`` asks for and never decides itself:

* ``loss(state, out, batch)``: the default named losses, used when no method owns ``compute_loss``;
* ``evaluate(model, split, data, device)``: the metrics of one split (validation after every
  epoch, test once for the selected epoch); an empty dict is allowed (e.g. no labels);
* ``select``: the validation metric whose best epoch is kept, or ``None`` to keep the last
  epoch (self-supervised pre-training has nothing to select on).

``Classification`` is the book's task so far: cross-entropy on the fused logits, accuracy /
macro-F1 / mAP plus each modality's accuracy, selection on validation accuracy. The
localization and self-supervised chapters add their own task here, without touching ``fit``.
"""
from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from .evaluate import evaluate
from .registry import TASKS


class Task:
    """Base class: ``loss``, ``evaluate`` and ``select`` (see the module docstring)."""

    select: str | None = None

    def loss(self, state, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        raise NotImplementedError

    def evaluate(self, model, split, data, device) -> dict[str, float]:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(select={self.select!r})"


def classification_loss(model, out, y: Tensor) -> dict[str, Tensor]:
    """Cross-entropy on the fused logits.

    For heads whose logits do not decompose (FiLM, gated), the per-modality classifiers are
    trained too, on detached features, so that they monitor the encoders without steering them.
    """
    losses = {"fused": F.cross_entropy(out.logits, y)}
    if not model.head.decomposes:
        detached = {m: z.detach() for m, z in out.feats.items()}
        for m, logit in model.head.unimodal(detached).items():
            losses[f"probe/{m}"] = F.cross_entropy(logit, y)
    return losses


@TASKS.register("classification")
class Classification(Task):
    """Multi-class classification of the fused prediction (the default task of ``fit``).

    Args:
        select: the validation metric that picks the epoch (``"acc"``, ``"f1"``, ``"map"``,
            ``"acc/<modality>"``), or ``None`` for the last epoch.
    """

    def __init__(self, select: str | None = "acc"):
        self.select = select

    def loss(self, state, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        return classification_loss(state.model, out, batch["y"])

    def evaluate(self, model, split, data, device) -> dict[str, float]:
        return evaluate(model, split, data.num_classes, device)
