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
        batched: one vmapped vector-Jacobian product for both losses instead of two plain ones.

    Exact gradients without re-running the heads: each loss reaches encoder k only through its
    features z^k, so v_m = dL_mm/dz^k and v_u = dL_u^k/dz^k come from two head-level
    ``autograd.grad`` calls, and vector-Jacobian products of z^k give g_m and g_u (two plain
    ones by default: on one CPU thread they beat the vmapped one, and need no batching rules).
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
        self._feats: dict[str, Tensor] | None = None

    def compute_loss(self, state: TrainState, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        self._feats = out.feats  # backward needs z^k; the losses alone do not carry them
        y = batch["y"]
        losses = {"fused": F.cross_entropy(out.logits, y)}
        for m, logit in out.uni_logits.items():
            losses[f"uni/{m}"] = F.cross_entropy(logit, y)
        return losses

    def backward(self, state: TrainState, losses: dict[str, Tensor]) -> None:
        model, feats, self._feats = state.model, self._feats, None
        enc = {m: modality_params(model, m) for m in state.modalities}
        if self.naive:
            grads = self._separate_grads(losses, enc)
        else:
            grads = self._feature_grads(model, losses, feats, enc)
        if state.world_size > 1:  # autograd.grad bypasses DDP's reducer: average here, heads too
            for g in [*grads.values(), *(p.grad for p in model.head.parameters() if p.grad is not None)]:
                state.all_reduce(g).div_(state.world_size)
        for m, g in grads.items():
            self._combine(state, m, enc[m], g)

    def _feature_grads(self, model, losses, feats, enc) -> dict[str, Tensor]:
        """Per encoder, its flattened [g_m; g_u] (2, N), from vector-Jacobian products of z^k."""
        mods = tuple(enc)
        zs = [feats[m] for m in mods]
        head = [p for p in model.head.parameters() if p.requires_grad]
        uni = sum(losses[f"uni/{m}"] for m in mods)  # L_u^j does not depend on z^k for j != k
        v_mm = torch.autograd.grad(losses["fused"], zs + head, retain_graph=True, allow_unused=True)
        v_uni = torch.autograd.grad(uni, zs + head, retain_graph=True, allow_unused=True)
        for p, a, b in zip(head, v_mm[len(mods):], v_uni[len(mods):]):
            _accumulate(p, b if a is None else (a if b is None else a + b))
        v_mm = [_zeros_if_none(v, z) for v, z in zip(v_mm, zs)]
        v_uni = [_zeros_if_none(v, z) for v, z in zip(v_uni, zs)]
        every = [p for m in mods for p in enc[m]]  # the encoders' graphs are disjoint: one call for all
        if self.batched:
            gs = torch.autograd.grad(zs, every, [torch.stack(v) for v in zip(v_mm, v_uni)],
                                     is_grads_batched=True, allow_unused=True)
            gs = [(p.new_zeros((2, *p.shape)) if g is None else g).reshape(2, -1) for g, p in zip(gs, every)]
        else:
            g_mm = torch.autograd.grad(zs, every, v_mm, retain_graph=True, allow_unused=True)
            g_uni = torch.autograd.grad(zs, every, v_uni, allow_unused=True)
            gs = [torch.stack([_zeros_if_none(a, p), _zeros_if_none(b, p)]).reshape(2, -1)
                  for a, b, p in zip(g_mm, g_uni, every)]
        grads, start = {}, 0
        for m in mods:
            grads[m], start = torch.cat(gs[start:start + len(enc[m])], 1), start + len(enc[m])
        return grads

    def _separate_grads(self, losses, enc) -> dict[str, Tensor]:
        """The official scheme: one backward per loss, then one of the sum for the heads."""
        every = [p for ps in enc.values() for p in ps]
        g_mm = dict(zip(every, torch.autograd.grad(losses["fused"], every, retain_graph=True, allow_unused=True)))
        grads = {}
        for m, ps in enc.items():
            g_uni = torch.autograd.grad(losses[f"uni/{m}"], ps, retain_graph=True, allow_unused=True)
            grads[m] = torch.stack([_flat([g_mm[p] for p in ps], ps), _flat(g_uni, ps)])
        before = [p.grad for p in every]
        sum(losses.values()).backward()  # the heads' gradients; the encoders' are replaced below
        for p, g in zip(every, before):
            p.grad = g
        return grads

    def _combine(self, state: TrainState, m: str, params: list, grads: Tensor) -> None:
        """Weight, rescale and write one encoder's gradients (2, N); log the conflict statistics."""
        sizes = [p.numel() for p in params]
        # per tensor tau: [gm.gm, gm.gu, gu.gu] (3, T); their sum is the whole flattened encoder's
        grams = torch.stack([f @ f.T for f in grads.split(sizes, 1)]).flatten(1)[:, [0, 1, 3]].T
        mm_, dot, uu = grams.sum(1)
        conflict = dot < 0  # a zero gradient is no conflict: MGDA would then stop the encoder
        c = min_norm_weight_gram(mm_, dot, uu)
        if self.weights == "pareto":
            c = torch.where(conflict, c, torch.full_like(c, 0.5))
        elif self.weights == "uniform":
            c = torch.full_like(c, 0.5)
        w = self.scale * torch.stack([c, 1 - c])  # h = w[0] g_m + w[1] g_u
        update = w @ grads
        if self.rescale:  # per tensor, while c is per encoder (as the official code)
            sum_norm = (grams[0] + 2 * grams[1] + grams[2]).clamp_min(0).sqrt()  # ||g_m,tau + g_u,tau||
            h_norm = (w[0] ** 2 * grams[0] + 2 * w[0] * w[1] * grams[1] + w[1] ** 2 * grams[2]).clamp_min(0).sqrt()
            factor = self.gamma * (sum_norm / h_norm.clamp_min(EPS)).clamp_min(1.0)  # h = 0 stays 0, not NaN
            update = update * factor.repeat_interleave(torch.tensor(sizes, device=factor.device),
                                                       output_size=update.numel())
        for p, g in zip(params, update.split(sizes)):
            _accumulate(p, g.view_as(p))
        norm_mm, norm_uni = mm_.sqrt(), uu.sqrt()
        cos = dot / (norm_mm * norm_uni).clamp_min(EPS)
        stats = torch.stack([cos, conflict.to(cos.dtype), c, norm_mm, norm_uni]).tolist()  # one sync
        self.c[m] = stats[2]
        for name, value in zip(("cos", "conflict", "c", "norm_mm", "norm_uni"), stats):
            state.log(f"{name}/{m}", value)


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
