"""Figures of the localization chapter: scenes with their maps and boxes, and the dictionary's classes.

Every function returns a matplotlib figure and draws only what it is given (maps computed with
``maps.py``), in the book's style (``mmlib.plot.use_style``).

Reference: notebook ``notebooks/sounding_localization.ipynb``.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle
from torch import Tensor

SOUNDING, SILENT = "#1b9e77", "#d95f02"  # box colours (colour-blind safe pair)


def _boxes(ax, boxes: Tensor, sounding: Tensor | None = None) -> None:
    for j, (r0, c0, r1, c1) in enumerate(boxes.tolist()):
        colour = SOUNDING if sounding is None or bool(sounding[j]) else SILENT
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, lw=1.5, ec=colour))


def _clean(ax, title: str | None = None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title, fontsize="small")


def scenes_figure(solo, cocktail, n: int = 5):
    """The first ``n`` solo frames (top) and mosaics (bottom) of two splits, boxes drawn (sounding green, silent orange)."""
    fig, axes = plt.subplots(2, n, figsize=(1.45 * n, 3.2), squeeze=False)
    for i in range(n):
        ax = axes[0, i]
        ax.imshow(solo.inputs["visual"][i, 0], cmap="gray_r", vmin=0, vmax=1)
        _boxes(ax, solo.truth["boxes"][i])
        _clean(ax, f"solo: {int(solo.truth['classes'][i, 0])}")
        ax = axes[1, i]
        t = cocktail.truth
        ax.imshow(cocktail.inputs["visual"][i, 0], cmap="gray_r", vmin=0, vmax=1)
        _boxes(ax, t["boxes"][i], t["sounding"][i])
        _clean(ax, "sounding: " + ", ".join(str(int(c)) for c in t["classes"][i][t["sounding"][i]]))
    fig.tight_layout(pad=0.3)
    return fig


def solo_grid(frames: Tensor, truth: dict[str, Tensor], rows: dict[str, Tensor], index: list[int]):
    """One column per scene: the frame with its box, then one row per map in ``rows`` (name -> (N, H, W))."""
    fig, axes = plt.subplots(1 + len(rows), len(index), figsize=(1.3 * len(index), 1.35 * (1 + len(rows))),
                             squeeze=False)
    for col, i in enumerate(index):
        ax = axes[0, col]
        ax.imshow(frames[i, 0], cmap="gray_r", vmin=0, vmax=1)
        _boxes(ax, truth["boxes"][i])
        _clean(ax, f"class {int(truth['classes'][i, 0])}")
        for row, (name, maps) in enumerate(rows.items(), start=1):
            ax = axes[row, col]
            ax.imshow(maps[i], cmap="magma", vmin=0, vmax=float(maps[i].max()) or 1.0)
            _boxes(ax, truth["boxes"][i])
            _clean(ax)
            if col == 0:
                ax.set_ylabel(name, fontsize="small")
    axes[0, 0].set_ylabel("frame", fontsize="small")
    fig.tight_layout(pad=0.3)
    return fig


def cocktail_grid(frames: Tensor, truth: dict[str, Tensor], variants: dict[str, Tensor], index: list[int]):
    """One row per scene: the mosaic (sounding boxes green, silent orange), then each variant's class maps
    (name -> (N, C, H, W)) for the scene's two sounding classes and one silent class, all on [0, 1];
    the class is written in each map's corner and its object's box drawn."""
    ncols = 1 + 3 * len(variants)
    fig, axes = plt.subplots(len(index), ncols, figsize=(1.15 * ncols, 1.2 * len(index) + 0.4), squeeze=False)
    for row, i in enumerate(index):
        classes, sounding = truth["classes"][i], truth["sounding"][i]
        shown = [int(c) for c in classes[sounding]] + [int(classes[~sounding][0])]
        ax = axes[row, 0]
        ax.imshow(frames[i, 0], cmap="gray_r", vmin=0, vmax=1)
        _boxes(ax, truth["boxes"][i], sounding)
        _clean(ax, "scene" if row == 0 else None)
        col = 1
        for name, maps in variants.items():
            for k, c in enumerate(shown):
                ax = axes[row, col]
                ax.imshow(maps[i, c], cmap="magma", vmin=0, vmax=1)
                j = int((classes == c).nonzero()[0, 0])
                _boxes(ax, truth["boxes"][i][j:j + 1], sounding[j:j + 1])
                ax.text(0.04, 0.96, str(c), color="white", fontsize="small", va="top", transform=ax.transAxes)
                _clean(ax, f"{name}\n{'silent' if k == 2 else 'sounding'}" if row == 0 else None)
                col += 1
    fig.tight_layout(pad=0.3)
    return fig


def cooccurrence_map(table: np.ndarray, title: str | None = None):
    """A class x cluster table as row-normalised shares, clusters ordered by their matched class."""
    shares = table / np.maximum(table.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    im = ax.imshow(shares, cmap="viridis", vmin=0, vmax=1)
    ax.set_xlabel("cluster (ordered by matched class)")
    ax.set_ylabel("true class")
    ax.set_xticks(range(table.shape[1]))
    ax.set_yticks(range(table.shape[0]))
    ax.grid(False)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the class")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
