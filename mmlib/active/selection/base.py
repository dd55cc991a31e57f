"""The selector interface, its input checks, and the distances every selector shares.

A selector picks a labelling budget of B **real** pool samples (pairs) from their Stage-1
embeddings::

    idx = SELECTORS.create("kcenter").select(embeddings, budget=20, seed=0)

``embeddings`` maps each modality to an (N, d) tensor of the pool (rows are L2-normalised
here); ``idx`` is a LongTensor of B distinct indices into the pool, the same for the same seed.
Bad budgets and embeddings fail before any work. A new selector subclasses ``Selector``,
implements ``_select`` and registers itself with ``@SELECTORS.register(name)``.

**Distances** (mmcsal.md §4, our reading): with u_i, w_i the two modalities' embeddings,

  d_a(i,j) = 1 − u_i·u_j,  d_b(i,j) = 1 − w_i·w_j,  d_x(i,j) = 1 − ½(u_i·w_j + w_i·u_j),
  d = ⅓(d_a + d_b + d_x),  σ = 1 − d.

σ is an inner product of one feature vector per sample: uu' + ww' + ½(uw' + wu') =
[u; w]ᵀ (C ⊗ I) [u'; w'] with C = [[1, ½], [½, 1]] positive definite, so φ_i = (C^{1/2} ⊗ I)[u_i; w_i]/√3
gives σ(i,j) = φ_i·φ_j, and every pairwise computation is one matrix product (``pair_features``).
For M modalities C has 1 on the diagonal and ½ elsewhere, and the normaliser is the number of
terms, M + M(M−1)/2. ``view=<modality>`` uses that modality alone (d = d_a): the
single-modality baseline. Note d(i,i) = ⅓(1 − u_i·w_i) > 0 for a misaligned pair.

Reference: shen2024mmcsal; notebook ``notebooks/mmcsal.ipynb``.
"""
from __future__ import annotations

import itertools
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from ...checks import check_int, is_int

JOINT = "joint"


def check_embeddings(embeddings: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """modality -> (N, d) float tensors with one N and finite values; returned row-normalised in float32."""
    if not isinstance(embeddings, Mapping) or not embeddings:
        raise TypeError(f"embeddings must be a dict modality -> (N, d) tensor (e.g. mm.active.embed(model, "
                        f"data.train)), got {type(embeddings).__name__}")
    out, n = {}, None
    for m, z in embeddings.items():
        if not isinstance(z, Tensor) or z.dim() != 2 or not z.is_floating_point():
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"embeddings[{m!r}] must be a 2-D float tensor (N, d), got {shape}")
        if n is not None and len(z) != n:
            raise ValueError(f"embeddings[{m!r}] has {len(z)} rows but the first modality has {n}; "
                             f"every modality must embed the same pool of pairs")
        if not bool(torch.isfinite(z).all()):
            raise ValueError(f"embeddings[{m!r}] holds NaN or inf values")
        n = len(z)
        out[m] = F.normalize(z.float(), dim=1)
    if n == 0:
        raise ValueError("the pool is empty: the embeddings have 0 rows")
    return out


def check_budget(budget, pool_size: int) -> int:
    """An integer budget B with 1 <= B <= N (the pool size)."""
    if not is_int(budget):
        check_int("budget", budget, low=1)  # raises the TypeError with its standard message
    if budget < 1:
        raise ValueError(f"budget must be at least 1 sample, got {budget}; choose 1 <= budget <= {pool_size} "
                         f"(the pool size)")
    if budget > pool_size:
        raise ValueError(f"budget {budget} exceeds the pool of {pool_size} samples; choose 1 <= budget <= "
                         f"{pool_size}, or embed a larger pool")
    return int(budget)


def check_view(view: str, modalities) -> None:
    if view != JOINT and view not in modalities:
        raise ValueError(f"unknown view {view!r}: use {JOINT!r} (all modalities and their cross terms) or one "
                         f"modality of {tuple(modalities)}")


def pair_features(embeddings: dict[str, Tensor], view: str = JOINT) -> Tensor:
    """φ (N, D) with φ_i·φ_j = σ(i, j), the similarity behind d = 1 − σ (see the module docstring)."""
    check_view(view, embeddings)
    if view != JOINT:
        return embeddings[view]
    mods = list(embeddings)
    m = len(mods)
    coupling = torch.full((m, m), 0.5, dtype=torch.float64).fill_diagonal_(1.0)
    vals, vecs = torch.linalg.eigh(coupling)
    root = (vecs * vals.sqrt()) @ vecs.T  # symmetric square root of the coupling
    terms = m + m * (m - 1) // 2
    stacked = torch.stack([embeddings[k].double() for k in mods])  # (M, N, d)
    phi = torch.einsum("ab,bnd->nad", root, stacked) / terms ** 0.5
    return phi.reshape(len(phi), -1).float()


def alignment(embeddings: dict[str, Tensor]) -> Tensor:
    """(N,) cross-modal alignment of each pair: u_i·w_i (the mean over modality pairs for M > 2)."""
    pairs = list(itertools.combinations(embeddings, 2))
    return sum((embeddings[a] * embeddings[b]).sum(1) for a, b in pairs) / len(pairs)


def nearest_unused(points: Tensor, targets: Tensor, chunk: int = 1024) -> Tensor:
    """For each target (in the given order), the nearest (largest dot product) point not taken yet.

    Points are chosen without replacement: a target whose nearest point is taken gets its next
    nearest, so B targets give B distinct indices (mmcsal.md §6, pitfall 4).
    """
    if len(targets) > len(points):
        raise ValueError(f"cannot match {len(targets)} targets to {len(points)} distinct points")
    taken = torch.zeros(len(points), dtype=torch.bool)
    out = torch.empty(len(targets), dtype=torch.long)
    for start in range(0, len(targets), chunk):
        sims = targets[start:start + chunk] @ points.T
        for r, row in enumerate(sims):
            row = row.masked_fill(taken, -float("inf"))
            j = int(row.argmax())
            taken[j] = True
            out[start + r] = j
    return out


class Selector:
    """Base class: ``select(embeddings, budget, seed)`` checks its inputs and calls ``_select``."""

    registry_name = "selector"

    @classmethod
    def example(cls, modalities: tuple[str, ...]) -> "Selector":
        """An instance for the registry-wide tests (override if the constructor needs arguments)."""
        return cls()

    def select(self, embeddings: Mapping[str, Tensor], budget: int, seed: int = 0) -> Tensor:
        """B distinct pool indices (LongTensor), deterministic given ``seed``."""
        emb = check_embeddings(embeddings)
        n = len(next(iter(emb.values())))
        budget = check_budget(budget, n)
        check_int("seed", seed, low=0)
        self.check(emb)
        idx = self._select(emb, budget, torch.Generator().manual_seed(int(seed)))
        if len(idx) != budget or len(torch.unique(idx)) != budget:
            raise RuntimeError(f"{type(self).__name__} returned {len(torch.unique(idx))} distinct of {len(idx)} "
                               f"indices for a budget of {budget}; this is a bug in the selector")
        return idx.long()

    def check(self, embeddings: dict[str, Tensor]) -> None:
        """Selector-specific checks of the (normalised) embeddings, before any work."""

    def _select(self, embeddings: dict[str, Tensor], budget: int, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({hp})"
