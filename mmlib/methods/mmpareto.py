"""MMPareto: multimodal and unimodal losses, with conflict-free, enlarged encoder gradients.

For each encoder k, g_m = grad of the fused loss and g_u = grad of k's own unimodal loss on
the encoder's parameters. If cos(g_m, g_u) >= 0 the weights are equal (c = 1/2); if the
gradients conflict, c is the two-task min-norm (MGDA) weight. Per parameter tensor the
direction is h = 2 (c g_m + (1 - c) g_u) and the update gamma * max(1, ||g_m + g_u|| / ||h||) * h.
Heads keep their ordinary gradients.

With M >= 2 modalities each encoder still has exactly two objectives (the fused loss and its
own unimodal loss; the other unimodal losses do not depend on it), so the two-task rule
applies per encoder with its own c.

Reference: wei2024mmpareto (and sener2018mgda for ``mgda``); notebook ``notebooks/mmpareto.ipynb``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..registry import METHODS
from .base import Method, TrainState, modality_params
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

    Exact per-loss gradients from two backward passes, not the official M + 2: the fused loss,
    and the sum of the unimodal losses (L_u^j does not reach encoder k for j != k, so the sum's
    gradient on encoder k is g_u^k). ``batched=True`` runs both as one vmapped pass (on one CPU
    thread two plain passes are faster). The rule then runs on all encoders at once, with
    segmented sums over one flat (2, N) gradient (``GradLayout``).

    Weight decay is left to the optimizer, unscaled by gamma, as in the official code. On
    purpose unlike it: cos = 0 (a zero gradient) is no conflict, c is clipped to [0, 1] (not
    [0.001, 0.999]), and ||h|| = 0 gives a zero update, not NaN.

    Hooks: compute_loss, backward. Logs per encoder: cos, conflict, c, norm_mm, norm_uni.
    Reference: wei2024mmpareto; notebook ``notebooks/mmpareto.ipynb``.
    """

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
        enc = {m: modality_params(model, m) for m in state.modalities}
        layout = self._layout_for(model, enc)
        if self.naive:
            grads = self._separate_grads(losses, layout)
        else:
            grads = self._two_pass_grads(losses, layout)
        if state.world_size > 1:  # autograd.grad bypasses DDP's reducer: average here, heads too
            for g in [grads, *(p.grad for p in layout.head if p.grad is not None)]:
                state.all_reduce(g).div_(state.world_size)
        self._combine(state, layout, grads)

    def _layout_for(self, model, enc: dict[str, list]) -> "GradLayout":
        head = [p for p in model.head.parameters() if p.requires_grad]
        key = (tuple(enc), tuple(id(p) for ps in enc.values() for p in ps), tuple(id(p) for p in head))
        if self._layout is None or self._layout.key != key:
            self._layout = GradLayout(enc, head, key)
        return self._layout

    def _two_pass_grads(self, losses, layout: "GradLayout") -> Tensor:
        """[g_m; g_u] of every encoder, flattened and concatenated: (2, N).

        The fused loss and the sum of the unimodal losses, each back-propagated once (the
        official scheme needs one pass per loss, M + 2 for M modalities): L_u^j does not
        depend on encoder k for j != k, so the sum's gradient on encoder k is g_u^k exactly.
        The heads get the sum of both passes, their ordinary gradient.
        """
        wrt = layout.params + layout.head
        uni = sum(losses[f"uni/{m}"] for m in layout.modalities)
        if self.batched:  # one vmapped pass over both cotangents
            eye = torch.eye(2, dtype=uni.dtype, device=uni.device)
            both = torch.autograd.grad(torch.stack([losses["fused"], uni]), wrt, eye, is_grads_batched=True,
                                       allow_unused=True)
            g_mm, g_uni = zip(*(((None, None) if g is None else g.unbind()) for g in both))
        else:
            g_mm = torch.autograd.grad(losses["fused"], wrt, retain_graph=True, allow_unused=True)
            g_uni = torch.autograd.grad(uni, wrt, allow_unused=True)
        n = len(layout.params)
        for p, a, b in zip(layout.head, g_mm[n:], g_uni[n:]):
            _accumulate(p, b if a is None else (a if b is None else a + b))
        return _flat([*g_mm[:n], *g_uni[:n]], layout.params * 2).view(2, -1)

    def _separate_grads(self, losses, layout: "GradLayout") -> Tensor:
        """The official scheme: one backward per loss, then one of the sum for the heads."""
        every = layout.params
        g_mm = torch.autograd.grad(losses["fused"], every, retain_graph=True, allow_unused=True)
        g_uni = []
        for m, ps in layout.by_modality.items():
            g_uni += torch.autograd.grad(losses[f"uni/{m}"], ps, retain_graph=True, allow_unused=True)
        before = [p.grad for p in every]
        sum(losses.values()).backward()  # the heads' gradients; the encoders' are replaced below
        for p, g in zip(every, before):
            p.grad = g
        return _flat([*g_mm, *g_uni], every * 2).view(2, -1)

    def _combine(self, state: TrainState, layout: "GradLayout", grads: Tensor) -> None:
        """Weight, rescale and write every encoder's gradients (2, N) at once; log the statistics.

        The Gram entries g_m.g_m, g_m.g_u, g_u.g_u of every tensor come from one segmented sum;
        the rule itself is a few scalars per encoder and tensor, computed in float64 on the host
        (one transfer, which the logging needs anyway). The update is h first, then enlarged,
        so h = 0 stays exactly 0.
        """
        grams = layout.per_tensor((grads.unsqueeze(1) * grads.unsqueeze(0)).flatten(0, 1))  # mm, mu, um, uu
        mm_t, mu_t, _, uu_t = grams.tolist()
        coef: list[list[float]] = [[], [], []]  # per tensor: weight on g_m, weight on g_u, enlargement
        for m, tensors in layout.tensors_of.items():
            g_mm, g_mu, g_uu = (math.fsum(x[tensors]) for x in (mm_t, mu_t, uu_t))
            conflict = g_mu < 0  # a zero gradient is no conflict: MGDA would then stop the encoder
            if self.weights == "uniform" or (self.weights == "pareto" and not conflict):
                c = 0.5
            else:
                c = min_norm_weight_gram(g_mm, g_mu, g_uu)
            w0, w1 = self.scale * c, self.scale * (1 - c)  # h = w0 g_m + w1 g_u
            for a, b, d in zip(mm_t[tensors], mu_t[tensors], uu_t[tensors]):
                coef[0].append(w0)
                coef[1].append(w1)
                coef[2].append(self._enlargement(a, b, d, w0, w1) if self.rescale else 1.0)
            self.c[m] = c
            norm_mm, norm_uni = math.sqrt(g_mm), math.sqrt(g_uu)
            for name, value in (("cos", g_mu / max(norm_mm * norm_uni, EPS)), ("conflict", float(conflict)),
                                ("c", c), ("norm_mm", norm_mm), ("norm_uni", norm_uni)):
                state.log(f"{name}/{m}", value)
        w = grads.new_tensor(coef).index_select(1, layout.tensor_of)
        update = torch.addcmul(w[0] * grads[0], w[1], grads[1]).mul_(w[2])
        for p, g in zip(layout.params, update.split(layout.sizes)):
            _accumulate(p, g.view_as(p))

    def _enlargement(self, mm_: float, mu: float, uu: float, w0: float, w1: float) -> float:
        """gamma * max(1, ||g_m + g_u|| / ||h||) of one tensor from its Gram entries (per tensor,
        while c is per encoder, as the official code); ||h|| = 0 gives a finite factor, not NaN."""
        sum_norm = math.sqrt(max(mm_ + 2 * mu + uu, 0.0))
        h_norm = math.sqrt(max(w0 * w0 * mm_ + 2 * w0 * w1 * mu + w1 * w1 * uu, 0.0))
        return self.gamma * max(1.0, sum_norm / max(h_norm, EPS))


class GradLayout:
    """Where each encoder parameter sits in the flat (2, N) gradient; rebuilt when parameters change.

    ``tensors_of[m]`` is the slice of encoder m's tensors among all T tensors, ``tensor_of`` (N,)
    each entry's tensor, and ``per_tensor`` sums rows of length N over each tensor's entries.
    """

    def __init__(self, enc: dict[str, list], head: list, key: tuple = ()):
        self.key, self.head, self.by_modality = key, head, enc
        self.modalities = tuple(enc)
        self.params = [p for ps in enc.values() for p in ps]
        self.sizes = [p.numel() for p in self.params]
        self.tensors_of, start = {}, 0
        for m, ps in enc.items():
            self.tensors_of[m], start = slice(start, start + len(ps)), start + len(ps)
        device = self.params[0].device if self.params else torch.device("cpu")
        self._lengths = torch.tensor(self.sizes, dtype=torch.long, device=device)
        self.tensor_of = torch.repeat_interleave(torch.arange(len(self.sizes), device=device), self._lengths)

    def per_tensor(self, rows: Tensor) -> Tensor:
        """(R, N) -> (R, T): each row summed over each tensor's entries."""
        return torch.segment_reduce(rows, "sum", lengths=self._lengths.expand(len(rows), -1), axis=1, unsafe=True)


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


def _zeros_if_none(g: Tensor | None, like: Tensor) -> Tensor:
    return torch.zeros_like(like) if g is None else g


def _flat(grads, params) -> Tensor:
    return torch.cat([_zeros_if_none(g, p).reshape(-1) for g, p in zip(grads, params)])


def _accumulate(p: torch.nn.Parameter, g: Tensor | None) -> None:
    if g is not None:
        p.grad = g if p.grad is None else p.grad + g
