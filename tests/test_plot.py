"""Plots: the book style and the figures notebooks reuse, on small hand-made tables."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from mmlib import plot  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def table():
    rows = []
    for ds in ("d1", "d2"):
        for seed in (0, 1):
            rows.append({"dataset": ds, "label": "joint", "seed": seed, "acc": 0.6 + 0.1 * seed,
                         "acc/a": 0.5, "acc/b": 0.3, "probe/a": 0.7 + 0.05 * seed, "probe/b": 0.4})
            rows.append({"dataset": ds, "label": "a alone", "seed": seed, "acc": 0.8, "acc/a": 0.8 + 0.02 * seed,
                         "acc/b": float("nan"), "probe/a": float("nan"), "probe/b": float("nan")})
            rows.append({"dataset": ds, "label": "b alone", "seed": seed, "acc": 0.5, "acc/a": float("nan"),
                         "acc/b": 0.55, "probe/a": float("nan"), "probe/b": float("nan")})
    return pd.DataFrame(rows)


def test_use_style_sets_book_rc():
    plt.rcParams["figure.dpi"] = 50
    plot.use_style()
    assert tuple(plt.rcParams["figure.figsize"]) == plot.FIGSIZE
    assert plt.rcParams["figure.dpi"] == 90 and plt.rcParams["savefig.dpi"] == 90


def test_bars_one_panel_with_mean_heights(table):
    part = table[(table["dataset"] == "d1") & (table["label"] == "joint")][["label", "seed", "acc", "probe/a"]]
    fig = plot.bars(part, ["acc", "probe/a"], title="t")
    assert isinstance(fig, plt.Figure)
    (ax,) = fig.axes
    assert ax.get_title() == "t" and ax.get_ylabel() == "test accuracy (%)"
    heights = sorted(round(p.get_height(), 6) for p in ax.patches if p.get_height() > 0)
    assert heights == [65.0, 72.5]  # means over the two seeds, in percent


def test_bars_one_panel_per_col_value(table):
    fig = plot.bars(table[["dataset", "label", "seed", "acc"]], ["acc"], col="dataset", title="by dataset")
    assert [ax.get_title() for ax in fig.axes] == ["d1", "d2"]
    assert fig._suptitle is not None and fig._suptitle.get_text() == "by dataset"
    assert fig.axes[0].get_legend() is None  # only the last panel keeps its legend


def test_curves_draws_one_line_per_hue_on_given_axes():
    frame = pd.DataFrame({"epoch": [0, 1, 0, 1, 0, 1, 0, 1], "val/acc": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
                          "label": ["x"] * 4 + ["y"] * 4, "seed": [0, 0, 1, 1] * 2})
    fig, ax = plt.subplots()
    out = plot.curves(frame, "epoch", "val/acc", ax=ax, ylabel="acc", title="curves")
    assert out is ax
    assert ax.get_ylabel() == "acc" and ax.get_title() == "curves"
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2]
    means = sorted(tuple(round(float(v), 6) for v in ln.get_ydata()) for ln in lines)
    assert means == [(0.2, 0.3), (0.6, 0.7)]  # mean over seeds per epoch, one line per label
    new_ax = plot.curves(frame, "epoch", "val/acc")
    assert isinstance(new_ax, plt.Axes) and new_ax.get_ylabel() == "val/acc"


def test_encoder_quality_one_panel_per_dataset(table):
    settings = {"trained alone": ("{m} alone", "acc/{m}"), "joint: probe": ("joint", "probe/{m}")}
    fig = plot.encoder_quality(table, settings, title="quality")
    assert isinstance(fig, plt.Figure)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["d1", "d2"]
    assert len(fig.legends) == 1
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["trained alone", "joint: probe"]
    heights = sorted(round(p.get_height(), 6) for p in panels[0].patches if p.get_height() > 0)
    assert heights == [40.0, 55.0, 72.5, 81.0]


def test_ranking_sorts_by_the_first_metric_and_marks_untimed_methods():
    acc = {"joint": [0.80, 0.70], "up": [0.90, 0.80], "down": [0.60, 0.50]}
    t = pd.DataFrame([{"dataset": "d", "label": lbl, "seed": s, "acc": v, "probe/b": 0.5}
                      for lbl, vals in acc.items() for s, v in enumerate(vals)])
    fig = plot.ranking(t, {"acc": "accuracy", "probe/b": "b probe"}, ratios=pd.Series({"joint": 1.0, "up": 1.5}))
    assert len(fig.axes) == 3
    assert [tick.get_text() for tick in fig.axes[0].get_yticklabels()] == ["up", "joint", "down"]
    means = fig.axes[0].lines[0]  # the points (one marker per row); the error bars follow
    assert list(means.get_xdata()) == pytest.approx([10.0, 0.0, -20.0])  # mean differences in points, row order
    assert list(means.get_ydata()) == [0, 1, 2]
    assert [txt.get_text() for txt in fig.axes[2].texts] == ["not timed"]
    assert [p.get_width() for p in fig.axes[2].patches] == pytest.approx([1.5, 1.0, 0.0])


def test_ranking_draws_the_step_time_range():
    t = pd.DataFrame([{"dataset": "d", "label": lbl, "seed": s, "acc": 0.5 + 0.1 * (lbl == "up")}
                      for lbl in ("joint", "up") for s in (0, 1)])
    ratios = pd.DataFrame({"ratio": [1.0, 2.0], "ratio_min": [1.0, 1.5], "ratio_max": [1.0, 2.5]},
                          index=["joint", "up"])
    fig = plot.ranking(t, {"acc": "accuracy"}, ratios=ratios)
    ax = fig.axes[-1]
    assert [p.get_width() for p in ax.patches] == pytest.approx([2.0, 1.0])  # "up" first
    segments = ax.collections[0].get_segments()  # the error bars, in row order
    assert [tuple(seg[:, 0]) for seg in segments] == [pytest.approx((1.5, 2.5)), pytest.approx((1.0, 1.0))]
    assert ax.get_title() == "step time" and not fig.axes[0].patches  # no noise band unless asked


def test_ranking_shades_the_noise_yardstick_per_metric():
    t = pd.DataFrame([{"dataset": "d", "label": lbl, "seed": s, "acc": 0.5 + 0.1 * (lbl == "up"), "f1": 0.5}
                      for lbl in ("joint", "up") for s in (0, 1)])
    fig = plot.ranking(t, {"acc": "accuracy", "f1": "F1"}, noise={"acc": 2.5, "f1": float("nan")},
                       ratios=pd.Series({"joint": 1.0, "up": 1.0}), ratio_title="epoch time")
    x0, x1 = fig.axes[0].patches[0].get_extents().transformed(fig.axes[0].transData.inverted()).intervalx
    assert (x0, x1) == (pytest.approx(-2.5), pytest.approx(2.5))
    assert not fig.axes[1].patches  # NaN width: no band
    assert fig.axes[2].get_title() == "epoch time"


def test_contribution_shares_one_panel_per_split_and_bar_heights():
    shares = pd.DataFrame({"split": ["train"] * 4 + ["test"] * 4, "seed": [0, 0, 1, 1] * 2,
                           "modality": ["a", "b"] * 4, "phi": [1.0, 0.5] * 4,
                           "share": [100.0, 60.0, 100.0, 40.0, 90.0, 50.0, 70.0, 50.0]})
    fig = plot.contribution_shares(shares, col="split")
    assert [ax.get_title() for ax in fig.axes] == ["train", "test"]
    heights = sorted(round(p.get_height(), 6) for p in fig.axes[0].patches if p.get_height() > 0)
    assert heights == [50.0, 100.0]  # train: a at phi 1 (100, 100), b at phi 0.5 (60, 40)
