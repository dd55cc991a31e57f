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
        """Per-epoch training loss and validation metrics of all seeds, with dataset, seed and label.

        The dataset is part of each row: one label (``"joint"``) may be run on several datasets.
        """
        frames = [r.curves.assign(dataset=d, seed=s, label=lbl) for r, d, s, lbl in
                  zip(self.results, self.table["dataset"], self.table["seed"], self.table["label"])]
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


def concat(runs: Iterable[Runs]) -> Runs:
    """Several configurations' runs as one ``Runs``."""
    out = Runs(pd.DataFrame())
    for r in runs:
        out = out + r
    return out
