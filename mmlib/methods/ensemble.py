"""A late-fusion ensemble of unimodal models: every modality's branch trained on its own loss."""
from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from ..registry import METHODS
from .base import Method, TrainState


@METHODS.register("ensemble")
class Ensemble(Method):
    """L = sum_m CE(f^m, y) and no fused loss: each encoder and its classifier learn as if alone.

    With ``fusion="late"`` the prediction is the mean of the branches' probabilities, the
    classic late-fusion ensemble of unimodal models; with ``fusion="sum"`` (or ``"concat"``) it
    is their sum of logits, a product of experts. Model selection uses the fused validation
    accuracy, like every other run.

    Hooks: compute_loss.
    Reference: zhang2024lowquality (late fusion); notebook ``notebooks/noisy.ipynb``.
    """

    unused_parameters = True  # a head's own fusion parameters (FiLM, gated) get no gradient

    def compute_loss(self, state: TrainState, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        return {f"uni/{m}": F.cross_entropy(logit, batch["y"]) for m, logit in out.uni_logits.items()}
