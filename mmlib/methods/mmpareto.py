"""MMPareto: multimodal and unimodal losses, with conflict-free, enlarged encoder gradients.

For each encoder k, g_m = grad of the fused loss and g_u = grad of k's own unimodal loss on
the encoder's parameters. If cos(g_m, g_u) >= 0 the weights are equal (c = 1/2); if the
gradients conflict, c is the two-task min-norm (MGDA) weight. Per parameter tensor the
direction is h = 2 (c g_m + (1 - c) g_u) and the update gamma * max(1, ||g_m + g_u|| / ||h||) * h.
Heads keep their ordinary gradients. With M >= 2 modalities each encoder still has exactly two
objectives (the other unimodal losses do not depend on it), so the rule applies per encoder.

Reference: wei2024mmpareto (and sener2018mgda for ``mgda``); notebook ``notebooks/mmpareto.ipynb``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..registry import METHODS
from .base import Method, TrainState
from .grads import (GradLayout, accumulate, backward_except, encoder_groups, layout_for, separate_grads,
                    two_pass_grads)
from .min_norm import EPS, min_norm_weight_gram

WEIGHTS = ("pareto", "min-norm", "uniform")


@METHODS.register("mmpareto")
class MMPareto(Method):
    """MMPareto; ``weights`` also gives the conventional-MGDA and uniform x gamma controls.

    Args:
        gamma: magnitude enlargement (> 1 in the paper; 1.5 in the official code).
        rescale: apply gamma * max(1, ||g_m + g_u|| / ||h||) per tensor (False: update = h).
        weights: ``"pareto"`` (1/2 without conflict, min-norm with), ``"min-norm"`` (always),
            ``"uniform"`` (always 1/2).
        naive: one backward pass per loss, as the official code (for tests and benchmarks).
        batched: one vmapped backward pass for both losses instead of two plain ones.

    Exact per-loss gradients from two backward passes, not the official M + 2: the fused loss
    and the sum of the unimodal losses (``grads.two_pass_grads``; ``naive``: ``separate_grads``).
    The rule then runs on all encoders at once, on one flat (2, N) gradient (``GradLayout``).

    Weight decay is left to the optimizer, unscaled by gamma, as in the official code. On
    purpose unlike it: cos = 0 (a zero gradient) is no conflict, c is clipped to [0, 1] (not
    [0.001, 0.999]), and ||h|| = 0 gives a zero update, not NaN.

    Hooks: compute_loss, backward. Logs per encoder: cos, conflict, c, norm_mm, norm_uni.
    Reference: wei2024mmpareto; notebook ``notebooks/mmpareto.ipynb``.
    """

    unused_parameters = True  # fills .grad itself (autograd.grad), not through DDP's reducer
    scale = 2.0  # h = 2 (c g_m + (1 - c) g_u), so c = 1/2 is the uniform sum g_m + g_u

    def __init__(self, gamma: float = 1.5, rescale: bool = True, weights: str = "pareto",
                 naive: bool = False, batched: bool = False):
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
        self.gamma, self.rescale, self.weights = gamma, rescale, weights
        self.naive, self.batched = naive, batched
        self.c: dict[str, float] = {}  # the last step's weight on g_m, per encoder
        self._layout: GradLayout | None = None

    def compute_loss(self, state: TrainState, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        y = batch["y"]
        losses = {"fused": F.cross_entropy(out.logits, y)}
        for m, logit in out.uni_logits.items():
            losses[f"uni/{m}"] = F.cross_entropy(logit, y)
        return losses

    def backward(self, state: TrainState, losses: dict[str, Tensor]) -> None:
        model = state.model
        layout = self._layout = layout_for(encoder_groups(model, state.modalities), self._layout)
        head = [p for p in model.head.parameters() if p.requires_grad]
        own = {m: losses[f"uni/{m}"] for m in layout.names}
        if self.naive:
            grads = separate_grads(losses["fused"], own, layout)
            backward_except(sum(losses.values()), layout.params)  # the heads' gradients
        else:
            grads, g_head = two_pass_grads(losses["fused"], own, layout, head, self.batched)
            accumulate(head, g_head)
        if state.world_size > 1:  # autograd.grad bypasses DDP's reducer: average here, heads too
            for g in [grads, *(p.grad for p in head if p.grad is not None)]:
                state.all_reduce(g).div_(state.world_size)
        self._combine(state, layout, grads)

    def _combine(self, state: TrainState, layout: GradLayout, grads: Tensor) -> None:
        """Weight, rescale and write every encoder's gradients (2, N) at once; log the statistics.

        Each tensor's Gram entries g_m.g_m, g_m.g_u, g_u.g_u are formed in float64: where g_m + g_u
        or h nearly cancels (a 1-element tensor, say), float32 ones leave ||h||^2 at rounding
        noise, even below 0. So is the update, h first and then enlarged (h = 0 stays exactly 0),
        rounded once to the gradients' dtype. The rule itself is a few host scalars per tensor.
        """
        g = grads.double()
        gram = layout.gram(g)
        mm_t, mu_t, uu_t = torch.stack([gram[0, 0], gram[0, 1], gram[1, 1]]).tolist()
        coef: list[list[float]] = [[], [], []]  # per tensor: weight on g_m, weight on g_u, enlargement
        for m, tensors in layout.tensors_of.items():
            g_mm, g_mu, g_uu = (math.fsum(x[tensors]) for x in (mm_t, mu_t, uu_t))
            conflict = g_mu < 0  # a zero gradient is no conflict: MGDA would then stop the encoder
            if self.weights == "uniform" or (self.weights == "pareto" and not conflict):
                c = 0.5
            else:
                c = min_norm_weight_gram(g_mm, g_mu, g_uu)
            w0, w1 = self.scale * c, self.scale * (1 - c)  # h = w0 g_m + w1 g_u
            entries = list(zip(mm_t[tensors], mu_t[tensors], uu_t[tensors]))
            coef[0] += [w0] * len(entries)
            coef[1] += [w1] * len(entries)
            coef[2] += [self._enlargement(*e, w0, w1) if self.rescale else 1.0 for e in entries]
            self.c[m] = c
            norm_mm, norm_uni = math.sqrt(g_mm), math.sqrt(g_uu)
            for name, value in (("cos", g_mu / max(norm_mm * norm_uni, EPS)), ("conflict", float(conflict)),
                                ("c", c), ("norm_mm", norm_mm), ("norm_uni", norm_uni)):
                state.log(f"{name}/{m}", value)
        w = layout.spread(g.new_tensor(coef))
        update = torch.addcmul(w[0] * g[0], w[1], g[1]).mul_(w[2]).to(grads.dtype)
        accumulate(layout.params, layout.unflat(update))

    def _enlargement(self, mm_: float, mu: float, uu: float, w0: float, w1: float) -> float:
        """gamma * max(1, ||g_m + g_u|| / ||h||) of one tensor from its Gram entries (per tensor,
        while c is per encoder, as the official code); ||h|| = 0 gives a finite factor, not NaN."""
        sum_norm = math.sqrt(max(mm_ + 2 * mu + uu, 0.0))
        h_norm = math.sqrt(max(w0 * w0 * mm_ + 2 * w0 * w1 * mu + w1 * w1 * uu, 0.0))
        return self.gamma * max(1.0, sum_norm / max(h_norm, EPS))


@METHODS.register("mmpareto-naive")
class MMParetoNaive(MMPareto):
    """MMPareto with the official scheme's separate backward passes (same numbers, slower).

    Hooks: compute_loss, backward.
    """

    def __init__(self, gamma: float = 1.5, rescale: bool = True):
        super().__init__(gamma=gamma, rescale=rescale, naive=True)


@METHODS.register("mgda")
class MGDA(MMPareto):
    """Conventional Pareto: the min-norm convex combination c g_m + (1 - c) g_u, no rescaling.

    Hooks: compute_loss, backward.
    Reference: sener2018mgda; the "conventional Pareto" of wei2024mmpareto (Fig. 1c).
    """

    scale = 1.0  # Sener and Koltun's convex combination, without MMPareto's factor 2

    def __init__(self, naive: bool = False, batched: bool = False):
        super().__init__(gamma=1.0, rescale=False, weights="min-norm", naive=naive, batched=batched)


@METHODS.register("uniform-gamma")
class UniformGamma(MMPareto):
    """The uniform sum with encoder gradients times gamma: MMPareto's step size without its rule.

    With gamma = 1 it is ``joint-uni`` that also logs the gradient statistics.

    Hooks: compute_loss, backward.
    Reference: wei2024mmpareto; mmpareto.md pitfall 3.
    """

    def __init__(self, gamma: float = 1.5, naive: bool = False, batched: bool = False):
        super().__init__(gamma=gamma, rescale=True, weights="uniform", naive=naive, batched=batched)
