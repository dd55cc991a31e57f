"""Subjective-logic opinions from Dirichlet evidence, and their reduced Dempster–Shafer combination.

For K classes and Dirichlet parameters alpha = e + 1 (evidence e >= 0), with S = sum_k alpha_k:

    belief b_k = e_k / S,    uncertainty u = K / S,    sum_k b_k + u = 1.

Two opinions combine by the reduced Dempster rule of TMC (han2021tmc), with the
conflict C = sum_{i != j} b^1_i b^2_j:

    b_k = (b^1_k b^2_k + b^1_k u^2 + b^2_k u^1) / (1 - C),    u = u^1 u^2 / (1 - C),

and back to Dirichlet parameters with S = K / u, alpha_k = b_k S + 1. The rule is commutative;
a vacuous opinion (e = 0, u = 1) leaves the other unchanged; 1 - C >= u^1 + u^2 - u^1 u^2 > 0
for finite evidence, so the division is safe. More than two opinions are combined left to
right, as TMC does.

Reference: han2021tmc; notebook ``notebooks/noisy.ipynb``.
"""
from __future__ import annotations

from functools import reduce
from typing import Iterable

from torch import Tensor


def opinion(alpha: Tensor) -> tuple[Tensor, Tensor]:
    """Belief (B, K) and uncertainty (B, 1) of Dirichlet parameters ``alpha`` (B, K), all >= 1."""
    strength = alpha.sum(1, keepdim=True)
    return (alpha - 1) / strength, alpha.shape[1] / strength


def combine(alpha1: Tensor, alpha2: Tensor) -> Tensor:
    """The reduced Dempster–Shafer combination of two opinions, as Dirichlet parameters (B, K)."""
    b1, u1 = opinion(alpha1)
    b2, u2 = opinion(alpha2)
    agree = (b1 * b2).sum(1, keepdim=True)
    conflict = b1.sum(1, keepdim=True) * b2.sum(1, keepdim=True) - agree
    norm = 1 - conflict
    belief = (b1 * b2 + b1 * u2 + b2 * u1) / norm
    uncertainty = u1 * u2 / norm
    return belief * (alpha1.shape[1] / uncertainty) + 1


def combine_all(alphas: Iterable[Tensor]) -> Tensor:
    """Combine any number (>= 1) of opinions left to right."""
    return reduce(combine, list(alphas))


__all__ = ["combine", "combine_all", "opinion"]
