"""Shared test helpers: tiny, learnable multimodal datasets (importable as ``tests.helpers``)."""
from __future__ import annotations

import torch

from mmlib.data.base import MultimodalDataset, make_splits


def make_tiny_data(modalities=("a", "b"), n=60, num_classes=3, kind="mlp", seed=0,
                   dim=6, strengths=None) -> MultimodalDataset:
    """A small dataset whose every modality carries class information.

    Each class has its own random mean per modality; samples are that mean plus unit
    Gaussian noise, so a linear classifier can learn every modality.

    Args:
        kind: ``"mlp"`` gives vectors of size ``dim`` with MLP encoders; ``"cnn"`` gives
            (1, 8, 8) images with small CNN encoders.
        strengths: optional per-modality scale of the class means (default 3.0 each).
    """
    if kind not in ("mlp", "cnn"):
        raise ValueError(f"kind must be 'mlp' or 'cnn', got {kind!r}")
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    y = y[torch.randperm(n, generator=g)]
    shape = (dim,) if kind == "mlp" else (1, 8, 8)
    strengths = strengths or {}
    inputs, encoders = {}, {}
    for m in modalities:
        means = torch.randn(num_classes, *shape, generator=g) * strengths.get(m, 3.0)
        inputs[m] = means[y] + torch.randn(n, *shape, generator=g)
        if kind == "mlp":
            encoders[m] = ("mlp", {"in_dim": dim, "hidden": 8, "out_dim": 4})
        else:
            encoders[m] = ("cnn", {"in_channels": 1, "width": 4, "out_dim": 4})
    train, val, test = make_splits(inputs, y, (0.6, 0.2, 0.2), seed)
    return MultimodalDataset("tiny", tuple(modalities), num_classes, train, val, test, encoders,
                             [str(c) for c in range(num_classes)], {"seed": seed})
