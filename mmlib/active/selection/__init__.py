"""Cold-start selectors behind one interface (``base.Selector``) and one registry (``SELECTORS``).

``random``, ``kmeans`` (nearest pair to each k-means centroid), ``kcenter`` (farthest-first
coreset), ``single-modality`` (the MMCSAL objective on one modality) and ``mmcsal`` (distribution
+ diversity + λ_align · alignment; ``lam_align=0`` is its ablation without alignment).
"""
from . import kcenter, kmeans, mmcsal, random  # noqa: F401  (registration)
from .base import JOINT, Selector, alignment, check_budget, check_embeddings, pair_features
from .kcenter import KCenterSelector, covering_radius
from .kmeans import KMeansSelector
from .mmcsal import MMCSALSelector, SingleModalitySelector, objective
from .random import RandomSelector

__all__ = ["JOINT", "KCenterSelector", "KMeansSelector", "MMCSALSelector", "RandomSelector", "Selector",
           "SingleModalitySelector", "alignment", "check_budget", "check_embeddings", "covering_radius",
           "objective", "pair_features"]
