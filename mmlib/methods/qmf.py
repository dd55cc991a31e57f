"""QMF-style dynamic fusion: fused and unimodal losses plus a ranking regulariser on each modality's confidence."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_real
from ..registry import METHODS
from .base import Method, TrainState


def rank_loss(confidence: Tensor, history: Tensor) -> Tensor:
    """Mean over ordered pairs (i, j) of the batch with h_i > h_j of max(0, (h_i - h_j) - (c_i - c_j)).

    A sample that a modality got right more often so far (history h) must have a confidence c
    higher by at least the difference in history; pairs with equal history cost nothing.
    """
    dh = history[:, None] - history[None, :]
    dc = confidence[:, None] - confidence[None, :]
    pairs = dh > 0
    if not pairs.any():
        return confidence.sum() * 0.0
    return F.relu(dh - dc)[pairs].mean()


@METHODS.register("qmf")
class QMF(Method):
    """Quality-aware multimodal fusion (QMF-style): L = CE(fused) + sum_m CE(f^m) + lam sum_m L_rank^m.

    The confidence of modality m on sample i is c^m_i = logsumexp_k f^m_k(x_i), the negative
    energy that ``fusion="qmf"`` (``ConfidenceFusion``) weights the modalities by. L_rank^m
    (``rank_loss``) orders the confidences of the batch's samples like their history h^m_i:
    the fraction of the past epochs in which f^m classified training sample i correctly. The
    history is collected during an epoch and added at its end (all-reduced under DDP), so each
    epoch's targets come from the epochs before it; the first epoch has no ranking term.

    Differences from the paper's description (zhang2023qmf): all ordered pairs of a batch are
    ranked (not one partner per sample), with the history difference as the margin; lam = 0.1
    is our choice, not a published value.

    Hooks: on_fit_start, compute_loss, on_train_epoch_end.
    Reference: zhang2023qmf; notebook ``notebooks/quality_varying.ipynb``.
    """

    def __init__(self, lam: float = 0.1):
        check_real("lam", lam, low=0)
        self.lam = lam
        self._correct = self._seen = self._epoch_correct = self._epoch_seen = torch.zeros(0)
        self._modalities: tuple[str, ...] = ()

    def on_fit_start(self, state: TrainState) -> None:
        n, self._modalities = len(state.data.train), tuple(state.modalities)
        self._correct = torch.zeros(n, len(self._modalities), dtype=torch.float64)
        self._seen = torch.zeros(n, dtype=torch.float64)
        self._epoch_correct, self._epoch_seen = torch.zeros_like(self._correct), torch.zeros_like(self._seen)

    def history(self, index: Tensor) -> Tensor:
        """h (B, M): the past fraction of correct unimodal predictions of each sample (0 if never seen)."""
        return self._correct[index] / self._seen[index].clamp_min(1)[:, None]

    def compute_loss(self, state: TrainState, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        y, index = batch["y"], batch["index"].cpu()
        losses = {"fused": F.cross_entropy(out.logits, y)}
        hist = self.history(index).to(out.logits.device, out.logits.dtype)
        for i, m in enumerate(self._modalities):
            f = out.uni_logits[m]
            losses[f"uni/{m}"] = F.cross_entropy(f, y)
            if self.lam > 0:
                losses[f"rank/{m}"] = self.lam * rank_loss(torch.logsumexp(f, 1), hist[:, i])
            self._epoch_correct[:, i].index_add_(0, index, (f.argmax(1) == y).cpu().double())
        self._epoch_seen.index_add_(0, index, torch.ones(len(index), dtype=torch.float64))
        return losses

    def on_train_epoch_end(self, state: TrainState) -> None:
        self._correct += state.all_reduce(self._epoch_correct.to(state.device)).cpu()
        self._seen += state.all_reduce(self._epoch_seen.to(state.device)).cpu()
        self._epoch_correct.zero_()
        self._epoch_seen.zero_()

    def state_dict(self) -> dict[str, Any]:
        return {"correct": self._correct.clone(), "seen": self._seen.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._correct, self._seen = state["correct"].clone(), state["seen"].clone()
