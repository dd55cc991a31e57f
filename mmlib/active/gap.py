"""Modality-gap diagnostics of paired embeddings (no labels needed, except ``neighbour_agreement``).

* ``modality_gap``: ‖μ_a − μ_b‖₂, the distance between the centroids of the two modalities'
  L2-normalised embeddings (mmcsal.md §1.3: the gap that cross-modal pairing alone leaves).
  In [0, 2]; 0 when both modalities have the same mean direction and spread.
* ``retrieval_recall``: cross-modal retrieval R@k, the share of samples whose partner is among
  the k nearest (cosine) embeddings of the other modality.
* ``modality_separability``: accuracy of a linear classifier that predicts which modality an
  embedding came from (trained on one half of the samples, tested on the other); ≈ 1 when the
  two modalities occupy separate regions, ≈ 0.5 when they are mixed.
* ``neighbour_agreement``: for analysis after selection only, how often a sample's nearest
  neighbour under a given distance has the same class.

Reference: shen2024mmcsal (the gap and its effect on cross-modal distances); notebook
``notebooks/mmcsal.ipynb``.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from torch import Tensor


def _pair(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(f"paired embeddings must be two (N, d) tensors of one shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    return F.normalize(a.double(), dim=1), F.normalize(b.double(), dim=1)


def modality_gap(a: Tensor, b: Tensor) -> float:
    """‖mean(a) − mean(b)‖₂ of the row-normalised embeddings (rows are normalised here)."""
    a, b = _pair(a, b)
    return float((a.mean(0) - b.mean(0)).norm())


def mean_gap(embeddings: dict[str, Tensor]) -> float:
    """``modality_gap`` averaged over every pair of modalities (the gap itself for two)."""
    pairs = list(itertools.combinations(embeddings, 2))
    return sum(modality_gap(embeddings[x], embeddings[y]) for x, y in pairs) / len(pairs)


def retrieval_recall(a: Tensor, b: Tensor, k: int = 1) -> float:
    """R@k of retrieving b_i from a_i among all rows of b (cosine similarity; ties count as misses)."""
    a, b = _pair(a, b)
    sim = a @ b.T
    true = sim.diagonal().unsqueeze(1)
    rank = (sim > true).sum(1)  # rows of b strictly more similar than the partner
    return float((rank < k).double().mean())


def modality_separability(a: Tensor, b: Tensor, seed: int = 0) -> float:
    """Test accuracy of a logistic regression that tells modality a's embeddings from b's.

    The samples are split in two halves at random (``seed``); both modalities' embeddings of
    the first half train the classifier, those of the second half test it.
    """
    a, b = _pair(a, b)
    n = len(a)
    if n < 4:
        raise ValueError(f"modality_separability needs at least 4 paired samples, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    halves = perm[: n // 2], perm[n // 2:]
    x = [np.concatenate([a[h].numpy(), b[h].numpy()]) for h in halves]
    y = [np.concatenate([np.zeros(len(h)), np.ones(len(h))]) for h in halves]
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(x[0], y[0])
    return float(clf.score(x[1], y[1]))


def neighbour_agreement(query: Tensor, keys: Tensor, y: Tensor) -> float:
    """Share of samples whose nearest other sample (by cosine of ``query_i`` to ``keys_j``, j ≠ i) has the same class.

    With ``query = u`` and ``keys = w`` this reads the cross-modal distance d_x alone; with both
    ``u`` it reads the uni-modal one. Labels are used for analysis only, never for selection.
    """
    q, k = _pair(query, keys)
    sim = q @ k.T
    sim.fill_diagonal_(-float("inf"))
    return float((y[sim.argmax(1)] == y).double().mean())


def diagnose(embeddings: dict[str, Tensor], y: Tensor | None = None, seed: int = 0) -> dict[str, float]:
    """All gap diagnostics of one set of paired embeddings, averaged over modality pairs.

    Keys: ``gap``, ``separability``, ``r1`` and ``r10`` (both retrieval directions) and, with
    labels ``y`` (analysis only), ``agree/cross`` (the class agreement of d_x neighbours) and
    ``agree/<modality>`` (of each modality's own neighbours).
    """
    pairs = list(itertools.combinations(embeddings, 2))
    ordered = list(itertools.permutations(embeddings, 2))
    out = {"gap": mean_gap(embeddings),
           "separability": sum(modality_separability(embeddings[a], embeddings[b], seed) for a, b in pairs) / len(pairs),
           "r1": sum(retrieval_recall(embeddings[a], embeddings[b], 1) for a, b in ordered) / len(ordered),
           "r10": sum(retrieval_recall(embeddings[a], embeddings[b], 10) for a, b in ordered) / len(ordered)}
    if y is not None:
        out["agree/cross"] = sum(neighbour_agreement(embeddings[a], embeddings[b], y) for a, b in ordered) / len(ordered)
        out |= {f"agree/{m}": neighbour_agreement(z, z, y) for m, z in embeddings.items()}
    return out


def project_2d(a: Tensor, b: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """2-D coordinates of both modalities' normalised embeddings for a figure that shows the gap.

    The first axis is the direction μ_a − μ_b between the two centroids (so their distance along
    it is the gap); the second is the direction of largest remaining variance of all embeddings.
    Returns (2, N) coordinates for a and for b, centred on the overall mean.
    """
    a, b = _pair(a, b)
    both = torch.cat([a, b])
    centred = both - both.mean(0)
    first = a.mean(0) - b.mean(0)
    first = first / first.norm().clamp_min(1e-12)
    rest = centred - (centred @ first).unsqueeze(1) * first
    second = torch.linalg.svd(rest, full_matrices=False).Vh[0]
    coords = torch.stack([centred @ first, centred @ second]).numpy()
    return coords[:, : len(a)], coords[:, len(a):]
