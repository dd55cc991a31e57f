"""MMCSAL Stage 1: self-supervised multimodal pre-training on the unlabelled pool, through ``fit``.

``CrossModalPretraining`` is a task (``mmlib/task.py``), so Stage 1 runs in the one training loop:

  L_1 = L_X + μ_p Σ_m L_P^m

with L_X the cross-modal InfoNCE on the batch's embeddings and L_P^m the uni-modal prototype
loss of modality m between the batch and a jittered second view of it (``contrastive.py``).
``prototype_weight`` μ_p = 0 is "cross-modal pairing alone", the setting in which the paper
observes the modality gap; μ_p > 0 adds the prototypes that are meant to bridge it.
No label is read: the batch's ``y`` is ignored, and validation reports label-free diagnostics of
the held-out split (modality gap, cross-modal R@1), so ``fit`` keeps the last epoch.

Our engineering reading (mmcsal.md §3; the paper's losses, weights and schedules are unknown):
InfoNCE at τ = 0.1, SwAV-style prototypes with Sinkhorn targets, μ_p = 1, the feature-level
jitter as augmentation, and the InfoNCE computed on the un-jittered batch only (so that the
ablation without prototypes differs from the full model by the prototype term alone).

Reference: shen2024mmcsal; notebook ``notebooks/mmcsal.ipynb``.
"""
from __future__ import annotations

import itertools
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from ..checks import check_real
from ..data.base import BatchLoader, Split
from ..experiment import Runs, run
from ..registry import TASKS
from ..task import Task
from .contrastive import cross_modal_loss, jitter, prototype_loss
from .gap import diagnose, mean_gap, retrieval_recall

#: Stage-1 training settings (AdamW, as contrastive pre-training usually is; our choice)
PRETRAIN = {"batch_size": 256, "lr": 2e-3, "optimizer": "adamw", "weight_decay": 1e-4}


@TASKS.register("cross-modal")
class CrossModalPretraining(Task):
    """Self-supervised task: cross-modal InfoNCE plus (optionally) uni-modal prototype losses.

    Args:
        tau: InfoNCE temperature τ.
        prototype_weight: μ_p; 0 trains with cross-modal pairing alone.
        tau_p, eps, sinkhorn_iters: prototype temperature τ_p and the Sinkhorn ε and iterations.
        noise, mask: the jitter that makes the second view (``contrastive.jitter``).

    Losses (``fit`` sums them): ``cross`` and, with μ_p > 0, ``proto/<modality>``.
    """

    select = None  # nothing to select on without labels: fit keeps the last epoch

    def __init__(self, tau: float = 0.1, prototype_weight: float = 1.0, tau_p: float = 0.1, eps: float = 0.05,
                 sinkhorn_iters: int = 3, noise: float = 0.1, mask: float = 0.2):
        for name, value, kw in [("tau", tau, {"low": 0, "low_open": True}),
                                ("prototype_weight", prototype_weight, {"low": 0}),
                                ("tau_p", tau_p, {"low": 0, "low_open": True}),
                                ("eps", eps, {"low": 0, "low_open": True}),
                                ("noise", noise, {"low": 0}), ("mask", mask, {"low": 0, "high": 1, "high_open": True})]:
            check_real(name, value, **kw)
        self.tau, self.prototype_weight, self.tau_p, self.eps = tau, prototype_weight, tau_p, eps
        self.sinkhorn_iters, self.noise, self.mask = sinkhorn_iters, noise, mask

    def loss(self, state, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        losses = {"cross": cross_modal_loss(out.feats, self.tau)}
        if self.prototype_weight > 0:
            # second view: one more forward of the bare model (fine in one process; under DDP
            # this forward would bypass the wrapper, so Stage 1 is single-process)
            view = state.model.embed({m: jitter(x, self.noise, self.mask) for m, x in batch["inputs"].items()})
            for m in state.modalities:
                losses[f"proto/{m}"] = self.prototype_weight * prototype_loss(
                    out.feats[m], view[m], state.model.prototypes_of(m), self.tau_p, self.eps, self.sinkhorn_iters)
        return losses

    def evaluate(self, model, split, data, device) -> dict[str, float]:
        """Label-free diagnostics of ``split``: ``gap`` (mean over pairs) and ``r1`` (cross-modal R@1)."""
        emb = embed(model, split, device)
        pairs = list(itertools.permutations(emb, 2))
        return {"gap": mean_gap(emb),
                "r1": sum(retrieval_recall(emb[a], emb[b], 1) for a, b in pairs) / len(pairs)}


@torch.no_grad()
def embed(model, split: Split, device: str | torch.device = "cpu", batch_size: int = 512) -> dict[str, Tensor]:
    """modality -> (N, d) normalised Stage-1 embeddings of a whole split (eval mode, on CPU)."""
    was_training = model.training
    model.eval()
    parts: dict[str, list[Tensor]] = {m: [] for m in model.modalities}
    for batch in BatchLoader(split, batch_size):
        for m, z in model.embed({k: v.to(device) for k, v in batch["inputs"].items()}).items():
            parts[m].append(z.cpu())
    model.train(was_training)
    return {m: torch.cat(v) for m, v in parts.items()}


def pretrain(data, task: CrossModalPretraining | None = None, *, seeds=(0,), label: str | None = None,
             model_kwargs: dict[str, Any] | None = None, **fit_kwargs: Any) -> Runs:
    """Stage 1 for every seed: ``mm.run`` of a ``TwoStreamNet`` with the cross-modal task on ``data.train``.

    ``fit_kwargs`` override ``PRETRAIN`` (and must give ``num_epochs``). The runs' table holds the
    test split's gap and R@1; ``runs.results[i].model`` is seed i's network, ``.curves`` the
    per-epoch validation diagnostics. Only ``data.train``'s inputs are used for training.
    """
    task = task or CrossModalPretraining()
    label = label or ("cross-modal + prototypes" if task.prototype_weight > 0 else "cross-modal only")
    return run(data, None, seeds=seeds, label=label, model_kwargs={"model": "two-stream", **(model_kwargs or {})},
               probes=False, task=task, **{**PRETRAIN, **fit_kwargs})


def embeddings_by_seed(runs: Runs, split: Split, device: str | torch.device = "cpu") -> dict[int, dict[str, Tensor]]:
    """seed -> modality -> (N, d) embeddings of ``split`` by that seed's Stage-1 network (one label only)."""
    if runs.table["label"].nunique() != 1:
        raise ValueError(f"embeddings_by_seed needs the runs of one configuration, got labels "
                         f"{sorted(runs.table['label'].unique())}")
    return {int(s): embed(res.model, split, device) for s, res in zip(runs.table["seed"], runs.results)}


def diagnostics(runs: Runs, split: Split, labels: bool = True) -> pd.DataFrame:
    """One row per run (label, seed) with ``gap.diagnose`` of its embeddings of ``split``.

    ``labels=True`` adds the class agreement of nearest neighbours (analysis after training only).
    """
    rows = [{"label": lbl, "seed": int(s), **diagnose(embed(res.model, split), split.y if labels else None, int(s))}
            for lbl, s, res in zip(runs.table["label"], runs.table["seed"], runs.results)]
    return pd.DataFrame(rows)
