"""A late-fusion ensemble of unimodal models: each encoder learns from its own unimodal loss only."""
from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from ..registry import METHODS
from .base import Method, TrainState


@METHODS.register("ensemble")
class Ensemble(Method):
    """L = sum_m CE(f^m, y), no fused loss: every encoder and its classifier learn as if alone.

    The fused prediction is then the average of the unimodal predictions, with no new code in
    the model: for the heads whose logits decompose (``head.decomposes``; ``concat`` and
    ``sum``), logits = sum_m f^m = M * mean_m f^m, so the argmax and the metrics are those of
    the mean of the unimodal logits. With ``fusion="sum"`` (f^m = W_m z^m + b_m) the M unimodal
    models share no parameter at all; with ``concat`` they share the class bias b (f^m carries
    b / M), which all the unimodal losses train.

    For heads that do not decompose (FiLM, gated, ``separate_uni``) the fused logits are not an
    average; their fusion layers are trained on **detached** features, so the encoders still
    learn from their own losses only and the fused head combines them afterwards (stacking).

    Hooks: compute_loss.
    Reference: zhang2024lowquality (late fusion); notebook ``notebooks/benchmark.ipynb``.
    """

    def compute_loss(self, state: TrainState, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        y = batch["y"]
        losses = {f"uni/{m}": F.cross_entropy(logit, y) for m, logit in out.uni_logits.items()}
        head = state.model.head
        if not head.decomposes:
            detached = {m: z.detach() for m, z in out.feats.items()}
            losses["stack"] = F.cross_entropy(head.fuse(detached), y)
        return losses
