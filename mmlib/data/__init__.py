"""Datasets by name: ``load_dataset("av-digits")``, ``DATASETS.names()``."""
from __future__ import annotations

import inspect
from typing import Any

from ..checks import check_finite
from ..registry import DATASETS
from . import av_digits, av_mnist, mfeat, scenes  # noqa: F401  (registration)
from . import debiased  # noqa: F401  (mm.data.debiased: an evaluation split, not a dataset)
from .base import BatchLoader, MultimodalDataset, Split, make_splits, stratified_split
from .mfeat import MissingDataError
from .noise import with_noise


def load_dataset(name: str, **kwargs: Any) -> MultimodalDataset:
    """Build a registered dataset; unknown keyword arguments are an error naming the valid ones.

    The built dataset is checked for NaN and inf in every input (an error naming the split and
    modality), so bad data fails here rather than as NaN losses during training.
    """
    factory = DATASETS.get(name)
    params = inspect.signature(factory).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise TypeError(f"dataset {name!r} got unknown argument(s) {unknown}; valid: {sorted(params)}")
    data = factory(**kwargs)
    check_finite(data)
    return data


__all__ = ["BatchLoader", "DATASETS", "MissingDataError", "MultimodalDataset", "Split", "load_dataset",
           "make_splits", "stratified_split", "with_noise"]
