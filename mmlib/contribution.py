"""Sample-level modality valuation: each modality's Shapley contribution to each sample's prediction.

**Value function.** For a sample (x, y) and a coalition S (a subset of the M modalities), the
prediction with only S present is the fusion head applied to the features with every absent
modality's feature replaced by a zero vector (the paper's convention), and, with #S the number
of modalities in S::

    v(S) = #S * 1[argmax head(z_S) = y],    v(empty set) = 0,

so the full coalition is worth M when the fused prediction is right. The Shapley value of m is::

    phi_m = sum over S not containing m of  #S! (M - #S - 1)! / M! * [v(S + {m}) - v(S)],

and efficiency gives sum_m phi_m = v(all modalities). With two modalities a and v, and 1_a, 1_v, 1_av the
correctness of the audio-only, visual-only and full predictions,
phi_a = (1_a + 2 * 1_av - 1_v) / 2 (the table in the chapter); a modality "contributes its fair
share" at phi = 1 and nothing or harm at phi <= 0.

**Absent modality = zero feature.** For the concatenation head, head(z_S) = sum_{m in S} W_m z^m + b:
the modality's own logit with the **whole** bias. That is not ``uni_logits`` (which carry b / M so
that they sum to the fused logits); the argmax may differ, so valuation always calls the head.
For non-linear heads (FiLM, gated) a zero feature is a convention, not "absent"; phi then
describes that convention.

**Cost.** One encoder pass gives the features; the 2^M - 1 coalitions are head evaluations of
those features, stacked into one call (three for two modalities).

Reference: wei2024valuation (the value function and the two-modality table, generalised here to
M modalities with the standard Shapley weights); notebook ``notebooks/modality_valuation.ipynb``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Iterable

import pandas as pd
import torch
from torch import Tensor

from .data.base import BatchLoader, Split


def coalitions(modalities: Iterable[str]) -> list[tuple[str, ...]]:
    """Every coalition as a tuple of modality names, indexed by bit mask (bit i = ``modalities[i]``).

    Entry 0 is the empty coalition, entry 2^M - 1 the full one.
    """
    modalities = tuple(modalities)
    return [tuple(m for i, m in enumerate(modalities) if mask >> i & 1) for mask in range(2 ** len(modalities))]


def coalition_name(coalition: tuple[str, ...]) -> str:
    """``"audio+visual"``; ``"none"`` for the empty coalition."""
    return "+".join(coalition) or "none"


@torch.no_grad()
def coalition_correct(head, feats: dict[str, Tensor], y: Tensor, modalities: tuple[str, ...]) -> Tensor:
    """Whether the prediction of each coalition is right: (B, 2^M) bool, column 0 (empty) False.

    Args:
        head: a fusion head (``head.fuse(feats) -> logits``).
        feats: modality -> (B, D_m) features; an absent modality's feature becomes zeros.
    """
    n = len(y)
    masks = range(1, 2 ** len(modalities))
    stacked = {m: torch.cat([feats[m] if mask >> i & 1 else torch.zeros_like(feats[m]) for mask in masks])
               for i, m in enumerate(modalities)}  # ((2^M - 1) B, D_m): one head call for all coalitions
    pred = head.fuse(stacked).argmax(1).view(len(masks), n)
    correct = torch.zeros(n, 2 ** len(modalities), dtype=torch.bool, device=y.device)
    correct[:, 1:] = (pred == y.view(1, n)).T
    return correct


@functools.lru_cache(maxsize=8)
def _shapley_matrix(num_modalities: int) -> Tensor:
    """A (2^M, M) float64 matrix of **integer** weights #S! (M - #S - 1)!, so that phi = v @ A / M!.

    Integer weights keep the sums exact for integer values v(S); dividing once by M! then rounds
    correctly, so phi = 1 is exactly 1 (the copy rule's threshold) for any M, not 0.999....
    """
    m_total = num_modalities
    a = torch.zeros(2 ** m_total, m_total, dtype=torch.float64)
    for mask in range(2 ** m_total):
        size = bin(mask).count("1")
        for m in range(m_total):
            if mask >> m & 1:
                continue
            w = math.factorial(size) * math.factorial(m_total - size - 1)
            a[mask | 1 << m, m] += w
            a[mask, m] -= w
    return a


def coalition_values(correct: Tensor) -> Tensor:
    """v(S) = #S * 1[correct] (#S: modalities in S): (B, 2^M) float64 from ``coalition_correct``'s (B, 2^M) bool."""
    sizes = torch.tensor([bin(mask).count("1") for mask in range(correct.shape[1])], dtype=torch.float64)
    return correct.to(torch.float64) * sizes.to(correct.device)


def shapley(values: Tensor) -> Tensor:
    """Shapley values (B, M), float64, from coalition values (B, 2^M) indexed by bit mask."""
    num = values.shape[1].bit_length() - 1
    if values.dim() != 2 or values.shape[1] != 2 ** num or num < 1:
        raise ValueError(f"values must be (B, 2^M) with M >= 1, got {tuple(values.shape)}")
    return values.to(torch.float64) @ _shapley_matrix(num).to(values.device) / math.factorial(num)


def value_features(head, feats: dict[str, Tensor], y: Tensor, modalities: tuple[str, ...]) -> tuple[Tensor, Tensor]:
    """phi (B, M) float64 and the coalitions' correctness (B, 2^M) for features already computed."""
    correct = coalition_correct(head, feats, y, modalities)
    return shapley(coalition_values(correct)), correct


@torch.no_grad()
def value_split(model, split: Split, batch_size: int = 512,
                device: str | torch.device = "cpu") -> tuple[Tensor, Tensor]:
    """phi (N, M) and correctness (N, 2^M) of every sample of ``split``, in eval mode (one encoder pass).

    The model's training mode is restored afterwards. Rows follow the split's order.
    """
    was_training = model.training
    model.eval()
    phis, corrects = [], []
    for batch in BatchLoader(split, batch_size):
        feats = model.encode({m: x.to(device) for m, x in batch["inputs"].items()})
        phi, correct = value_features(model.head, feats, batch["y"].to(device), tuple(model.modalities))
        phis.append(phi.cpu())
        corrects.append(correct.cpu())
    model.train(was_training)
    return torch.cat(phis), torch.cat(corrects)


@dataclass
class Contribution:
    """The contribution report: ``table`` (one row per sample) and ``summary`` (one row per model).

    ``table`` columns: ``index``, ``y``, ``phi/<m>`` per modality, ``correct/<coalition>`` per
    non-empty coalition (``correct/audio``, ``correct/audio+visual``, ...), ``top`` (the modality
    with the strictly largest phi, or ``"tie"``), plus any labelling columns (``label``, ``seed``).
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    modalities: tuple[str, ...]


def sample_table(phi: Tensor, correct: Tensor, y: Tensor, index: Tensor, modalities: tuple[str, ...]) -> pd.DataFrame:
    """The per-sample table of ``Contribution`` from ``value_split``'s outputs."""
    table = pd.DataFrame({"index": index.numpy(), "y": y.numpy()})
    for i, m in enumerate(modalities):
        table[f"phi/{m}"] = phi[:, i].numpy()
    for mask, coalition in enumerate(coalitions(modalities)):
        if mask:
            table[f"correct/{coalition_name(coalition)}"] = correct[:, mask].numpy()
    top = phi.argmax(1)
    tied = (phi == phi.max(1, keepdim=True).values).sum(1) > 1
    table["top"] = [("tie" if t else modalities[int(k)]) for k, t in zip(top, tied)]
    return table


def summarize(table: pd.DataFrame, modalities: tuple[str, ...], by: Iterable[str] = ()) -> pd.DataFrame:
    """Per group (``by``, e.g. label and seed): mean phi, share with phi <= 0, share on top, in % where shares.

    Columns: ``samples``, ``acc`` (full-coalition accuracy, %), per modality ``phi/<m>`` (mean),
    ``phi<=0/<m>`` (%), ``top/<m>`` (% of samples where m has the strictly largest phi), and
    ``tie`` (%).
    """
    by = list(by)
    full = f"correct/{coalition_name(tuple(modalities))}"

    def one(part: pd.DataFrame) -> pd.Series:
        row: dict[str, Any] = {"samples": len(part), "acc": 100 * part[full].mean()}
        for m in modalities:
            row[f"phi/{m}"] = part[f"phi/{m}"].mean()
        for m in modalities:
            row[f"phi<=0/{m}"] = 100 * (part[f"phi/{m}"] <= 0).mean()
        for m in modalities:
            row[f"top/{m}"] = 100 * (part["top"] == m).mean()
        row["tie"] = 100 * (part["top"] == "tie").mean()
        return pd.Series(row)

    if not by:
        return one(table).to_frame().T
    return table.groupby(by, sort=False).apply(one)


def over_seeds(summary: pd.DataFrame, by: Iterable[str] = ("label",)) -> pd.DataFrame:
    """A ``report_runs`` summary as ``"mean ± std"`` over seeds per ``by`` group (phi: 2 decimals, %: 1)."""
    by = list(by)
    flat = summary.reset_index()
    cols = [c for c in summary.columns if c != "samples"]
    out = flat.groupby(by, sort=False)[cols].agg(["mean", "std"])
    text = pd.DataFrame(index=out.index)
    for c in cols:
        digits = 2 if c.startswith("phi/") else 1
        text[c] = [f"{m:.{digits}f} ± {0.0 if pd.isna(s) else s:.{digits}f}"
                   for m, s in out[c].itertuples(index=False)]
    text["seeds"] = flat.groupby(by, sort=False).size()
    return text


def value_shares(table: pd.DataFrame, modalities: tuple[str, ...],
                 by: Iterable[str] = ("label", "seed")) -> pd.DataFrame:
    """Share of samples (%) at each value of phi, per group and modality: the distribution of contributions.

    Returns a long table: the ``by`` columns, ``modality``, ``phi`` and ``share``; a value that a
    group never takes has share 0 in that group (so means over seeds count it).
    """
    by = list(by)
    long = table.melt(id_vars=by, value_vars=[f"phi/{m}" for m in modalities], var_name="modality", value_name="phi")
    long["modality"] = long["modality"].str.removeprefix("phi/")
    long["phi"] = long["phi"].round(6)  # thirds and sixths for M = 3: one key per value
    counts = long.groupby([*by, "modality", "phi"], sort=True).size().rename("count").reset_index()
    wide = counts.pivot_table(index=[*by, "modality"], columns="phi", values="count", fill_value=0, sort=False)
    shares = wide.div(wide.sum(axis=1), axis=0) * 100
    return shares.stack().rename("share").reset_index()


def report(model, data, split: str = "train", batch_size: int = 512,
           device: str | torch.device = "cpu") -> Contribution:
    """Value every sample of one split of ``data`` with ``model`` (eval mode) and summarise.

    Args:
        split: ``"train"`` (what the re-sampling methods value), ``"val"`` or ``"test"``.
    """
    splits = data.splits()
    if split not in splits:
        raise ValueError(f"unknown split {split!r}; choose from {sorted(splits)}")
    part = splits[split]
    modalities = tuple(model.modalities)
    phi, correct = value_split(model, part, batch_size, device)
    table = sample_table(phi, correct, part.y, part.index, modalities)
    return Contribution(table, summarize(table, modalities), modalities)


def report_runs(runs, data, split: str = "train", device: str | torch.device = "cpu") -> Contribution:
    """``report`` for every kept model of a ``Runs`` (``keep=True``), labelled by ``label`` and ``seed``.

    The summary has one row per (label, seed); average it over seeds for a mean ± std.
    """
    if not runs.results:
        raise ValueError("report_runs needs the runs' models: run them with keep=True")
    other = sorted(set(runs.table["dataset"]) - {data.name})
    if other:
        raise ValueError(f"report_runs: the runs include dataset(s) {other}, not {data.name!r}; "
                         f"report each dataset's runs with its own data")
    tables, modalities = [], None
    for res, label, seed in zip(runs.results, runs.table["label"], runs.table["seed"]):
        one = report(res.model, data, split, device=device)
        modalities = one.modalities
        tables.append(one.table.assign(label=label, seed=seed))
    table = pd.concat(tables, ignore_index=True)
    return Contribution(table, summarize(table, modalities, by=["label", "seed"]), modalities)
