"""Multi-seed runs and their summaries: one library call per configuration.

``run(data, methods, seeds=..., **fit_kwargs)`` trains one fresh model per seed (each seed
gets fresh copies of the methods), selects on validation, probes every encoder, and returns
a ``Runs`` with one table row per seed plus the method logs and training curves.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import pandas as pd

from . import checks
from .evaluate import probe_all
from .methods.spec import MethodSpec, make_methods
from .models import build_model
from .repro import seed_everything
from .train import FitResult, fit

@dataclass
class Runs:
    """Results of one configuration over seeds."""

    table: pd.DataFrame
    results: list[FitResult] = field(default_factory=list)

    @property
    def logs(self) -> pd.DataFrame:
        """Method diagnostics of all seeds: epoch, step, name, value, seed, label."""
        frames = [r.log.assign(seed=s, label=lbl) for r, s, lbl in
                  zip(self.results, self.table["seed"], self.table["label"])]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def curves(self) -> pd.DataFrame:
        frames = [r.curves.assign(seed=s, label=lbl) for r, s, lbl in
                  zip(self.results, self.table["seed"], self.table["label"])]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def __add__(self, other: "Runs") -> "Runs":
        return Runs(pd.concat([self.table, other.table], ignore_index=True), self.results + other.results)


def run(data, methods: MethodSpec | Iterable[MethodSpec] | None = None, *, seeds: Iterable[int] = (0,),
        label: str | None = None, fusion: str = "concat", model_kwargs: dict[str, Any] | None = None,
        probes: bool = True, keep: bool = True, **fit_kwargs: Any) -> Runs:
    """Train and evaluate one configuration for every seed.

    Args:
        label: the name in tables and legends (default: the methods' registry names).
        model_kwargs: passed to ``build_model`` (e.g. ``{"separate_uni": True}``).
        probes: also fit a linear probe on every encoder (``probe/<modality>`` columns).
        keep: keep the ``FitResult`` objects (models, logs) for plotting.
        fit_kwargs: passed to ``fit`` (usually ``**profile.train(dataset)``).
    """
    seeds = checks.check_run(seeds, fit_kwargs)
    rows, results = [], []
    for seed in seeds:
        seed_everything(seed)
        ms = make_methods(methods)
        name = label or ("+".join(m.registry_name for m in ms) or "joint")
        model = build_model(data, fusion=fusion, **(model_kwargs or {}))
        res = fit(model, data, ms, seed=seed, **fit_kwargs)
        row = {"dataset": data.name, "label": name, "fusion": fusion, "seed": seed, **res.test,
               "best_epoch": res.best_epoch, "seconds": res.seconds}
        if probes:
            row.update(probe_all(res.model, data, device=fit_kwargs.get("device", "cpu")))
        rows.append(row)
        if keep:
            results.append(res)
    return Runs(pd.DataFrame(rows), results)


def mean_std(values: pd.Series, digits: int = 1) -> str:
    """``"mean ± std"`` with the sample std (0 for a single value)."""
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.{digits}f} ± {std:.{digits}f}"


def summarize(table: pd.DataFrame, metrics: Iterable[str], by: Iterable[str] = ("dataset", "label"),
              scale: float = 100.0, digits: int = 1) -> pd.DataFrame:
    """``mean ± std`` over seeds of each metric (in percent by default), one row per group."""
    by, metrics = list(by), [m for m in metrics if m in table.columns]
    if table.empty:
        return pd.DataFrame(columns=by + metrics)
    g = table.groupby(by, sort=False)[metrics]
    mean, std = g.mean() * scale, g.std(ddof=1).fillna(0.0) * scale
    out = mean.copy().astype(object)
    for col in metrics:
        out[col] = ["–" if pd.isna(m) else f"{m:.{digits}f} ± {s:.{digits}f}" for m, s in zip(mean[col], std[col])]
    out["seeds"] = g.size()
    return out


def probed_modalities(table: pd.DataFrame) -> list[str]:
    """Modalities with at least one ``probe/<m>`` value in ``table``, in column order."""
    return [c[len("probe/"):] for c in table.columns if c.startswith("probe/") and table[c].notna().any()]


def concat(runs: Iterable[Runs]) -> Runs:
    """Several configurations' runs as one ``Runs``."""
    out = Runs(pd.DataFrame())
    for r in runs:
        out = out + r
    return out


def imbalance_gaps(table: pd.DataFrame, joint_label: str = "joint",
                   alone_label: str = "{modality} alone") -> pd.DataFrame:
    """Per dataset and modality: accuracy trained alone vs linear probe after joint training.

    The gap is paired by seed: (accuracy of the encoder trained alone) - (probe accuracy of
    the same modality's encoder after joint training), in points, mean ± std over seeds.
    Rows need ``acc/<m>`` (unimodal runs) and ``probe/<m>`` (joint runs).
    """
    rows = []
    for dataset, part in table.groupby("dataset", sort=False):
        modalities = probed_modalities(part)
        joint = part[part["label"] == joint_label].set_index("seed")
        for m in modalities:
            alone = part[part["label"] == alone_label.format(modality=m)].set_index("seed")
            if alone.empty or joint.empty:
                continue
            a, p, h = alone[f"acc/{m}"] * 100, joint[f"probe/{m}"] * 100, joint[f"acc/{m}"] * 100
            gap = (a - p).dropna()
            rows.append({"dataset": dataset, "modality": m, "trained alone": mean_std(a),
                         "joint: linear probe": mean_std(p), "joint: head slice": mean_std(h),
                         "gap (alone - probe)": mean_std(gap), "seeds": len(gap)})
    return pd.DataFrame(rows)
