"""k-means selection: cluster the pool into B groups and label the real sample nearest each centroid.

k-means with k = B on the concatenated embeddings [u; w]/√M (unit norm per pair), with an
explicit ``n_init`` (scikit-learn >= 1.4 defaults to a single initialisation; mmcsal.md §6,
pitfall 2) and the selection seed. Each centroid then takes its nearest unused pool sample, so
two centroids never pick the same pair (``nearest_unused``).

Reference: shen2024mmcsal (cold-start baselines); notebook ``notebooks/mmcsal.ipynb``.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch import Tensor

from ...checks import check_int
from ...registry import SELECTORS
from .base import Selector, nearest_unused


@SELECTORS.register("kmeans")
class KMeansSelector(Selector):
    """Nearest real pair to each of B k-means centroids of [u; w]/√M.

    Args:
        n_init: k-means restarts (the best inertia is kept).
        max_iter: Lloyd iterations per restart.
    """

    def __init__(self, n_init: int = 10, max_iter: int = 100):
        check_int("n_init", n_init, low=1)
        check_int("max_iter", max_iter, low=1)
        self.n_init, self.max_iter = n_init, max_iter

    def _select(self, embeddings: dict[str, Tensor], budget: int, generator: torch.Generator) -> Tensor:
        x = torch.cat(list(embeddings.values()), dim=1) / len(embeddings) ** 0.5
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        km = KMeans(n_clusters=budget, n_init=self.n_init, max_iter=self.max_iter, random_state=seed)
        km.fit(x.double().numpy())
        centres = torch.from_numpy(np.asarray(km.cluster_centers_)).float()
        # nearest in Euclidean distance: ||x - c||² = ||x||² - 2 x·c + ||c||², and ||x|| = 1 for every pair
        points = torch.cat([x, -0.5 * torch.ones(len(x), 1)], dim=1)
        targets = torch.cat([centres, centres.pow(2).sum(1, keepdim=True)], dim=1)
        return nearest_unused(points, targets)
