"""What the chapters compute from results: summaries over seeds, paired differences, diagnostics.

Every function takes the tables of a ``Runs`` (``runs.table``: one row per configuration and
seed; ``runs.logs``: one row per logged value) and returns a pandas object. Accuracies are
fractions in the tables and points (%) in what these functions return, unless ``scale`` says
otherwise. ``mean_std``, ``summarize``, ``imbalance_gaps`` and ``format_paired`` return display
strings (``"mean ± std"``); the others return numbers, which notebooks glue into prose.

Reference: notebooks ``notebooks/imbalance.ipynb``, ``notebooks/ogm_opm.ipynb`` and
``notebooks/mmpareto.ipynb``.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import pandas as pd

Contrast = tuple[str, str]


# --- summaries over seeds -------------------------------------------------------------------

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


# --- the imbalance gap ----------------------------------------------------------------------

def gaps_by_seed(table: pd.DataFrame, joint_label: str = "joint",
                 alone_label: str = "{modality} alone") -> pd.DataFrame:
    """Per dataset, modality and seed: the encoder trained alone against the same encoder after joint training.

    Columns (in points): ``alone`` (``acc/<m>`` of the unimodal run), ``probe`` and ``slice``
    (``probe/<m>`` and ``acc/<m>`` of the ``joint_label`` run), ``gap = alone - probe``. Only
    seeds present in both runs appear.
    """
    frames = []
    for dataset, part in table.groupby("dataset", sort=False):
        joint = part[part["label"] == joint_label].set_index("seed")
        for m in probed_modalities(part):
            alone = part[part["label"] == alone_label.format(modality=m)].set_index("seed")
            if alone.empty or joint.empty:
                continue
            rows = pd.DataFrame({"alone": alone[f"acc/{m}"], "probe": joint[f"probe/{m}"],
                                 "slice": joint[f"acc/{m}"]}).dropna(subset=["alone", "probe"]) * 100
            rows = rows.assign(gap=rows["alone"] - rows["probe"]).rename_axis("seed").reset_index()
            frames.append(rows.assign(dataset=dataset, modality=m))
    columns = ["dataset", "modality", "seed", "alone", "probe", "slice", "gap"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def imbalance_gaps(table: pd.DataFrame, joint_label: str = "joint",
                   alone_label: str = "{modality} alone") -> pd.DataFrame:
    """Per dataset and modality: accuracy trained alone vs linear probe after joint training.

    The gap is paired by seed (``gaps_by_seed``): (accuracy of the encoder trained alone) -
    (probe accuracy of the same modality's encoder after joint training), in points, mean ± std
    over seeds. Rows need ``acc/<m>`` (unimodal runs) and ``probe/<m>`` (joint runs).
    """
    by_seed = gaps_by_seed(table, joint_label, alone_label)
    rows = [{"dataset": dataset, "modality": m, "trained alone": mean_std(g["alone"]),
             "joint: linear probe": mean_std(g["probe"]), "joint: head slice": mean_std(g["slice"]),
             "gap (alone - probe)": mean_std(g["gap"]), "seeds": len(g)}
            for (dataset, m), g in by_seed.groupby(["dataset", "modality"], sort=False)]
    return pd.DataFrame(rows)


# --- paired differences ---------------------------------------------------------------------

def contrast_name(contrast: Contrast) -> str:
    """``"a − b"``: the column name of a contrast (first label minus second)."""
    return f"{contrast[0]} − {contrast[1]}"


def paired_differences(table: pd.DataFrame, metric: str, contrasts: Sequence[Contrast],
                       by: str = "dataset", scale: float = 100.0) -> pd.DataFrame:
    """Per ``by`` value and seed, ``metric`` of one label minus another on the same seed.

    Returns one column per contrast (``contrast_name``), indexed by (``by``, seed), in points
    by default. A seed missing from either label gives NaN.
    """
    labels = list(dict.fromkeys(lbl for c in contrasts for lbl in c))
    missing = [lbl for lbl in labels if lbl not in set(table["label"])]
    if missing:
        raise KeyError(f"paired_differences: no runs labelled {missing}; the table has "
                       f"{sorted(table['label'].unique())}")
    wide = table.pivot_table(index=[by, "seed"], columns="label", values=metric, sort=False) * scale
    wide = wide.reindex(columns=list(dict.fromkeys([*wide.columns, *labels])))  # labels without this metric: NaN
    return pd.DataFrame({contrast_name(c): wide[c[0]] - wide[c[1]] for c in contrasts}, index=wide.index)


def seeds_ahead(diff: pd.Series) -> int:
    """Number of seeds on which the first configuration is ahead (difference > 0; a tie is not)."""
    return int((diff > 0).sum())


def direction(diff: pd.Series, higher: str = "higher", lower: str = "lower", tie: str = "not different") -> str:
    """A word for paired differences over seeds: ``higher`` if their mean exceeds their sample std
    (and is positive), ``lower`` if it is below minus the std, else ``tie`` (within the seed spread).

    For prose that must follow the measurement: glue the word, never type it.
    """
    diff = diff.dropna()
    mean, std = diff.mean(), (diff.std(ddof=1) if len(diff) > 1 else 0.0)
    if mean > 0 and mean > std:
        return higher
    if mean < 0 and -mean > std:
        return lower
    return tie


def paired(table: pd.DataFrame, metrics: str | Iterable[str], contrasts: Sequence[Contrast],
           by: str = "dataset", scale: float = 100.0) -> pd.DataFrame:
    """Paired differences summarised over seeds, one row per (``by`` value, metric, contrast).

    Columns: ``mean`` and ``std`` (sample std; 0 for one seed) of the per-seed differences,
    ``ahead`` (``seeds_ahead``) and ``seeds`` (seeds with both runs). A contrast without any
    paired seed in a group (a configuration not run there) has no row.
    """
    rows = []
    for metric in [metrics] if isinstance(metrics, str) else list(metrics):
        diffs = paired_differences(table, metric, contrasts, by=by, scale=scale)
        for key, part in diffs.groupby(level=0, sort=False):
            for name in diffs.columns:
                d = part[name].dropna()
                if d.empty:
                    continue
                rows.append({by: key, "metric": metric, "contrast": name, "mean": d.mean(),
                             "std": d.std(ddof=1) if len(d) > 1 else 0.0, "ahead": seeds_ahead(d), "seeds": len(d)})
    return pd.DataFrame(rows, columns=[by, "metric", "contrast", "mean", "std", "ahead", "seeds"]) \
        .set_index([by, "metric", "contrast"])


def format_paired(summary: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """``paired``'s output as ``"mean ± std (ahead/seeds)"``: one row per contrast, one column per group and metric.

    A contrast without paired seeds in a group (no row in ``paired``) shows as ``"–"``.
    """
    text = [f"{m:.{digits}f} ± {s:.{digits}f} ({a}/{n})" for m, s, a, n in
            zip(summary["mean"], summary["std"], summary["ahead"], summary["seeds"])]
    long = pd.Series(text, index=summary.index)
    contrasts = list(dict.fromkeys(summary.index.get_level_values("contrast")))
    return long.unstack([summary.index.names[0], "metric"], sort=False).reindex(contrasts).fillna("–")


# --- logged diagnostics ---------------------------------------------------------------------

def per_epoch(logs: pd.DataFrame, prefix: str = "", order: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean of each logged diagnostic per run and epoch.

    Args:
        logs: ``Runs.logs`` (columns epoch, step, name, value, seed, label).
        prefix: keep only names that start with it (``"rho/"``).
        order: if given, ``label`` becomes a categorical with these categories (legend order).

    Returns columns label, seed, epoch, name, value.
    """
    logs = logs[logs["name"].str.startswith(prefix)]
    out = logs.groupby(["label", "seed", "epoch", "name"], as_index=False)["value"].mean()
    return out.assign(label=pd.Categorical(out["label"], categories=list(order))) if order is not None else out


def late_mean(logs: pd.DataFrame, name: str, from_epoch: int = 0) -> pd.Series:
    """Per run (label, seed): the mean of one logged value over epochs >= ``from_epoch``.

    E.g. the re-sampling methods' ``epoch_size`` after their warm-up.
    """
    part = logs[(logs["name"] == name) & (logs["epoch"] >= from_epoch)]
    return part.groupby(["label", "seed"], sort=False)["value"].mean()


def gradient_stats(logs: pd.DataFrame, dataset_of: dict[str, str] | None = None) -> pd.DataFrame:
    """Per-step gradient statistics of MMPareto-type methods, one row per run, step and encoder.

    ``logs`` holds ``<stat>/<modality>`` names (``cos``, ``conflict``, ``c``, ``norm_mm``,
    ``norm_uni``; see ``mmlib/methods/mmpareto.py``). Returns columns label, seed, epoch, step,
    modality, one per stat, ``ratio = norm_mm / norm_uni``, and ``dataset`` (from
    ``dataset_of``: modality -> dataset name) when given.
    """
    logs = logs[logs["name"].str.contains("/", regex=False)]
    stat_mod = logs["name"].str.split("/", n=1, expand=True)
    logs = logs.assign(stat=stat_mod[0], modality=stat_mod[1])
    wide = logs.pivot_table(index=["label", "seed", "epoch", "step", "modality"], columns="stat",
                            values="value").reset_index()
    wide.columns.name = None
    if {"norm_mm", "norm_uni"} <= set(wide.columns):
        wide["ratio"] = wide["norm_mm"] / wide["norm_uni"]
    if dataset_of is not None:
        wide.insert(0, "dataset", wide["modality"].map(dataset_of))
    return wide


def conflict_summary(steps: pd.DataFrame, by: Sequence[str] = ("dataset", "modality", "seed")) -> pd.DataFrame:
    """Per run and encoder: how often and how strongly g_m and g_u conflict, and their norms.

    ``steps`` comes from ``gradient_stats``. Columns: the share of steps in conflict (%) over
    all of training, in the first epoch and in the second half (epochs >= last epoch / 2), the
    mean cosine of the conflicting steps, the mean per-step ``norm_mm / norm_uni`` and the ratio
    of the two norms' standard deviations over steps.
    """
    def one(s: pd.DataFrame) -> pd.Series:
        late = s["epoch"] >= s["epoch"].max() / 2
        return pd.Series({"conflict (% steps)": 100 * s["conflict"].mean(),
                          "epoch 1 (%)": 100 * s.loc[s["epoch"] == 0, "conflict"].mean(),
                          "2nd half (%)": 100 * s.loc[late, "conflict"].mean(),
                          "cos | conflict": s.loc[s["conflict"] == 1, "cos"].mean(),
                          "‖g_m‖/‖g_u‖": s["ratio"].mean(),
                          "std ratio": s["norm_mm"].std() / s["norm_uni"].std()})

    return steps.groupby(list(by)).apply(one)


def weight_summary(steps: pd.DataFrame, by: Sequence[str] = ("dataset", "modality", "label")) -> pd.DataFrame:
    """How often a rule leaves the uniform weights: share of steps in conflict (%), mean c, mean c in conflict.

    ``steps`` comes from ``gradient_stats`` (needs the ``c`` statistic); means over steps and seeds.
    """
    def one(s: pd.DataFrame) -> pd.Series:
        return pd.Series({"conflict (% steps)": 100 * s["conflict"].mean(), "mean c": s["c"].mean(),
                          "mean c | conflict": s.loc[s["conflict"] == 1, "c"].mean()})

    return steps.groupby(list(by)).apply(one)


# --- InfoReg: Fisher traces, windows, regulation --------------------------------------------

def _split_name(logs: pd.DataFrame, prefix: str) -> pd.DataFrame:
    part = logs[logs["name"].str.startswith(prefix)]
    return part.assign(modality=part["name"].str.slice(len(prefix)))


def trace_peaks(logs: pd.DataFrame) -> pd.DataFrame:
    """Per run and encoder, the shape of its Fisher-trace curve (``trace/<m>``, one value per epoch).

    Columns label, seed, modality, ``peak_epoch`` (0-based; the first of equal maxima), ``peak``,
    ``first`` and ``last`` (the traces of the first and last epochs) and ``rise = peak / first``.
    Reference: ``mmlib/methods/inforeg.py``; notebook ``notebooks/inforeg.ipynb``.
    """
    rows = []
    for (label, seed, m), g in _split_name(logs, "trace/").groupby(["label", "seed", "modality"], sort=False):
        g = g.sort_values("epoch")
        top = g["value"].to_numpy().argmax()
        first = g["value"].iloc[0]
        rows.append({"label": label, "seed": seed, "modality": m, "peak_epoch": int(g["epoch"].iloc[top]),
                     "peak": g["value"].iloc[top], "first": first, "last": g["value"].iloc[-1],
                     "rise": g["value"].iloc[top] / first if first > 0 else float("nan")})
    return pd.DataFrame(rows, columns=["label", "seed", "modality", "peak_epoch", "peak", "first", "last", "rise"])


def _window_row(epochs: Sequence[int], is_open: Sequence[bool]) -> dict:
    opened = [int(e) for e, o in zip(epochs, is_open) if o]
    closed = [int(e) for e, o in zip(epochs, is_open) if not o]
    first = closed[0] if closed else None
    prime = sum(first is None or e < first for e in opened)
    return {"open": opened, "first_closed": float("nan") if first is None else first, "prime": prime,
            "reopened": len(opened) - prime}


def window_epochs(logs: pd.DataFrame) -> pd.DataFrame:
    """Per run and encoder, the epochs whose prime-window test was open (``window/<m>``: 1, 0 or NaN untested).

    Columns label, seed, modality, ``open`` (the list of open epochs), ``first_closed`` (the first
    tested epoch found closed; NaN if none), ``prime`` (open epochs before it: the early window)
    and ``reopened`` (open epochs after it).
    """
    rows = []
    for (label, seed, m), g in _split_name(logs, "window/").groupby(["label", "seed", "modality"], sort=False):
        g = g.dropna(subset=["value"]).sort_values("epoch")
        rows.append({"label": label, "seed": seed, "modality": m,
                     **_window_row(g["epoch"].tolist(), (g["value"] > 0).tolist())})
    return pd.DataFrame(rows, columns=["label", "seed", "modality", "open", "first_closed", "prime", "reopened"])


def regulation_summary(logs: pd.DataFrame) -> pd.DataFrame:
    """Per run and encoder: the share of steps regulated (``alpha/<m>`` > 0, in %) and the mean alpha when regulated."""
    part = _split_name(logs, "alpha/")
    on = part["value"] > 0
    g = part.assign(on=on, alpha_on=part["value"].where(on)).groupby(["label", "seed", "modality"], sort=False)
    out = pd.DataFrame({"regulated (% steps)": 100 * g["on"].mean(), "alpha | regulated": g["alpha_on"].mean()})
    return out.reset_index()


def posthoc_windows(logs: pd.DataFrame, thresholds: Iterable[float], rule: str = "paper") -> pd.DataFrame:
    """The prime windows that InfoReg's test would give on logged traces (``trace/<m>``), for each threshold K.

    ``rule="paper"``: Eq. 11 at each trained epoch t >= 2, open when (T_{t-1} - T_{t-2}) / T_{t-1} > K
    (``inforeg.relative_change``). ``rule="code"``: the released code's moving-average statistic
    at every epoch from 0 (``inforeg.moving_average_change``), here on each modality's own trace.
    On the traces of a run without regulation (``FisherTrace``) this is what InfoReg would decide
    up to its first regulated epoch; after that its own traces differ. Returns ``window_epochs``'s
    columns plus ``threshold`` (a run too short for any test has no open epoch and
    ``first_closed`` NaN).
    """
    from .methods.inforeg import moving_average_change, relative_change

    if rule not in ("paper", "code"):
        raise ValueError(f"unknown rule {rule!r}; choose 'paper' or 'code'")
    rows = []
    for (label, seed, m), g in _split_name(logs, "trace/").groupby(["label", "seed", "modality"], sort=False):
        traces = g.sort_values("epoch")["value"].tolist()
        if rule == "paper":
            epochs = list(range(2, len(traces)))
            change = [relative_change(traces, t) for t in epochs]
        else:
            epochs = list(range(len(traces)))
            change = [moving_average_change(traces, t) for t in epochs]
        rows += [{"label": label, "seed": seed, "modality": m, **_window_row(epochs, [c > k for c in change]),
                  "threshold": k} for k in thresholds]
    return pd.DataFrame(rows, columns=["label", "seed", "modality", "open", "first_closed", "prime", "reopened",
                                       "threshold"])
