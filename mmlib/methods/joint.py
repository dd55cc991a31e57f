"""Baselines: joint training (fused loss), joint + unimodal losses, and unimodal training."""
from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from ..registry import METHODS
from ..task import classification_loss
from .base import Method, TrainState


@METHODS.register("joint")
class Joint(Method):
    """Joint training: one cross-entropy on the fused logits (what ``fit`` does by default, as the task's loss).

    Hooks: compute_loss.
    """

    def compute_loss(self, state: TrainState, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        return classification_loss(state.model, out, batch["y"])


@METHODS.register("joint-uni")
class JointUnimodal(Method):
    """Fused loss plus one unimodal cross-entropy per modality, uniformly summed.

    The "uniform baseline" of MMPareto: L = L_mm + sum_m L_u^m, with the unimodal logits of
    the fusion head (its slices for concat/sum, its per-modality classifiers for FiLM/gated).

    Hooks: compute_loss.
    Reference: wei2024mmpareto; notebook ``notebooks/imbalance.ipynb``.
    """

    def __init__(self, weight: float = 1.0):
        self.weight = weight

    def compute_loss(self, state: TrainState, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        y = batch["y"]
        losses = {"fused": F.cross_entropy(out.logits, y)}
        for m, logit in out.uni_logits.items():
            losses[f"uni/{m}"] = self.weight * F.cross_entropy(logit, y)
        return losses


@METHODS.register("unimodal")
class Unimodal(Method):
    """Train one modality alone: its encoder and its unimodal classifier, nothing else.

    Model selection then uses that modality's validation accuracy (``select_metric``).

    Hooks: on_fit_start, compute_loss.
    """

    unused_parameters = True  # the other encoders and the fused head get no gradient

    def __init__(self, modality: str):
        self.modality = modality
        self.select_metric = f"acc/{modality}"

    @classmethod
    def example(cls, modalities: tuple[str, ...]) -> "Unimodal":
        return cls(modalities[-1])

    def on_fit_start(self, state: TrainState) -> None:
        if self.modality not in state.modalities:
            raise ValueError(f"unimodal: unknown modality {self.modality!r}; the model has {state.modalities}")

    def compute_loss(self, state: TrainState, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        return {f"uni/{self.modality}": F.cross_entropy(out.uni_logits[self.modality], batch["y"])}
