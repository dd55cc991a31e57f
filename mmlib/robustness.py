"""Trained models on corrupted data: test-time sweeps and per-sample outputs.

``sweep(runs, conditions)`` evaluates every model of a ``Runs`` (trained once per seed) on
each corrupted version of its dataset (``mm.corrupt``), so a curve over noise strengths or
missing rates costs evaluations, not trainings. ``per_sample(runs, data)`` returns one row per
model and sample: correctness of the fused and unimodal predictions, the corruption each
sample received, and what a dynamic head made of it (the QMF weights, the TMC uncertainties);
``per_sample_sweep`` does so for every condition of a sweep. ``by_level`` bins such rows by
corruption strength.

Reference: notebooks ``notebooks/noisy.ipynb``, ``notebooks/incomplete.ipynb``,
``notebooks/quality_varying.ipynb``.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from . import corrupt
from .checks import check_choice
from .data.base import MultimodalDataset
from .evaluate import evaluate, predict
from .experiment import Runs
from .models.evidence import opinion
from .models.fusion import ConfidenceFusion, EvidentialFusion


def _check(runs: Runs, data: MultimodalDataset, split: str) -> None:
    check_choice("split", split, corrupt.SPLITS)
    if not runs.results:
        raise ValueError("these runs kept no models: run them with keep=True (the default)")
    names = set(runs.table["dataset"])
    if names != {data.name}:
        raise ValueError(f"the runs were trained on {sorted(names)}, not on {data.name!r}: evaluate each dataset's "
                         f"runs on corruptions of that dataset")


def sweep(runs: Runs, conditions: Mapping[Any, MultimodalDataset], split: str = "test",
          device: str | torch.device = "cpu") -> pd.DataFrame:
    """Metrics of every trained model on ``split`` of every condition (name -> dataset).

    Returns one row per model and condition: dataset, label, seed, condition, and the metrics
    of ``mm.evaluate`` (acc, f1, map, acc/<modality>).
    """
    if not conditions:
        raise ValueError("conditions is empty: give at least one name -> dataset, e.g. {0.0: data}")
    rows = []
    for name, cond in conditions.items():
        _check(runs, cond, split)
        target = getattr(cond, split)
        for res, (_, row) in zip(runs.results, runs.table.iterrows()):
            metrics = evaluate(res.model, target, cond.num_classes, device)
            rows.append({"dataset": row["dataset"], "label": row["label"], "seed": row["seed"], "condition": name,
                         **metrics})
    return pd.DataFrame(rows)


@torch.no_grad()
def head_diagnostics(model, split, device: str | torch.device = "cpu",
                     feats: dict[str, torch.Tensor] | None = None) -> dict[str, np.ndarray]:
    """Per-sample quantities of a dynamic head: ``weight/<m>`` (QMF) or ``u/<m>`` and ``u`` (TMC); else none.

    ``feats`` (modality -> (N, D), from ``predict``) saves computing the encoders' features again.
    """
    head = model.head
    if not isinstance(head, (ConfidenceFusion, EvidentialFusion)):
        return {}
    if feats is None:
        feats = predict(model, split, device=device)["feats"]
    was_training = model.training
    model.eval()
    feats = {m: z.to(device) for m, z in feats.items()}
    if isinstance(head, ConfidenceFusion):
        w = head.weights(feats).cpu().numpy()
        model.train(was_training)
        return {f"weight/{m}": w[:, i] for i, m in enumerate(head.modalities)}
    result = {f"u/{m}": opinion(a)[1][:, 0].cpu().numpy() for m, a in head.alphas(feats).items()}
    result["u"] = opinion(head.fuse(feats).exp())[1][:, 0].cpu().numpy()
    model.train(was_training)
    return result


def per_sample(runs: Runs, data: MultimodalDataset, split: str = "test", device: str | torch.device = "cpu",
               labels: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per trained model (of ``labels``, default all) and sample of ``split``.

    Columns: dataset, label, seed, sample, y, ``correct`` (fused), ``correct/<m>`` (unimodal
    logits), ``level/<m>`` or ``present/<m>`` from the last corruption recorded on ``data``
    (if any), and ``head_diagnostics``.
    """
    _check(runs, data, split)
    if labels is not None:
        unknown = sorted(set(labels) - set(runs.table["label"]))
        if unknown:
            raise ValueError(f"no runs labelled {unknown}; the runs have {sorted(set(runs.table['label']))}")
    target = getattr(data, split)
    try:
        record = corrupt.per_sample(data, split)
    except ValueError:
        record = {}
    prefix = "present" if record and next(iter(record.values())).dtype == torch.bool else "level"
    frames = []
    for res, (_, row) in zip(runs.results, runs.table.iterrows()):
        if labels is not None and row["label"] not in labels:
            continue
        out = predict(res.model, target, device=device)
        y = out["y"].numpy()
        cols: dict[str, Any] = {"sample": target.index.numpy(), "y": y, "correct": out["logits"].argmax(1).numpy() == y}
        cols |= {f"correct/{m}": u.argmax(1).numpy() == y for m, u in out["uni_logits"].items()}
        cols |= {f"{prefix}/{m}": v.numpy() for m, v in record.items()}
        cols |= head_diagnostics(res.model, target, device, feats=out["feats"])
        frames.append(pd.DataFrame(cols).assign(dataset=row["dataset"], label=row["label"], seed=row["seed"]))
    first = ["dataset", "label", "seed"]
    table = pd.concat(frames, ignore_index=True)
    return table[first + [c for c in table.columns if c not in first]]


def per_sample_sweep(runs: Runs, conditions: Mapping[Any, MultimodalDataset], split: str = "test",
                     device: str | torch.device = "cpu", labels: Sequence[str] | None = None) -> pd.DataFrame:
    """``per_sample`` for every condition (name -> dataset), with a ``condition`` column."""
    if not conditions:
        raise ValueError("conditions is empty: give at least one name -> dataset, e.g. {0.0: data}")
    return pd.concat([per_sample(runs, cond, split, device, labels).assign(condition=name)
                      for name, cond in conditions.items()], ignore_index=True)


def by_level(rows: pd.DataFrame, level: str, edges: Sequence[float], value: str = "correct",
             by: Sequence[str] = ("dataset", "label", "seed")) -> pd.DataFrame:
    """Mean of ``value`` per run and bin of ``level`` (bins (e_0, e_1], (e_1, e_2], ...; the first includes e_0).

    Returns columns ``by``, ``bin`` (the interval as text), ``centre``, ``value`` (in % for
    booleans) and ``count``; a mean over seeds is then a mean over runs of equal bins.
    """
    if level not in rows.columns:
        raise KeyError(f"no column {level!r}; per-sample rows have {sorted(rows.columns)}")
    edges = list(edges)
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must be at least two increasing numbers, got {edges}")
    code = pd.cut(rows[level], edges, include_lowest=True, labels=False)
    scale = 100.0 if rows[value].dtype == bool else 1.0
    grouped = rows.assign(code=code).dropna(subset=["code"]).groupby([*by, "code"])[value]
    out = grouped.agg(["mean", "size"]).reset_index().rename(columns={"mean": value, "size": "count"})
    out[value] *= scale
    lo, hi = (np.asarray(edges)[out["code"].astype(int) + k] for k in (0, 1))
    out["bin"] = [f"{'[' if c == 0 else '('}{a:g}, {b:g}]" for c, a, b in zip(out["code"], lo, hi)]
    out["centre"] = (lo + hi) / 2
    return out.drop(columns="code")
