"""The side-by-side benchmark: every registered balancing method under one protocol.

* **Which methods.** ``compared()`` reads the method registry (``METHODS``), so a method that is
  registered appears in the benchmark without editing it. The registered entries that are not
  balancing methods are listed, with the reason, in ``EXCLUDED`` (the only place to do so).
* **How they are built.** The default constructor of each method (``method_spec``); a method whose
  constructor needs arguments uses its ``example()``; ``SETTINGS`` holds the per-method deviations
  (constructor keywords or a fusion head), each with its reason; keywords counted in epochs are
  a function of the run's epochs. ``BASELINES`` marks the classic baselines apart from the
  balancing methods.
* **How they are run.** ``run_all``: one ``mm.run`` per method, the same data, splits, encoders,
  training settings and seeds for all, each run's epoch selected on validation; then a linear
  probe of the weak modality's encoder (the other encoders are not probed, to save time).
* **What is reported.** ``versus`` (paired differences against joint training with seeds-ahead
  counts), read against a noise ``yardstick`` (joint training's own seed-to-seed std) by
  ``readings``, ``mean_ranks``, and the step-time ratios that ``benchmarks/step_time.py`` writes
  (``write_step_times`` / ``read_step_times``: one CSV format, defined here).

Reference: xu2025balancebenchmark (the protocol we depart from: test-set selection); notebook
``notebooks/benchmark.ipynb``.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from . import analysis
from .evaluate import linear_probe
from .experiment import Runs, concat, run
from .methods.diagnose_relearn import scaled_schedule
from .registry import FUSIONS, METHODS

BASELINE = "joint"
DEFAULT_FUSION = "concat"

#: registered methods left out of the benchmark, with the reason (the one list of exclusions)
EXCLUDED: dict[str, str] = {
    "unimodal": "trains one modality alone, so the fused prediction is never trained; "
                "the unimodal models take part as 'ensemble'",
    "mmpareto-naive": "the same computation as 'mmpareto' with one backward pass per loss "
                      "(same updates, slower): an implementation check, not a method",
    "mgda": "a control of the MMPareto chapter (conventional Pareto: min-norm weights, no enlargement)",
    "uniform-gamma": "a control of the MMPareto chapter (MMPareto's enlarged step without its weighting rule)",
    # fusion rules of the noisy and quality-varying chapters: they need their own head, and balance nothing
    "qmf": "a fusion rule for quality-varying data that needs its own head (fusion='qmf'), not a balancing method",
    "tmc": "an uncertainty-aware fusion rule for noisy data that needs its own head (fusion='evidential'), "
           "not a balancing method",
}

#: per-method deviations from the default constructor and the default head, each with its reason.
#: ``kwargs`` is a dict, or a function of the run's number of epochs that returns one (for methods
#: whose schedule is counted in epochs: the benchmark trains for fewer epochs than their chapters).
SETTINGS: dict[str, dict[str, Any]] = {
    "ensemble": {"fusion": "sum",
                 "why": "one bias per modality: the unimodal models share no parameter, and the fused "
                        "logits are the sum of theirs (the same linear map as concat otherwise)"},
    "g-blending": {"kwargs": lambda epochs: {"super_epoch": max(1, round(epochs / 3))},
                   "why": "its weights re-estimated after every third of training, as BalanceBenchmark's "
                          "online G-Blending (super-epoch 10 of 30 epochs)"},
    "relearning": {"kwargs": scaled_schedule,
                   "why": "its default period (20 epochs) never fires in a short run: the official 3 "
                          "re-initialisations at the official proportion of training (every 20 of 90 epochs); "
                          "none in a run too short for one (D&R is then joint training)"},
    # the valuation chapter's re-sampling methods (registered there): their warm-up of 5 joint epochs
    # out of the profile's 20, kept at the same proportion of the benchmark's epochs
    **{name: {"kwargs": lambda epochs: {"warmup": max(1, round(epochs * 5 / 20))},
              "why": "its warm-up (5 of the profile's 20 epochs) at the same proportion of the shorter run"}
       for name in ("sample-resampling", "modality-resampling")},
}
SETTING_KEYS = ("kwargs", "fusion", "why")

STEP_TIME_COLUMNS = ("method", "head", "median_ms", "ratio", "ratio_min", "ratio_max")

#: the classic baselines the benchmark adds (the issue's "one small file each"); every other compared
#: method is a balancing method. Only the ``kind`` column of ``describe`` reads this.
BASELINES: dict[str, str] = {
    "joint": "reference",
    "joint-uni": "classic baseline",
    "ensemble": "classic baseline",
    "g-blending": "classic baseline",
    "modality-dropout": "classic baseline",
}


def compared(names: Iterable[str] | None = None) -> list[str]:
    """The registered methods minus ``EXCLUDED``: joint training first, then registry order."""
    names = METHODS.names() if names is None else list(names)
    kept = [n for n in names if n not in EXCLUDED]
    return sorted(kept, key=lambda n: n != BASELINE)  # stable sort: only moves the baseline first


def excluded() -> pd.DataFrame:
    """The registered methods that the benchmark leaves out, with the reason."""
    rows = [{"method": n, "why left out": EXCLUDED[n]} for n in METHODS.names() if n in EXCLUDED]
    return pd.DataFrame(rows, columns=["method", "why left out"]).set_index("method")


def _needs_arguments(cls) -> bool:
    params = inspect.signature(cls).parameters.values()
    return any(p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


def check_settings(settings: dict[str, dict[str, Any]] | None = None) -> None:
    """Every per-method setting names known keys, a known fusion head and gives its reason."""
    for name, entry in (SETTINGS if settings is None else settings).items():
        unknown = sorted(set(entry) - set(SETTING_KEYS))
        if unknown:
            raise ValueError(f"benchmark setting for {name!r}: unknown key(s) {unknown}; use {SETTING_KEYS}")
        if not entry.get("why"):
            raise ValueError(f"benchmark setting for {name!r} needs a 'why'")
        if "fusion" in entry:
            FUSIONS.get(entry["fusion"])  # an unknown head raises, listing the known ones


def method_kwargs(name: str, num_epochs: int | None = None) -> dict[str, Any] | None:
    """``SETTINGS`` keywords for ``name`` (None without any); a callable entry gets ``num_epochs``."""
    kwargs = SETTINGS.get(name, {}).get("kwargs")
    if callable(kwargs):
        if num_epochs is None:
            raise ValueError(f"the benchmark setting of {name!r} depends on the number of epochs: "
                             f"pass num_epochs to method_spec / describe")
        kwargs = kwargs(num_epochs)
    return None if kwargs is None else dict(kwargs)


def method_spec(name: str, modalities: Sequence[str], num_epochs: int | None = None):
    """What ``mm.run`` gets for ``name``: ``SETTINGS`` keywords, else the default constructor, else ``example()``."""
    kwargs = method_kwargs(name, num_epochs)
    if kwargs is not None:
        return (name, kwargs)
    cls = METHODS.get(name)
    return cls.example(tuple(modalities)) if _needs_arguments(cls) else name


def fusion_of(name: str) -> str:
    """The fusion head a method runs with (``SETTINGS``; ``concat`` by default)."""
    return SETTINGS.get(name, {}).get("fusion", DEFAULT_FUSION)


def describe(names: Iterable[str], num_epochs: int | None = None) -> pd.DataFrame:
    """One row per method: kind, class, the first line of its docstring, and any deviation from the defaults."""
    rows = []
    for n in names:
        cls = METHODS.get(n)
        entry = SETTINGS.get(n, {})
        parts = [f"fusion={entry['fusion']}"] if "fusion" in entry else []
        kwargs = method_kwargs(n, num_epochs) or {}
        deviation = ", ".join(parts + [f"{k}={v!r}" for k, v in kwargs.items()])
        if not deviation and _needs_arguments(cls):
            deviation = f"{cls.example.__qualname__}()"
        rows.append({"method": n, "kind": BASELINES.get(n, "balancing method"), "class": cls.__name__,
                     "what it does": (cls.__doc__ or "").strip().splitlines()[0],
                     "setting": deviation or "defaults"})
    return pd.DataFrame(rows).set_index("method")


def run_all(data, names: Sequence[str], seeds: Iterable[int], probe: str | None = None, **train: Any) -> Runs:
    """Every method of ``names`` on ``data`` with the same seeds and ``train`` settings (``fit``'s keywords).

    Each run is labelled by the method's name; ``probe`` (a modality, usually ``data.weak``)
    adds its encoder's linear-probe test accuracy as ``probe/<modality>``.
    """
    check_settings()
    if probe is not None and probe not in data.modalities:
        raise ValueError(f"probe={probe!r} is not a modality of {data.name}; it has {data.modalities}")
    seeds = list(seeds)
    out, device = [], train.get("device", "cpu")
    for name in names:
        runs = run(data, method_spec(name, data.modalities, train.get("num_epochs")), seeds=seeds, label=name, fusion=fusion_of(name),
                   probes=False, keep=True, **train)
        if probe is not None:
            runs.table[f"probe/{probe}"] = [linear_probe(r.model, data, probe, device=device)["test"]
                                            for r in runs.results]
        out.append(runs)
    return concat(out)


def versus(table: pd.DataFrame, metrics: str | Iterable[str], baseline: str = BASELINE) -> pd.DataFrame:
    """Every other label minus ``baseline``, paired by seed (``analysis.paired``), in points."""
    labels = [lbl for lbl in dict.fromkeys(table["label"]) if lbl != baseline]
    return analysis.paired(table, metrics, [(lbl, baseline) for lbl in labels])


def mean_ranks(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rank of each label among all labels on every (dataset, seed), 1 = best, ties averaged.

    Returns the mean and std of the ranks over seeds, indexed by (dataset, label).
    """
    ranks = table.groupby(["dataset", "seed"])[metric].rank(ascending=False, method="average")
    g = table.assign(rank=ranks).groupby(["dataset", "label"], sort=False)["rank"]
    return pd.DataFrame({"mean rank": g.mean(), "std": g.std(ddof=1).fillna(0.0)})


def yardstick(table: pd.DataFrame, metric: str, baseline: str = BASELINE, scale: float = 100.0) -> float:
    """The noise yardstick: the seed-to-seed (sample) std of ``baseline``'s ``metric``, in points.

    A paired difference smaller than this is no larger than what changing the seed alone does to
    the baseline, so it is not read as an effect (``readings``). NaN with fewer than two seeds
    (no spread to measure: ``readings`` then reads every difference as within noise).
    """
    if baseline not in set(table["label"]):
        raise KeyError(f"yardstick: no runs labelled {baseline!r}; the table has {sorted(table['label'].unique())}")
    values = table.loc[table["label"] == baseline, metric].dropna()
    return float(values.std(ddof=1) * scale) if len(values) >= 2 else float("nan")


def readings(summary: pd.DataFrame, noise: float) -> pd.Series:
    """One word per contrast of ``paired``/``versus`` output for one metric: ahead, behind or within noise.

    ``ahead``: ahead on every seed and the mean difference exceeds ``noise``; ``behind``: behind on
    every seed and the mean is below ``-noise``; otherwise ``within noise``. Indexed by contrast.
    """
    ahead = (summary["ahead"] == summary["seeds"]) & (summary["mean"] > noise)
    behind = (summary["ahead"] == 0) & (summary["mean"] < -noise)
    words = pd.Series("within noise", index=summary.index.get_level_values("contrast"), name="reading")
    words[ahead.to_numpy()] = "ahead"
    words[behind.to_numpy()] = "behind"
    return words


def write_step_times(path: str | Path, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    """Write the step-time ratios: one row per method (``STEP_TIME_COLUMNS``) plus ``meta`` in every row.

    ``meta["unit"]`` says what ``median_ms`` times: ``"step"`` (one training step) or ``"epoch"``
    (a whole fit's amortised epoch, ``step_time.py --fit``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=list(STEP_TIME_COLUMNS))
    for key, value in meta.items():
        frame[key] = value
    frame.to_csv(path, index=False, float_format="%.4f")
    return path


def read_step_times(path: str | Path) -> pd.DataFrame:
    """The file of ``write_step_times``, indexed by method; empty (same columns) if it does not exist."""
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=list(STEP_TIME_COLUMNS)).set_index("method")
    return pd.read_csv(path).set_index("method")
