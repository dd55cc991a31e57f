"""The discrepancy ratio shared by OGM(-GE) and OPM: who is ahead, and by how much.

For a mini-batch B and modality u, the score is the **summed** true-class softmax probability
of that modality's unimodal logits (ogm_opm.md §2; a sum, not a mean or an NLL):

    s^u = sum_{i in B} softmax(f^u(x_i))_{y_i}

and the ratio compares it with the other modalities:

    rho^u = s^u / mean_{u' != u} s^{u'}

With two modalities this is the papers' rho^a = s^a / s^v and rho^v = 1 / rho^a. The official
codes are two-modality only; for M >= 3 we divide by the **mean** of the other scores, so rho
keeps its two-modality meaning ("how many times ahead of a typical other modality") and does
not shrink with M as the sum of the others (BalanceBenchmark's OPM port) would. A useful
consequence: the modality with the lowest score always has rho <= 1, so at least one modality
is never slowed or dropped.

Under data parallelism the per-rank sums are all-reduced before the ratio, so every rank
computes the same rho from the whole global batch (and applies the same modulation).
A zero denominator (no score for any other modality) is clamped to ``eps``; two zero scores
give rho = 0, i.e. no modality counts as dominant.

Reference: peng2022ogmge (Eq. 9), wei2024onthefly; notebook ``notebooks/ogm_opm.ipynb``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import Method, TrainState

EPS = 1e-8


def true_class_scores(uni_logits: dict[str, Tensor], y: Tensor, modalities: tuple[str, ...]) -> Tensor:
    """Summed true-class softmax probability per modality, (M,), in ``modalities`` order.

    Args:
        uni_logits: modality -> (B, C) unimodal logits (detached here; the score only monitors).
        y: (B,) labels.
    """
    logits = torch.stack([uni_logits[m].detach() for m in modalities])  # (M, B, C)
    prob = torch.softmax(logits.float(), dim=-1)
    index = y.view(1, -1, 1).expand(len(modalities), -1, 1)
    return prob.gather(-1, index).squeeze(-1).sum(dim=1)


def discrepancy_ratios(scores: Tensor, eps: float = EPS) -> Tensor:
    """rho^u = s^u / mean_{u' != u} s^{u'} for scores (M,), M >= 2; returns (M,)."""
    m = scores.numel()
    if m < 2:
        raise ValueError(f"the discrepancy ratio needs at least two modalities, got {m}")
    others = (scores.sum() - scores) / (m - 1)
    return scores / others.clamp_min(eps)


def batch_ratios(state: TrainState, uni_logits: dict[str, Tensor], y: Tensor) -> dict[str, float]:
    """This step's rho per modality from the global batch (scores all-reduced under DDP)."""
    scores = true_class_scores(uni_logits, y, state.modalities)
    state.all_reduce(scores)
    return dict(zip(state.modalities, discrepancy_ratios(scores).tolist()))


class DiscrepancyMonitor(Method):
    """Joint training that only records rho^u each step (``rho/<m>``), modulating nothing.

    The phenomenon the methods react to, measured on the baseline itself; its runs are
    joint training exactly (no random draws, no gradient edits).

    Hooks: on_after_forward.
    Reference: peng2022ogmge (Eq. 9); notebook ``notebooks/ogm_opm.ipynb``.
    """

    def on_after_forward(self, state: TrainState, out, batch: dict[str, Any]) -> None:
        for m, r in batch_ratios(state, out.uni_logits, batch["y"]).items():
            state.log(f"rho/{m}", r)
