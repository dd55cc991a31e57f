"""G-Blending: weight the fused and unimodal losses by how well each generalises per unit of overfitting."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_int
from ..evaluate import predict
from ..registry import METHODS
from .base import Method, TrainState

FUSED = "fused"


def head_losses(model, split, device: str | torch.device = "cpu") -> dict[str, float]:
    """Mean cross-entropy of every head on a whole split (eval mode): ``{"fused": L, <modality>: L}``."""
    res = predict(model, split, device=device)
    y = res["y"]
    losses = {FUSED: float(F.cross_entropy(res["logits"].double(), y))}
    losses.update({m: float(F.cross_entropy(logit.double(), y)) for m, logit in res["uni_logits"].items()})
    return losses


def generalisation_and_overfitting(before: dict[str, dict[str, float]],
                                   after: dict[str, dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Per head, Delta G and Delta O between two checkpoints N (``before``) and N + n (``after``).

    ``before`` and ``after`` hold ``{"train": {head: loss}, "val": {head: loss}}``. With the
    overfitting O = L^V - L^T (validation minus training loss),

        Delta G = L^V_N - L^V_{N+n}        (generalisation gained: the validation loss's drop)
        Delta O = O_{N+n} - O_N            (overfitting gained)

    so that OGR = abs(Delta O / Delta G) (Wang et al. 2020, Sec. 3.3).
    """
    gain, over = {}, {}
    for k in after["val"]:
        gain[k] = before["val"][k] - after["val"][k]
        over[k] = (after["val"][k] - after["train"][k]) - (before["val"][k] - before["train"][k])
    return gain, over


def blend_weights(gain: dict[str, float], over: dict[str, float], total: float | None = None,
                  eps: float = 1e-12) -> dict[str, float] | None:
    """w_k = total * r_k / sum_j r_j with r_k = max(Delta G_k, 0) / (Delta O_k^2 + eps).

    Our reading of the paper (Sec. 3.3, Prop. 1): the OGR-optimal blend is
    w*_k = (1/Z) <grad L*, v_k> / sigma_k^2 with Z a normalising constant, and its practical estimate
    replaces the gain <grad L*, v_k> by Delta G_k and the variance sigma_k^2 by Delta O_k^2, so
    w_k is proportional to Delta G_k / Delta O_k^2. (We could not re-read the paper's text offline;
    if it squares O_{N+n} rather than Delta O, only the denominator here changes.) Normalised here to
    sum to ``total`` (default: the number of heads; ``total=1`` gives weights that sum to 1). A head
    whose validation loss rose (Delta G <= 0) gets weight 0; None when no head generalised at all.
    """
    ratio = {k: max(gain[k], 0.0) / (over[k] ** 2 + eps) for k in gain}
    z = sum(ratio.values())
    if not z > 0.0:
        return None
    total = float(len(ratio)) if total is None else total
    return {k: total * r / z for k, r in ratio.items()}


@METHODS.register("g-blending")
class GBlending(Method):
    """Online Gradient-Blending: the fused and unimodal losses weighted by their OGR-optimal blend.

    L = w_fused CE(logits, y) + sum_m w_m CE(f^m, y), with f^m the head's unimodal logits. Every
    ``super_epoch`` epochs the train and validation losses of each head are measured on the whole
    splits (eval mode), and the next super-epoch's weights are ``blend_weights`` of Delta G and
    Delta O over the super-epoch that just ended (``generalisation_and_overfitting``). The first
    super-epoch uses uniform weights w = 1, i.e. ``joint-uni``.

    Differences from the paper, on purpose:

    * **Online, from one model.** Delta G and Delta O come from the heads of the model being
      trained, over the last super-epoch; the paper's offline Algorithm 1 trains a separate
      unimodal model per modality from the same start to estimate them. Its online Algorithm 2
      re-estimates every super-epoch, as here.
    * **Scale.** The paper divides by its constant Z; a constant factor does not change the
      blended direction (OGR is a ratio), only the step size, so the weights sum to the number of
      heads: uniform weights are then ``joint-uni`` and the learning rate means what it means
      for every other method of a comparison.
    * **No generalisation.** A head with Delta G <= 0 gets weight 0 (the formula would give a
      negative weight); if no head generalised, the previous weights are kept.
    * The unimodal heads are the fusion head's own unimodal logits (slices for concat/sum), as
      in BalanceBenchmark, not separate networks.

    Under DDP the measured losses are averaged over ranks (BatchNorm statistics differ between
    ranks at epoch end), so every rank uses the same weights.

    Args:
        super_epoch: epochs between two re-estimations (BalanceBenchmark: 10 of 30 epochs; the
            benchmark notebook keeps that third of training, ``mm.benchmark.SETTINGS``).

    Logs ``w/<head>`` at every re-estimation and ``gain/<head>``, ``over/<head>``.

    Hooks: on_fit_start, compute_loss, on_train_epoch_end.
    Reference: wang2020gblending (Sec. 3.3-3.5, Algorithms 1-2); notebook ``notebooks/benchmark.ipynb``.
    """

    def __init__(self, super_epoch: int = 3):
        check_int("super_epoch", super_epoch, low=1)
        self.super_epoch = super_epoch
        self.weights: dict[str, float] = {}
        self._last: dict[str, dict[str, float]] | None = None

    def on_fit_start(self, state: TrainState) -> None:
        self.weights = {k: 1.0 for k in (FUSED, *state.modalities)}
        self._last = self._measure(state)

    def compute_loss(self, state: TrainState, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        y = batch["y"]
        losses = {FUSED: self.weights[FUSED] * F.cross_entropy(out.logits, y)}
        for m, logit in out.uni_logits.items():
            losses[f"uni/{m}"] = self.weights[m] * F.cross_entropy(logit, y)
        return losses

    def on_train_epoch_end(self, state: TrainState) -> None:
        done = state.epoch + 1
        if done % self.super_epoch or done >= state.num_epochs:  # no re-estimation after the last epoch
            return
        now = self._measure(state)
        gain, over = generalisation_and_overfitting(self._last, now)
        self._last = now
        new = blend_weights(gain, over)
        if new is not None:
            self.weights = new
        for k in self.weights:
            state.log(f"w/{k}", self.weights[k])
            state.log(f"gain/{k}", gain[k])
            state.log(f"over/{k}", over[k])

    def _measure(self, state: TrainState) -> dict[str, dict[str, float]]:
        """Train and validation losses of every head, averaged over DDP ranks."""
        out = {name: head_losses(state.model, getattr(state.data, name), state.device) for name in ("train", "val")}
        if state.world_size > 1:
            keys = list(out["train"])
            flat = torch.tensor([out[s][k] for s in ("train", "val") for k in keys], dtype=torch.float64,
                                device=state.device)
            flat = state.all_reduce(flat).div_(state.world_size).tolist()
            out = {s: dict(zip(keys, flat[i * len(keys):(i + 1) * len(keys)])) for i, s in enumerate(("train", "val"))}
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "last": self._last}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = dict(state["weights"])
        self._last = state["last"]
