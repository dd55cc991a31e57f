"""The two-task min-norm (MGDA) weight in closed form, safe on degenerate pairs.

For two gradients g1, g2 the min-norm point of their convex hull is c* g1 + (1 - c*) g2 with

    c* = argmin_{c in [0, 1]} ||c g1 + (1 - c) g2||^2 = clip((g2.g2 - g1.g2) / ||g1 - g2||^2, 0, 1).

The weight is a handful of scalar operations on the Gram entries, so it is computed on Python
floats (float64), once per encoder and step.

Reference: sener2018mgda (Algorithm 1, two tasks); wei2024mmpareto; notebook ``notebooks/mmpareto.ipynb``.
"""
from __future__ import annotations

from torch import Tensor

EPS = 1e-12


def min_norm_weight_gram(g11: float, g12: float, g22: float, eps: float = EPS) -> float:
    """c* from the Gram entries g1.g1, g1.g2, g2.g2.

    Identical gradients (including two zero gradients) make every c give the same point;
    we return 1/2 there instead of 0/0. The official solver clips to [0.001, 0.999]; we clip
    to [0, 1], the exact minimiser (for conflicting, non-zero gradients c* is inside anyway).
    """
    denom = g11 - 2 * g12 + g22  # ||g1 - g2||^2
    if denom <= eps * (g11 + g22) + eps:  # relative: rounding leaves a tiny denom for equal gradients
        return 0.5
    return min(1.0, max(0.0, (g22 - g12) / denom))


def min_norm_weight(g1: Tensor, g2: Tensor, eps: float = EPS) -> float:
    """c* for two gradients of any (equal) shape; a float in [0, 1], never NaN."""
    g1, g2 = g1.reshape(-1).double(), g2.reshape(-1).double()
    return min_norm_weight_gram(float(g1 @ g1), float(g1 @ g2), float(g2 @ g2), eps)
