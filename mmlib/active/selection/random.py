"""Random selection: B pool samples uniformly without replacement (the baseline every AL method must beat).

Reference: shen2024mmcsal (cold-start baselines); notebook ``notebooks/mmcsal.ipynb``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ...registry import SELECTORS
from .base import Selector


@SELECTORS.register("random")
class RandomSelector(Selector):
    """Uniform sample of B distinct pool indices (the embeddings only give the pool size)."""

    def _select(self, embeddings: dict[str, Tensor], budget: int, generator: torch.Generator) -> Tensor:
        n = len(next(iter(embeddings.values())))
        return torch.randperm(n, generator=generator)[:budget]
