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


def make_notebook(path, params: str = 'profile = "default"\nseeds = None', body: str = "print(profile)",
                  tagged: bool = True):
    """A two-cell notebook at ``path``: a parameters cell (tagged unless ``tagged=False``) and ``body``."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = new_code_cell(params)
    if tagged:
        cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, new_code_cell(body)]
    nbformat.write(nb, path)
    return path


def printed(path) -> str:
    """Everything an executed notebook printed (its stream outputs), as one string."""
    import nbformat

    return "".join(o.get("text", "") for c in nbformat.read(path, as_version=4).cells for o in c.get("outputs", []))
