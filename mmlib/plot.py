"""One figure style for the whole book, and the plots notebooks reuse (PNG output)."""
from __future__ import annotations

from typing import Iterable

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from .analysis import paired_differences, probed_modalities

FIGSIZE = (7.0, 3.2)
PALETTE = "colorblind"


def _finish_panels(fig, axes, suptitle: str | None):
    """One legend (the last panel's) for a row of panels, the optional figure title, tight layout."""
    for ax in axes[0][:-1]:
        if ax.get_legend():
            ax.get_legend().remove()
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def use_style() -> None:
    """Seaborn theme, fixed size and resolution, PNG inline output (nbval-friendly).

    Inside a Jupyter kernel the inline backend is selected even if ``MPLBACKEND`` says
    otherwise, so figures are always stored as PNG outputs.
    """
    try:
        from IPython import get_ipython

        shell = get_ipython()
        # only when needed: enabling inline twice would show every figure twice
        if shell is not None and hasattr(shell, "kernel") and "inline" not in plt.get_backend():
            shell.run_line_magic("matplotlib", "inline")
    except ImportError:
        pass
    sns.set_theme(style="whitegrid", palette=PALETTE, context="notebook")
    plt.rcParams.update({"figure.figsize": FIGSIZE, "figure.dpi": 90, "savefig.dpi": 90,
                         "axes.titlesize": "medium", "legend.fontsize": "small"})
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except ImportError:  # outside IPython
        pass


def bars(table: pd.DataFrame, metrics: Iterable[str], x: str = "label", hue: str | None = None,
         col: str | None = None, scale: float = 100.0, ylabel: str = "test accuracy (%)", title: str | None = None):
    """Mean ± std bars over seeds: one panel per metric (or per ``col`` value)."""
    metrics = list(metrics)
    long = table.melt(id_vars=[c for c in table.columns if c not in metrics], value_vars=metrics,
                      var_name="metric", value_name="value")
    long["value"] = long["value"] * scale
    panels = list(dict.fromkeys(long[col])) if col else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(FIGSIZE[0], FIGSIZE[1]), squeeze=False, sharey=False)
    for ax, panel in zip(axes[0], panels):
        part = long if panel is None else long[long[col] == panel]
        sns.barplot(data=part, x=x, y="value", hue=hue or "metric", errorbar="sd", ax=ax, capsize=0.1)
        ax.set_title(str(panel) if panel is not None else (title or ""))
        ax.set_xlabel("")
        ax.set_ylabel(ylabel)
        ax.tick_params(axis="x", rotation=20)
    return _finish_panels(fig, axes, title if col else None)


def curves(frame: pd.DataFrame, x: str, y: str, hue: str = "label", ax=None, ylabel: str | None = None,
           title: str | None = None, **kwargs):
    """Mean ± std (shaded) of ``y`` over seeds against ``x``, one line per ``hue``.

    ``kwargs`` go to ``seaborn.lineplot`` (e.g. ``palette=label_colors(...)`` to keep one colour
    per label across panels).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=FIGSIZE)
    sns.lineplot(data=frame, x=x, y=y, hue=hue, errorbar="sd", ax=ax, **kwargs)
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    return ax


def label_colors(labels: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """One colour of the book's palette per label, in order, for panels that show different subsets."""
    labels = list(labels)
    return dict(zip(labels, sns.color_palette(PALETTE, n_colors=max(len(labels), 1))))


def encoder_quality(table: pd.DataFrame, settings: dict[str, tuple[str, str]], title: str | None = None):
    """Bars of each modality's accuracy under several settings, one panel per dataset.

    Args:
        settings: legend name -> (run label, metric template), e.g.
            ``{"trained alone": ("{m} alone", "acc/{m}"), "joint: probe": ("joint", "probe/{m}")}``.
    """
    rows = []
    for dataset, part in table.groupby("dataset", sort=False):
        modalities = probed_modalities(part)
        for m in modalities:
            for name, (label, metric) in settings.items():
                sel = part[part["label"] == label.format(m=m)]
                col = metric.format(m=m)
                for v in sel[col].dropna() if col in sel else []:
                    rows.append({"dataset": dataset, "modality": m, "setting": name, "accuracy": 100 * v})
    if not rows:
        raise ValueError(f"encoder_quality: no rows of {table['label'].unique().tolist()} match the settings "
                         f"{settings}; check the run labels")
    long = pd.DataFrame(rows)
    panels = list(dict.fromkeys(long["dataset"]))
    fig, axes = plt.subplots(1, len(panels), figsize=FIGSIZE, squeeze=False)
    for ax, panel in zip(axes[0], panels):
        sns.barplot(data=long[long["dataset"] == panel], x="modality", y="accuracy", hue="setting",
                    errorbar="sd", capsize=0.1, ax=ax)
        ax.set_title(panel)
        ax.set_xlabel("")
        ax.set_ylabel("test accuracy (%)")
        handles, labels = ax.get_legend_handles_labels()
        ax.get_legend().remove()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def ranking(table: pd.DataFrame, metrics: dict[str, str], baseline: str = "joint",
            ratios: pd.Series | pd.DataFrame | None = None, title: str | None = None,
            noise: dict[str, float] | None = None, ratio_title: str = "step time"):
    """Every label minus ``baseline``, paired by seed (mean ± std, points), one panel per metric.

    Rows are sorted by the mean difference of the first metric (best on top); the baseline is
    the zero line's own row. ``ratios`` (label -> step-time ratio vs the baseline, or a frame
    with ``ratio``, ``ratio_min`` and ``ratio_max`` columns, drawn as a range) adds a last
    panel (titled ``ratio_title``); a label without a ratio shows "not timed".

    Args:
        metrics: column -> panel title, e.g. ``{"acc": "accuracy", "probe/image": "image probe"}``.
        noise: column -> a half-width in points, shaded around zero in that metric's panel (the
            noise yardstick, ``mm.benchmark.yardstick``); a NaN width draws nothing.
    """
    labels = list(dict.fromkeys(table["label"]))
    frames = []
    for col, name in metrics.items():
        diffs = paired_differences(table, col, [(lbl, baseline) for lbl in labels])
        long = diffs.reset_index().melt(id_vars=list(diffs.index.names), var_name="contrast", value_name="value")
        frames.append(long.assign(label=long["contrast"].str.split(" − ").str[0], metric=name))
    long = pd.concat(frames, ignore_index=True)
    first = long[long["metric"] == next(iter(metrics.values()))]
    order = list(first.groupby("label")["value"].mean().sort_values(ascending=False).index)
    panels = len(metrics) + (ratios is not None)
    fig, axes = plt.subplots(1, panels, figsize=(FIGSIZE[0] * (1 + 0.15 * max(panels - 2, 0)), 0.32 * len(order) + 1.4),
                             sharey=True, squeeze=False)
    axes = axes[0]
    for ax, name in zip(axes, metrics.values()):
        sns.pointplot(data=long[long["metric"] == name], x="value", y="label", order=order, errorbar="sd",
                      linestyle="none", capsize=0.2, ax=ax, color=sns.color_palette(PALETTE)[0])
        ax.axvline(0.0, color="grey", lw=0.8, ls="--")
        width = (noise or {}).get(next(c for c, n in metrics.items() if n == name), float("nan"))
        if width == width:
            ax.axvspan(-width, width, color="grey", alpha=0.15, lw=0)
        ax.set_title(name)
        ax.set_xlabel(f"− {baseline} (points)")
        ax.set_ylabel("")
    if ratios is not None:
        ax = axes[-1]
        frame = ratios.to_frame("ratio") if isinstance(ratios, pd.Series) else ratios
        frame = frame.reindex(order)
        values = frame["ratio"].astype(float).tolist()
        xerr = None
        if {"ratio_min", "ratio_max"} <= set(frame.columns):
            xerr = [(frame["ratio"] - frame["ratio_min"]).fillna(0.0).tolist(),
                    (frame["ratio_max"] - frame["ratio"]).fillna(0.0).tolist()]
        ax.barh(range(len(order)), [0.0 if v != v else v for v in values], xerr=xerr, capsize=3,
                color=sns.color_palette(PALETTE)[1])
        for i, v in enumerate(values):
            if v != v:  # NaN: not in the step-time file
                ax.text(0.05, i, "not timed", va="center", fontsize="small")
        ax.axvline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_title(ratio_title)
        ax.set_xlabel(f"× {baseline}")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def contribution_shares(shares: pd.DataFrame, col: str | None = None, title: str | None = None):
    """Bars of the share of samples (%) at each value of phi, one colour per modality, mean ± std over seeds.

    ``shares`` comes from ``mmlib.contribution.value_shares`` (columns ``modality``, ``phi``,
    ``share``); ``col`` names a column that splits the panels (e.g. the split).
    """
    panels = list(dict.fromkeys(shares[col])) if col else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=FIGSIZE, squeeze=False, sharey=True)
    for ax, panel in zip(axes[0], panels):
        part = shares if panel is None else shares[shares[col] == panel]
        sns.barplot(data=part.assign(phi=part["phi"].map(lambda v: f"{v:g}")), x="phi", y="share",
                    hue="modality", errorbar="sd", capsize=0.1, ax=ax)
        ax.set_title(str(panel) if panel is not None else (title or ""))
        ax.set_xlabel("φ (Shapley contribution)")
        ax.set_ylabel("samples (%)")
    return _finish_panels(fig, axes, title if col else None)
