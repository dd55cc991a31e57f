"""A "debiased" evaluation split: the samples on which the dominant modality alone is not enough.

The paper's MM-Debiased dataset (wei2024valuation) is a new collection of Kinetics and VGGSound
clips, chosen so that audio and visual contribute alike on average while individual samples still
differ. We cannot collect data; this is a weaker, evaluation-only analogue on a built-in dataset:
the samples of one split that a **reference classifier** on the dominant modality's raw input gets
wrong. On them a fused model has to take its answer from the other modalities.

The reference is a logistic regression on the standardised, flattened raw input, fitted on the
training split with its regularisation chosen on validation: it is independent of every model
being compared (selecting with one of them, e.g. the joint model's own audio-only errors, would
favour the others by construction), and deterministic per dataset.

Reference: wei2024valuation (MM-Debiased, §5 of the spec); notebook ``notebooks/modality_valuation.ipynb``.
"""
from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from .base import MultimodalDataset, Split


def reference_predictions(data: MultimodalDataset, modality: str, split: str = "test",
                          Cs: tuple[float, ...] = (0.01, 0.1, 1.0)) -> np.ndarray:
    """Predictions (N,) on ``split`` of a logistic regression on ``modality``'s raw input (C chosen on val)."""
    if modality not in data.modalities:
        raise ValueError(f"unknown modality {modality!r} for {data.name}; it has {data.modalities}")
    if split not in ("train", "val", "test"):
        raise ValueError(f"unknown split {split!r}; choose from ['test', 'train', 'val']")
    x = {name: s.inputs[modality].flatten(1).numpy().astype(np.float64) for name, s in data.splits().items()}
    scaler = StandardScaler().fit(x["train"])
    x = {name: scaler.transform(v) for name, v in x.items()}
    best = None
    for c in Cs:
        clf = LogisticRegression(C=c, max_iter=2000).fit(x["train"], data.train.y.numpy())
        score = float(clf.score(x["val"], data.val.y.numpy()))
        if best is None or score > best[0]:
            best = (score, clf)
    return best[1].predict(x[split])


def debiased_split(data: MultimodalDataset, dominant: str | None = None, split: str = "test",
                   Cs: tuple[float, ...] = (0.01, 0.1, 1.0)) -> Split:
    """The samples of ``split`` that the reference classifier on ``dominant`` misclassifies.

    Args:
        dominant: the modality joint training relies on; default: the only modality other than
            ``data.weak`` (two-modality datasets).

    The returned split keeps the parent's sample ids in ``index``.
    """
    if dominant is None:
        others = [m for m in data.modalities if m != data.weak]
        if data.weak is None or len(others) != 1:
            raise ValueError(f"{data.name}: name the dominant modality (dominant=...); data.weak is "
                             f"{data.weak!r} among {data.modalities}")
        dominant = others[0]
    pred = reference_predictions(data, dominant, split, Cs)
    part = data.splits()[split]
    wrong = np.flatnonzero(pred != part.y.numpy())
    if len(wrong) == 0:
        raise ValueError(f"the reference classifier on {dominant!r} gets every {split} sample right: "
                         f"no debiased split to build")
    return part.subset(wrong)
