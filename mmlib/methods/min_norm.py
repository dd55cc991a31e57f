"""The two-task min-norm (MGDA) weight in closed form, safe on degenerate pairs.

For two gradients g1, g2 the min-norm point of their convex hull is c* g1 + (1 - c*) g2 with

    c* = argmin_{c in [0, 1]} ||c g1 + (1 - c) g2||^2 = clip((g2.g2 - g1.g2) / ||g1 - g2||^2, 0, 1).

Reference: sener2018mgda (Algorithm 1, two tasks); wei2024mmpareto; notebook ``notebooks/mmpareto.ipynb``.
"""
from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-12


def min_norm_weight_gram(g11: Tensor, g12: Tensor, g22: Tensor, eps: float = EPS) -> Tensor:
    """c* from the Gram entries g1.g1, g1.g2, g2.g2 (tensors of any matching shape).

    Identical gradients (including two zero gradients) make every c give the same point;
    we return 1/2 there instead of 0/0. The official solver clips to [0.001, 0.999]; we clip
    to [0, 1], the exact minimiser (for conflicting, non-zero gradients c* is inside anyway).
    """
    denom = g11 - 2 * g12 + g22  # ||g1 - g2||^2
    # relative test: rounding leaves a tiny positive denom for equal non-zero gradients
    degenerate = denom <= eps * (g11 + g22) + eps
    c = (g22 - g12) / torch.where(degenerate, torch.ones_like(denom), denom)
    return torch.where(degenerate, torch.full_like(c, 0.5), c).clamp(0.0, 1.0)


def min_norm_weight(g1: Tensor, g2: Tensor, eps: float = EPS) -> Tensor:
    """c* for two gradients of any (equal) shape; a 0-dim tensor in [0, 1], never NaN."""
    g1, g2 = g1.reshape(-1), g2.reshape(-1)
    return min_norm_weight_gram(g1 @ g1, g1 @ g2, g2 @ g2, eps)
