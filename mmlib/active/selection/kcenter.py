"""k-center greedy (the "coreset" selector): farthest-first traversal under the joint distance d.

Start from a random pool sample; then repeatedly add the sample whose distance to its nearest
selected sample is largest. This greedily minimises the covering radius max_i min_{s∈S} d(i, s)
(a 2-approximation of the optimum for a metric). d = 1 − φ_i·φ_j is the distance of ``base.py``
(``view`` chooses the joint distance or one modality's). One vectorised (N,) update per step.

Reference: shen2024mmcsal (cold-start baselines); notebook ``notebooks/mmcsal.ipynb``.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ...registry import SELECTORS
from .base import JOINT, Selector, check_view, pair_features


def covering_radius(features: Tensor, selected: Tensor) -> float:
    """max_i min_{s ∈ S} d(i, s) with d = 1 − φ_i·φ_s, for features φ (N, D)."""
    return float((1 - features @ features[selected].T).min(1).values.max())


@SELECTORS.register("kcenter")
class KCenterSelector(Selector):
    """Farthest-first traversal from a random first sample.

    Args:
        view: ``"joint"`` (d of ``base.py``) or one modality's name (d_a only).
    """

    def __init__(self, view: str = JOINT):
        self.view = view

    def check(self, embeddings: dict[str, Tensor]) -> None:
        check_view(self.view, embeddings)

    def _select(self, embeddings: dict[str, Tensor], budget: int, generator: torch.Generator) -> Tensor:
        phi = pair_features(embeddings, self.view)
        n = len(phi)
        chosen = torch.empty(budget, dtype=torch.long)
        chosen[0] = int(torch.randint(n, (1,), generator=generator))
        mind = 1 - phi @ phi[chosen[0]]
        taken = torch.zeros(n, dtype=torch.bool)
        taken[chosen[0]] = True
        for k in range(1, budget):
            # a selected sample is never picked again, even where d(i, i) > 0 (misaligned pairs)
            nxt = int(mind.masked_fill(taken, -float("inf")).argmax())
            chosen[k], taken[nxt] = nxt, True
            mind = torch.minimum(mind, 1 - phi @ phi[nxt])
        return chosen
