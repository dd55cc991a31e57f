"""The cold-start evaluation loop: select B pairs, reveal their labels, train the standard classifier.

For every seed and budget, ``select_and_train`` asks a selector for B pool indices (the pool is
``data.train``, embedded by that seed's Stage-1 network), builds the labelled dataset whose
training split is those B pairs only (``labelled_subset``; validation and test unchanged), and
trains the book's standard multimodal classifier on it with ``mm.run`` (the one loop, from
scratch, the dataset's default encoders and concat fusion). The table has one row per seed and
budget: test metrics, the budget, how many classes the selection happens to cover, and the mean
cross-modal alignment u_s·w_s of the selected pairs.

Our protocol choices (mmcsal.md §5 lists options; the paper's is unknown): the classifier is
trained from scratch, not fine-tuned from the Stage-1 encoders, so that the comparison isolates
*which* pairs are labelled; and a cold start has no labels besides the B selected ones, so the
task is ``ColdStartClassification``: ``fit`` keeps the last epoch and evaluates no validation
split while training. The held-out validation split is evaluated once, after training
(``val/acc``), so that λ_align can be chosen without the test split. Selection and training
share the seed (one paired pipeline per seed).

Reference: shen2024mmcsal; notebook ``notebooks/mmcsal.ipynb``.
"""
from __future__ import annotations

import time
from typing import Any, Iterable, Mapping

import pandas as pd
import torch
from torch import Tensor

from ..checks import check_seeds
from ..data.base import MultimodalDataset, Split
from ..evaluate import evaluate
from ..experiment import Runs, run
from ..methods.spec import parse_name
from ..registry import SELECTORS, TASKS
from ..task import Classification
from .selection.base import Selector, alignment, check_budget, check_embeddings

SelectorSpec = Selector | str | tuple[str, dict[str, Any]]


def make_selector(spec: SelectorSpec) -> Selector:
    """A selector from an instance, a registered name (``"mmcsal:lam_align=1.0"``) or a ``(name, kwargs)`` pair."""
    if isinstance(spec, Selector):
        return spec
    if isinstance(spec, str):
        name, kwargs = parse_name(spec)
        return SELECTORS.create(name, **kwargs)
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str) and isinstance(spec[1], dict):
        return SELECTORS.create(spec[0], **spec[1])
    raise TypeError(f"cannot make a selector from {spec!r}: give a Selector, a registered name "
                    f"({', '.join(SELECTORS.names())}) or a (name, kwargs) pair")


@TASKS.register("cold-start")
class ColdStartClassification(Classification):
    """Classification without a labelled validation set: the last epoch is kept, and the
    validation split is not evaluated during training (it returns no metrics); any other split
    (the test split, after training) gets the classification metrics."""

    def __init__(self):
        super().__init__(select=None)

    def evaluate(self, model, split, data, device) -> dict[str, float]:
        return {} if split is data.val else super().evaluate(model, split, data, device)


def labelled_subset(data: MultimodalDataset, indices: Tensor | Iterable[int]) -> MultimodalDataset:
    """``data`` whose training split is the selected pool samples only (renumbered 0..B-1).

    Validation and test splits are unchanged.
    """
    idx = torch.as_tensor(indices)
    n = len(data.train)
    if idx.dim() != 1 or idx.is_floating_point() or idx.dtype == torch.bool or len(idx) == 0:
        raise ValueError(f"indices must be a non-empty 1-D integer tensor of pool positions, got "
                         f"{tuple(idx.shape)} {idx.dtype}")
    if int(idx.min()) < 0 or int(idx.max()) >= n:
        raise ValueError(f"indices must lie in 0..{n - 1} (the pool is data.train with {n} samples)")
    if len(torch.unique(idx)) != len(idx):
        raise ValueError("indices hold duplicates: a pair can be labelled only once")
    part = data.train.subset(idx.long())
    train = Split(part.inputs, part.y)
    return MultimodalDataset(data.name, data.modalities, data.num_classes, train, data.val, data.test,
                             data.encoders, data.class_names, {**data.info, "labelled": len(idx)}, data.weak)


def select_and_train(data: MultimodalDataset, embeddings: Mapping[int, Mapping[str, Tensor]],
                     selector: SelectorSpec, budgets: Iterable[int], *, seeds: Iterable[int] = (0,),
                     label: str | None = None, **fit_kwargs: Any) -> Runs:
    """For every seed and budget: select with ``embeddings[seed]``, then train on the selection.

    Args:
        embeddings: seed -> modality -> (N, d) Stage-1 embeddings of ``data.train``.
        selector: a selector or its spec (``make_selector``).
        budgets: numbers of pairs to label.
        label: name in tables (default: the selector's registry name).
        fit_kwargs: passed to ``mm.run`` (usually the profile's training settings); the task
            defaults to ``ColdStartClassification()`` (last epoch), linear probes are off.

    Returns:
        ``Runs`` whose table adds ``budget``, ``classes`` (distinct classes among the selected
        pairs, read after selection for analysis only), ``alignment`` (mean u_s·w_s of the
        selection), ``val/acc`` (held-out validation accuracy of the trained classifier) and
        ``select_seconds``; the fitted models are not kept.
    """
    sel = make_selector(selector)
    seeds = check_seeds(seeds)
    label = label or sel.registry_name
    missing = [s for s in seeds if s not in embeddings]
    if missing:
        raise KeyError(f"no embeddings for seed(s) {missing}; embeddings has seeds {sorted(embeddings)}")
    emb = {s: check_embeddings(embeddings[s]) for s in seeds}
    budgets = [check_budget(b, len(data.train)) for b in budgets]
    for s in seeds:
        if len(next(iter(emb[s].values()))) != len(data.train):
            raise ValueError(f"embeddings of seed {s} have {len(next(iter(emb[s].values())))} rows, but the pool "
                             f"(data.train) has {len(data.train)}: embed data.train")
    fit_kwargs = {"task": ColdStartClassification(), **fit_kwargs}
    tables = []
    for s in seeds:
        align = alignment(emb[s])
        for b in budgets:
            start = time.perf_counter()
            idx = sel.select(emb[s], b, seed=s)
            seconds = time.perf_counter() - start
            runs = run(labelled_subset(data, idx), None, seeds=[s], label=label, probes=False, **fit_kwargs)
            held_out = evaluate(runs.results[0].model, data.val, data.num_classes, fit_kwargs.get("device", "cpu"))
            tables.append(runs.table.assign(budget=b, classes=len(torch.unique(data.train.y[idx])),
                                            alignment=float(align[idx].mean()), **{"val/acc": held_out["acc"]},
                                            select_seconds=seconds))
    return Runs(pd.concat(tables, ignore_index=True))
