"""Stage-1 losses of MMCSAL: cross-modal InfoNCE and the uni-modal prototype loss.

All embeddings are L2-normalised, shape (B, d).

* **Cross-modal InfoNCE** (symmetric, temperature τ) between the paired embeddings u_i, w_i:

  L_X = -1/(2B) Σ_i [ log softmax_j(u_i·w_j / τ)_i + log softmax_j(w_i·u_j / τ)_i ],

  i.e. the mean of two cross-entropies on the (B, B) similarity matrix with the diagonal as
  targets. With M > 2 modalities, L_X is the mean over the M(M-1)/2 pairs.
* **Uni-modal prototype loss** (SwAV-style "swapped prediction", within one modality m): K
  learnable prototypes P^m (rows normalised), two views z1, z2 of the batch. The target q is the
  balanced soft assignment of one view to the prototypes (Sinkhorn-Knopp equipartition, ε, a few
  iterations, no gradient); the other view predicts it with softmax(z · P^T / τ_p):

  L_P^m = -1/(2B) Σ_i [ q1_i · log softmax(z2_i P^T / τ_p) + q2_i · log softmax(z1_i P^T / τ_p) ].

The paper says only that Stage 1 combines a cross-modal pairing loss with uni-modal prototype
losses, and that prototypes shrink the modality gap (mmcsal.md §1.3-1.5). **The exact forms
here (InfoNCE, SwAV's Sinkhorn targets with ε = 0.05 and 3 iterations, τ_p = 0.1) are our
engineering reading** (mmcsal.md §3), not formulas from the paper, which we could not read.

Reference: shen2024mmcsal; notebook ``notebooks/mmcsal.ipynb``.
"""
from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor


def info_nce(a: Tensor, b: Tensor, tau: float = 0.1) -> Tensor:
    """Symmetric InfoNCE between paired rows of ``a`` and ``b`` (both (B, d), normalised)."""
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"info_nce needs two (B, d) tensors of the same shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")
    logits = a @ b.T / tau
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def cross_modal_loss(embeddings: dict[str, Tensor], tau: float = 0.1) -> Tensor:
    """L_X: InfoNCE averaged over every pair of modalities (one pair for M = 2)."""
    pairs = list(itertools.combinations(embeddings, 2))
    if not pairs:
        raise ValueError(f"the cross-modal loss needs at least two modalities, got {list(embeddings)}")
    return sum(info_nce(embeddings[a], embeddings[b], tau) for a, b in pairs) / len(pairs)


@torch.no_grad()
def sinkhorn(scores: Tensor, eps: float = 0.05, iters: int = 3) -> Tensor:
    """Balanced soft assignment of B samples to K prototypes (SwAV's Sinkhorn-Knopp).

    Starts from exp(scores / ε) and alternately rescales so that every prototype receives the
    same total mass B/K and every sample's row sums to 1 (the last rescaling is the rows', so
    rows sum to 1 exactly and columns to B/K approximately). Computed in log space.

    Args:
        scores: (B, K) similarities of samples to prototypes.
    Returns:
        (B, K) assignment probabilities q (no gradient).
    """
    n, k = scores.shape
    log_q = scores.double() / eps
    for _ in range(iters):
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - math.log(k)  # each prototype: mass 1/K
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(n)  # each sample: mass 1/B
    return (log_q.exp() * n).to(scores.dtype)


def prototype_loss(z1: Tensor, z2: Tensor, prototypes: Tensor, tau_p: float = 0.1, eps: float = 0.05,
                   iters: int = 3) -> Tensor:
    """L_P of one modality: each view predicts the other view's balanced prototype assignment.

    Args:
        z1, z2: (B, d) normalised embeddings of two views of the same samples.
        prototypes: (K, d) prototype vectors (normalised here).
    """
    p = F.normalize(prototypes, dim=1)
    s1, s2 = z1 @ p.T, z2 @ p.T
    q1, q2 = sinkhorn(s1, eps, iters), sinkhorn(s2, eps, iters)
    ce = lambda q, s: -(q * F.log_softmax(s / tau_p, dim=1)).sum(1).mean()  # noqa: E731
    return 0.5 * (ce(q1, s2) + ce(q2, s1))


def jitter(x: Tensor, noise: float = 0.1, mask: float = 0.2, generator: torch.Generator | None = None) -> Tensor:
    """A second view of an input batch: zero a fraction ``mask`` of its entries, add Gaussian noise.

    A modality-agnostic stand-in for the spec's augmentations (crops, SpecAugment, token
    dropout; mmcsal.md §3.5): our inputs are standardised feature vectors (mfeat), MFCC frames
    and small images, so one feature-level jitter serves all of them (our choice).
    """
    keep = (torch.rand(x.shape, generator=generator, device=x.device) >= mask).to(x.dtype)
    return x * keep + noise * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
