"""Learning-state diagnosis: how well each encoder's features separate the classes, on seen and unseen data.

For the features Z (N, D) of one modality's encoder and the labels y of one split
(Diagnosing & Re-learning, wei2024diagnosing, Sec. 3):

1. scale every feature dimension to [-1, 1] by its minimum and maximum over these N rows
   (``minmax_scale``; the scaling is fitted on each matrix separately, as the official code does);
2. cluster the rows with k-means into k = C clusters (C classes);
3. purity P = (1/N) sum_{clusters c} max_y #{i in c : y_i = y} (``purity``).

With P_D from the training split and P_V from the validation split (never the test split),
the learning state of modality k is the gap g^k = abs(P_D^k - P_V^k) (``learning_state``), and the
re-initialisation strength is alpha_k = tanh(lambda g^k) (``reinit_strength``). A large gap
means the encoder separates the data it was trained on much better than unseen data: it has
over-fitted (or memorised a scarcely informative input).

Equal sample sizes. With k fixed, k-means on fewer samples finds purer clusters by chance (on
N samples of C balanced classes a random partition has purity above 1/C, more so for small N),
so P_D on the whole training split and P_V on a smaller validation split differ even for an
encoder that has learnt nothing: a "purity floor" that biases every gap. ``learning_state``
therefore clusters, by default, a fixed random subset of the training split of the validation
split's size (``train_samples="val"``; the subset depends only on the seed, so every diagnosis of
a run reads the same samples). ``train_samples=None`` clusters the whole training split, as the
official code does. The subset also makes the diagnosis cheaper (features and k-means on
len(val) rather than len(train) rows).

k-means is scikit-learn's, with ``n_init`` always passed: its default changed from 10 to
``"auto"`` (one initialisation with k-means++) in scikit-learn 1.4, which changes purity and so
alpha; the official code relies on the default. We pass ``n_init=10`` (the pre-1.4 behaviour)
unless told otherwise, and ``random_state`` fixed (0, as the official code), so purity is a
deterministic function of the features. ``SKLEARN_VERSION`` is recorded for result tables.

Reference: wei2024diagnosing; notebook ``notebooks/diagnosing_relearning.ipynb``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import sklearn
import torch
from sklearn.cluster import KMeans

from .checks import check_int, check_real
from .evaluate import predict

SKLEARN_VERSION = sklearn.__version__
N_INIT = 10  # scikit-learn's default before 1.4, when the default became "auto" (one run with k-means++)


def minmax_scale(x: np.ndarray) -> np.ndarray:
    """Each column mapped linearly to [-1, 1] by its own minimum and maximum: (N, D) -> (N, D), float64.

    A constant column (zero range, e.g. a dead ReLU unit) becomes -1, as scikit-learn's
    ``MinMaxScaler(feature_range=(-1, 1))`` maps it, so it cannot separate anything.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"minmax_scale needs a non-empty (N, D) matrix, got shape {x.shape}")
    low, high = x.min(axis=0), x.max(axis=0)
    span = high - low
    span[span == 0] = 1.0
    return 2.0 * (x - low) / span - 1.0


def purity(y: np.ndarray, clusters: np.ndarray) -> float:
    """Share of samples that carry their cluster's majority label: (1/N) sum_c max_y #(c ∩ y).

    Args:
        y: (N,) integer labels.
        clusters: (N,) integer cluster ids (any non-negative integers).
    """
    y, clusters = np.asarray(y), np.asarray(clusters)
    if y.shape != clusters.shape or y.ndim != 1 or len(y) == 0:
        raise ValueError(f"purity needs two non-empty 1-D arrays of equal length, got {y.shape} and {clusters.shape}")
    _, yi = np.unique(y, return_inverse=True)
    _, ci = np.unique(clusters, return_inverse=True)
    table = np.zeros((ci.max() + 1, yi.max() + 1), dtype=np.int64)
    np.add.at(table, (ci, yi), 1)
    return float(table.max(axis=1).sum() / len(y))


def cluster_purity(feats: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, num_clusters: int,
                   n_init: int = N_INIT, seed: int = 0) -> float:
    """Purity of k-means (k = ``num_clusters``) on min-max scaled features (N, D) against labels (N,).

    Args:
        n_init: k-means initialisations (the best inertia is kept); passed explicitly, see the module docstring.
        seed: k-means' ``random_state``; the same features and seed give the same purity.
    """
    check_int("num_clusters", num_clusters, low=1)
    check_int("n_init", n_init, low=1)
    feats = feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else np.asarray(feats)
    y = y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if len(feats) < num_clusters:
        raise ValueError(f"k-means with {num_clusters} clusters needs at least {num_clusters} samples, "
                         f"got {len(feats)}")
    x = minmax_scale(feats.reshape(len(feats), -1))
    labels = KMeans(n_clusters=num_clusters, n_init=n_init, random_state=seed).fit_predict(x)
    return purity(y, labels)


def reinit_strength(gap: float, lam: float) -> float:
    """alpha = tanh(lambda * gap), in [0, 1) for a gap in [0, 1] and lambda > 0."""
    check_real("lam", lam, low=0, low_open=True)
    return math.tanh(lam * gap)


TrainSamples = int | str | None


def check_train_samples(train_samples: TrainSamples) -> None:
    """``"val"``, ``None`` or a positive integer; anything else is an error naming the choices."""
    if train_samples is None or train_samples == "val":
        return
    if isinstance(train_samples, bool) or not isinstance(train_samples, int) or train_samples < 1:
        raise ValueError(f"train_samples must be 'val' (as many training samples as validation samples), None "
                         f"(the whole training split, as the official code) or a positive integer; "
                         f"got {train_samples!r}")


def train_subset(n_train: int, n_val: int, train_samples: TrainSamples, seed: int) -> np.ndarray | None:
    """Sorted indices of the training samples the diagnosis clusters, or None for all of them.

    ``"val"`` takes ``n_val`` of them, an integer that many (all if the split is not larger); the
    draw depends only on ``seed`` and the sizes.
    """
    check_train_samples(train_samples)
    n = n_val if train_samples == "val" else train_samples
    if n is None or n >= n_train:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_train, size=n, replace=False))


def learning_state(model: torch.nn.Module, data: Any, n_init: int = N_INIT, seed: int = 0,
                   device: str | torch.device = "cpu",
                   train_samples: TrainSamples = "val") -> dict[str, dict[str, float]]:
    """Train and validation purity and their gap for every modality of ``model``.

    The features of both splits are computed once for all modalities, in eval mode (BatchNorm
    with its running statistics, no feature dropping), without gradients; the model's mode is
    restored afterwards.

    Args:
        train_samples: how many training samples to cluster: ``"val"`` (default) as many as the
            validation split has, a fixed random subset drawn with ``seed`` (see the module
            docstring: equal sizes remove the purity floor); ``None`` all of them (official code);
            or an integer.
        seed: k-means' random state and the subset's seed.

    Returns:
        modality -> ``{"purity_train": P_D, "purity_val": P_V, "gap": |P_D - P_V|}``.
    """
    idx = train_subset(len(data.train), len(data.val), train_samples, seed)
    split = data.train if idx is None else data.train.subset(idx)
    train, val = predict(model, split, device=device), predict(model, data.val, device=device)
    out = {}
    for m in model.modalities:
        p_train = cluster_purity(train["feats"][m], train["y"], data.num_classes, n_init, seed)
        p_val = cluster_purity(val["feats"][m], val["y"], data.num_classes, n_init, seed)
        out[m] = {"purity_train": p_train, "purity_val": p_val, "gap": abs(p_train - p_val)}
    return out


STATS = ("purity_train", "purity_val", "gap", "alpha")


def diagnosis_table(logs: Any) -> Any:
    """The logged diagnoses as one row per run, epoch and modality.

    ``logs`` is ``Runs.logs`` (columns epoch, step, name, value, seed, label); names
    ``<stat>/<modality>`` for the ``STATS`` are kept, others ignored. Returns columns label,
    seed, epoch, modality and one per stat found (``alpha`` only where D&R re-initialised).
    """
    import pandas as pd

    stat = logs["name"].str.split("/", n=1).str[0]
    part = logs[stat.isin(STATS)]
    if part.empty:
        return pd.DataFrame(columns=["label", "seed", "epoch", "modality", *STATS])
    split = part["name"].str.split("/", n=1, expand=True)
    part = part.assign(stat=split[0], modality=split[1])
    wide = part.pivot_table(index=["label", "seed", "epoch", "modality"], columns="stat", values="value",
                            sort=False).reset_index()
    wide.columns.name = None
    return wide[["label", "seed", "epoch", "modality", *(s for s in STATS if s in wide.columns)]]
