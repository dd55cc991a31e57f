"""TMC: trusted multi-view classification, the evidential loss on every opinion and on their combination."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_int
from ..registry import METHODS
from .base import Method, TrainState


def kl_to_uniform(alpha: Tensor) -> Tensor:
    """KL(Dir(alpha) || Dir(1, ..., 1)) per row of ``alpha`` (B, K):

    log Gamma(S) - log Gamma(K) - sum_k log Gamma(alpha_k) + sum_k (alpha_k - 1)(psi(alpha_k) - psi(S)).
    """
    strength = alpha.sum(1)
    num_classes = alpha.new_tensor(float(alpha.shape[1]))
    return (torch.lgamma(strength) - torch.lgamma(num_classes) - torch.lgamma(alpha).sum(1)
            + ((alpha - 1) * (torch.digamma(alpha) - torch.digamma(strength)[:, None])).sum(1))


def evidential_loss(alpha: Tensor, y: Tensor, kl_weight: float) -> Tensor:
    """Mean over the batch of TMC's loss for one opinion (han2021tmc, after Sensoy et al.'s evidential loss):

    sum_k y_k (psi(S) - psi(alpha_k))  +  lambda_t KL(Dir(alpha~) || Dir(1)),   alpha~ = y + (1 - y) * alpha,

    the adjusted cross-entropy (the expected cross-entropy under Dir(alpha)) plus a penalty on
    the evidence for wrong classes (alpha~ removes the true class's).
    """
    onehot = F.one_hot(y, alpha.shape[1]).to(alpha.dtype)
    ace = (onehot * (torch.digamma(alpha.sum(1, keepdim=True)) - torch.digamma(alpha))).sum(1)
    loss = ace
    if kl_weight > 0:
        loss = loss + kl_weight * kl_to_uniform(onehot + (1 - onehot) * alpha)
    return loss.mean()


@METHODS.register("tmc")
class TMC(Method):
    """Trusted multi-view classification (TMC): L = sum_m L(alpha^m) + L(alpha), alpha the combined opinion.

    Use it with ``fusion="evidential"``, whose logits are log alpha (``EvidentialFusion``):
    each modality's Dirichlet opinion alpha^m and the Dempster–Shafer combination alpha each
    get ``evidential_loss``, with the KL weight annealed as lambda_t = min(1, t / T) over epochs
    t = 0, 1, ... (T = ``anneal_epochs``). With another head the loss reads exp(logits) as the
    Dirichlet parameters (an evidential loss on that head, not TMC's combination). The spec
    gives no T for our schedules; 10 epochs is our choice.

    Hooks: compute_loss.
    Reference: han2021tmc; notebook ``notebooks/noisy.ipynb``.
    """

    def __init__(self, anneal_epochs: int = 10):
        check_int("anneal_epochs", anneal_epochs, low=1)
        self.anneal_epochs = anneal_epochs

    def kl_weight(self, epoch: int) -> float:
        return min(1.0, epoch / self.anneal_epochs)

    def compute_loss(self, state: TrainState, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        y, lam = batch["y"], self.kl_weight(state.epoch)
        losses = {"fused": evidential_loss(out.logits.exp(), y, lam)}
        for m, logit in out.uni_logits.items():
            losses[f"uni/{m}"] = evidential_loss(logit.exp(), y, lam)
        return losses
