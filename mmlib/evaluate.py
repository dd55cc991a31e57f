"""Evaluation: accuracy, macro-F1, macro mAP, per-modality accuracy, and linear probes.

Macro-F1 and macro mAP are scikit-learn's definitions (``f1_score(average="macro",
zero_division=0)``, ``average_precision_score(average="macro")`` over the classes present),
computed here with the same float64 operations in the same order, so the values are
bit-identical to scikit-learn's (tested against it) without its input validation, which cost
tens of milliseconds per call: ``fit`` evaluates the validation split after every epoch.

The linear probe is the papers' evidence of under-optimisation: freeze a trained encoder,
fit a new linear classifier on its features (training split), choose its regularisation on
the validation split, and report test accuracy (ogm_opm.md §7, "unimodal" accuracies of a
joint model are linear probes).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.preprocessing import StandardScaler

from .data.base import BatchLoader, Split


@torch.no_grad()
def predict(model, split: Split, batch_size: int = 512, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Fused and unimodal logits and features for a whole split (eval mode, no dropping)."""
    was_training = model.training
    model.eval()
    chunks: dict[str, list] = {"logits": [], "y": []}
    uni: dict[str, list] = {m: [] for m in model.modalities}
    feats: dict[str, list] = {m: [] for m in model.modalities}
    for batch in BatchLoader(split, batch_size):
        out = model({m: x.to(device) for m, x in batch["inputs"].items()})
        chunks["logits"].append(out.logits.cpu())
        chunks["y"].append(batch["y"])
        for m in model.modalities:
            uni[m].append(out.uni_logits[m].cpu())
            feats[m].append(out.feats[m].cpu())
    model.train(was_training)
    return {"logits": torch.cat(chunks["logits"]), "y": torch.cat(chunks["y"]),
            "uni_logits": {m: torch.cat(v) for m, v in uni.items()},
            "feats": {m: torch.cat(v) for m, v in feats.items()}}


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    """scikit-learn's ``f1_score(y, pred, average="macro", zero_division=0)`` for integer labels.

    Over the labels present in ``y`` or ``pred``: F1 = 2 tp / (#true + #predicted) per label
    (float64), then their mean.
    """
    labels = np.union1d(y, pred)
    size = int(labels.max()) + 1
    tp = np.bincount(y[y == pred], minlength=size)[labels]
    true, predicted = np.bincount(y, minlength=size)[labels], np.bincount(pred, minlength=size)[labels]
    return float(np.nanmean(2.0 * tp / (true.astype(np.float64) + predicted)))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """scikit-learn's ``average_precision_score`` of one binary column (y in {0, 1}, at least one 1).

    The step integral sum_n (R_n - R_{n-1}) P_n over the distinct score thresholds, from
    descending scores: true positives are cumulative sums at the last index of each distinct score.
    """
    order = np.argsort(score, kind="stable")[::-1]
    ranked = score[order]
    idx = np.concatenate([np.nonzero(np.diff(ranked))[0], [len(ranked) - 1]])
    tps = np.cumsum(y[order].astype(np.float64))[idx]
    fps = 1 + idx.astype(np.float64) - tps
    precision = np.concatenate([(tps / (tps + fps))[::-1], [1.0]])
    recall = np.concatenate([(tps / tps[-1])[::-1], [0.0]])
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def classification_metrics(logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Accuracy, macro-F1 and macro mAP (per-class average precision of softmax scores).

    Macro-F1 averages over the classes present in labels or predictions, mAP over the classes
    present in the labels (both as scikit-learn does; see the module docstring).
    """
    pred = logits.argmax(1).numpy()
    yn = y.numpy()
    prob = torch.softmax(logits.double(), 1).numpy()
    present = np.flatnonzero(np.bincount(yn, minlength=num_classes) > 0)
    if len(present) > 1:
        ap = float(np.average(np.array([average_precision((yn == c).astype(np.int32), prob[:, c]) for c in present])))
    else:  # one class: scikit-learn treats the column as a binary target; let it
        onehot = np.eye(num_classes)[yn]
        ap = float(average_precision_score(onehot[:, present], prob[:, present], average="macro"))
    return {"acc": float((pred == yn).mean()), "f1": macro_f1(yn, pred), "map": ap}


def evaluate(model, split: Split, num_classes: int | None = None, device: str | torch.device = "cpu") -> dict[str, float]:
    """Metrics of the fused logits plus ``acc/<modality>`` from each modality's unimodal logits."""
    res = predict(model, split, device=device)
    num_classes = num_classes or res["logits"].shape[1]
    metrics = classification_metrics(res["logits"], res["y"], num_classes)
    for m, logit in res["uni_logits"].items():
        metrics[f"acc/{m}"] = float((logit.argmax(1) == res["y"]).float().mean())
    return metrics


def linear_probe(model, data, modality: str, Cs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0),
                 device: str | torch.device = "cpu") -> dict[str, float]:
    """Fit a logistic-regression probe on the frozen encoder's features.

    Returns:
        ``{"val": best validation accuracy, "test": test accuracy of that probe, "C": its C}``.
    """
    if modality not in model.modalities:
        raise ValueError(f"linear_probe: unknown modality {modality!r}; the model has {model.modalities}")
    preds = {name: predict(model, split, device=device) for name, split in data.splits().items()}
    return _fit_probe(preds, modality, Cs)


def _fit_probe(preds: dict[str, dict[str, Any]], modality: str, Cs: tuple[float, ...]) -> dict[str, float]:
    """The probe of one modality from ``predict`` outputs of the train / val / test splits."""
    x = {name: r["feats"][modality].numpy().astype(np.float64) for name, r in preds.items()}
    y = {name: r["y"].numpy() for name, r in preds.items()}
    scaler = StandardScaler().fit(x["train"])
    x = {k: scaler.transform(v) for k, v in x.items()}
    best = None
    for c in Cs:
        clf = LogisticRegression(C=c, max_iter=2000).fit(x["train"], y["train"])
        val = float(clf.score(x["val"], y["val"]))
        if best is None or val > best[0]:
            best = (val, c, clf)
    val, c, clf = best
    return {"val": val, "test": float(clf.score(x["test"], y["test"])), "C": c}


def probe_all(model, data, Cs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0),
              device: str | torch.device = "cpu") -> dict[str, float]:
    """Test accuracy of a linear probe for every modality: ``{"probe/<m>": acc}``.

    The features of each split are computed once and shared by the modalities' probes.
    """
    preds = {name: predict(model, split, device=device) for name, split in data.splits().items()}
    return {f"probe/{m}": _fit_probe(preds, m, Cs)["test"] for m in model.modalities}


def evaluate_runs(runs, split: Split, prefix: str, num_classes: int | None = None,
                  device: str | torch.device = "cpu"):
    """``runs.table`` with the metrics of every kept model on another split, as ``<prefix>/<metric>`` columns.

    For an extra evaluation split (e.g. ``mmlib.data.debiased.debiased_split``); needs
    ``runs`` made with ``keep=True``. The models are the validation-selected ones.
    """
    if len(runs.results) != len(runs.table):
        raise ValueError("evaluate_runs needs every run's model: run them with keep=True")
    rows = [evaluate(res.model, split, num_classes, device) for res in runs.results]
    extra = [{f"{prefix}/{k}": v for k, v in row.items()} for row in rows]
    return pd.concat([runs.table.reset_index(drop=True), pd.DataFrame(extra)], axis=1)
