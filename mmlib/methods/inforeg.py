"""InfoReg: slow the information-sufficient encoder, with a proximal term, during the prime learning window.

Per modality m with encoder weights w_m (paper's notation, huang2025inforeg):

- **Information acquired** (Eq. 5, 7): Tr(F_m^t) = E ||grad_{w_m} L||^2, once per epoch t. We use
  the step's own mini-batch gradient, read after backward and before any edit, and average its
  squared norm over the epoch's steps: an empirical-Fisher proxy with batch-mean gradients
  (E ||mean_b g||^2 = ||E g||^2 + tr Cov(g) / B, not the per-sample E ||g||^2), no extra backward.
- **Prime learning window** (Eq. 11): at epoch t >= 2 the window of m is open when
  (Tr(F_m^{t-1}) - Tr(F_m^{t-2})) / Tr(F_m^{t-1}) > K; epochs 0 and 1 train normally (Algorithm 1).
  Once the test has failed, the window stays closed (``reopen=False``, our reading): the paper
  describes one early window after which training is plain joint training, while Algorithm 1
  re-tests every epoch, and on small, noisy traces the test passes again by chance late in
  training. ``reopen=True`` re-tests every epoch, as Algorithm 1 and the released code do.
- **Who is ahead** (Eq. 8-10), per batch, from the unimodal logits: with the mean NLL l_m,
  Delta_m = (1 / C_m) sum_{m': l_m' > l_m} (l_m' - l_m), C_m = #{m': l_m' > l_m}
  (the number of worse modalities). The paper writes Eq. 9-10 with s = NLL and "s_m' < s_m",
  which would regulate the *worse* modalities; we read it with a higher-is-better score, so
  Delta_m > 0 exactly for a modality ahead of another.
- **Regulation** (Eq. 12, 16): inside the window, an m with Delta_m > 0 gets the proximal
  penalty (alpha / 2) ||w_m - w_m^{t-1}||^2, alpha = exp(beta tanh Delta_m) in [1, e^beta], added as
  its gradient alpha (w_m - w_m^{t-1}) after backward (no second loss pass); w_m^{t-1} is a
  detached copy of the encoder taken at the start of the epoch. The weakest modality
  (Delta = 0) is never regulated.

``InfoReg`` (``"inforeg"``) trains the fused loss only, Table 2's InfoReg. ``InfoRegStar``
(``"inforeg-star"``) adds one unimodal cross-entropy per modality, Table 3's InfoReg*, the loss
the released code (GeWu-Lab/InfoReg_CVPR2025) minimises. Where the released code departs from
the paper, ``rule="code"`` follows the code, ``rule="paper"`` (default) the paper:

1. window: the code tests only the audio trace, for every encoder; its statistic is the
   relative change of a 10-epoch moving average with zero padding,
   k_t = (T_{t-1} - T_{t-11}) / sum_{i=t-10}^{t-1} T_i (``moving_average_change``), so regulation
   is on from epoch 0, and K = 0.05 (0.04 in the paper and in the March-2025 code);
2. score: the batch *sum* of true-class probabilities (OGM's score), not the mean NLL;
3. coefficient: only the modality with the higher score is regulated, with
   c_m exp(tanh(s_m - s_other)) and hand-set c = 0.95 (audio) and 0.10 (visual), not
   exp(beta tanh Delta); here 0.10 goes to the dataset's weak modality, 0.95 to the others
   (the March-2025 code never reaches its visual branch, so it regulated audio only);
4. trace: the code sums per-layer *means* of squared gradients over conv and linear weights
   only and reads them *after* adding the proximal gradient, so regulation feeds back into the
   window. We keep the paper's definition under both rules: the squared norm over every trainable
   encoder parameter, before the proximal term.

Also unlike the released code: every encoder gets its own trace and window (rule="paper"), and
the epoch is selected on validation (``fit``), never on test. The anchor is a detached copy
taken at each epoch start, as the code's model copy.

``schedule`` places the regulation for the paper's timing experiment (Table 4): ``"window"``
(inside the prime window, the method), ``"always"`` (the whole of training, every epoch) or
``"outside"`` (only epochs where the window is closed; epochs 0 and 1, before the first test,
belong to neither).

Reference: huang2025inforeg (Eq. 5-16, Algorithm 1, Tables 2-4); notebook ``notebooks/inforeg.ipynb``.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..registry import METHODS
from .base import Method, TrainState
from .discrepancy import true_class_scores
from .grads import GradLayout, encoder_groups, layout_for

RULES = ("paper", "code")
SCHEDULES = ("window", "always", "outside")
CODE_SPAN = 10  # the released code's moving-average length (epochs)
CODE_CONSTANTS = (0.95, 0.10)  # the released code's c for its dominant (audio) and weak (visual) modality


class NoRegulationWarning(UserWarning):
    """An InfoReg run regulated no step (the window never opened, or never closed): it was its baseline."""


def relative_change(traces: Sequence[float], epoch: int) -> float:
    """Eq. 11's statistic at ``epoch`` t >= 2: (T_{t-1} - T_{t-2}) / T_{t-1}; 0 when T_{t-1} <= 0."""
    if epoch < 2 or len(traces) < epoch:
        raise ValueError(f"the window test at epoch {epoch} needs the traces of epochs {epoch - 2} and "
                         f"{epoch - 1}; got {len(traces)} (it starts at epoch 2)")
    last, before = traces[epoch - 1], traces[epoch - 2]
    return (last - before) / last if last > 0 else 0.0  # no information acquired: nothing is growing


def moving_average_change(traces: Sequence[float], epoch: int, span: int = CODE_SPAN) -> float:
    """The released code's statistic: (T_{t-1} - T_{t-1-span}) / sum_{i=t-span}^{t-1} T_i, zeros before epoch 0.

    1 at epoch 0 by definition (and at epoch 1 through the padding); 0 when the sum is <= 0.
    """
    if epoch == 0:
        return 1.0
    padded = [0.0] * span + list(traces[:epoch])
    total = math.fsum(padded[-span:])
    return (padded[-1] - padded[-span - 1]) / total if total > 0 else 0.0


def information_gaps(losses: Tensor) -> Tensor:
    """Delta_m (M,) from mean unimodal NLLs (M,): the mean lead of m over the modalities it beats, else 0."""
    lead = losses.unsqueeze(0) - losses.unsqueeze(1)  # [m, m'] = l_m' - l_m
    ahead = lead > 0
    return (lead * ahead).sum(1) / ahead.sum(1).clamp_min(1)


def paper_coefficients(gaps: Tensor, beta: float) -> Tensor:
    """alpha_m = exp(beta tanh Delta_m) where Delta_m > 0, else 0 (no regulation); (M,)."""
    return torch.where(gaps > 0, torch.exp(beta * torch.tanh(gaps)), torch.zeros_like(gaps))


def code_coefficients(scores: Tensor, constants: Tensor) -> Tensor:
    """The released code's rule: the top score's modality gets c_m exp(tanh(s_m - next best)), others 0."""
    out = torch.zeros_like(scores)
    top = int(scores.argmax())
    lead = scores[top] - torch.cat([scores[:top], scores[top + 1:]]).max()
    if lead > 0:
        out[top] = constants[top] * torch.exp(torch.tanh(lead))
    return out


class FisherTrace(Method):
    """Joint training that records each encoder's Fisher-trace proxy per epoch (``trace/<m>``).

    Tr(F_m^t) = mean over the epoch's steps of ||grad_{w_m} L_b||^2, from the gradients the step's
    backward left in ``.grad`` (see ``inforeg``'s module docstring); under DDP they are already
    averaged over ranks. ``traces[m]`` holds one value per finished epoch. It edits nothing, so
    its runs are the baseline's exactly.

    Hooks: on_fit_start, on_train_epoch_start, on_after_backward, on_train_epoch_end.
    Reference: huang2025inforeg (Eq. 5, 7); notebook ``notebooks/inforeg.ipynb``.
    """

    def __init__(self):
        self.traces: dict[str, list[float]] = {}
        self._layout: GradLayout | None = None
        self._sum: Tensor | None = None
        self._steps = 0

    def on_fit_start(self, state: TrainState) -> None:
        self.traces = {m: [] for m in state.modalities}
        self._layout = layout_for(encoder_groups(state.model, state.modalities))

    def on_train_epoch_start(self, state: TrainState) -> None:
        self._sum, self._steps = None, 0

    def on_after_backward(self, state: TrainState) -> None:
        layout = self._layout = layout_for(encoder_groups(state.model, state.modalities), self._layout)
        flat = layout.flat([p.grad for p in layout.params])
        sq = layout.per_group(flat.square().unsqueeze(0))[0]  # float64 sums of float32 squares
        self._sum = sq if self._sum is None else self._sum + sq
        self._steps += 1

    def on_train_epoch_end(self, state: TrainState) -> None:
        values = (self._sum / self._steps).tolist() if self._steps else [0.0] * len(self.traces)
        for m, value in zip(self.traces, values):
            self.traces[m].append(value)
            state.log(f"trace/{m}", value)

    def state_dict(self) -> dict[str, Any]:
        return {"traces": {m: list(v) for m, v in self.traces.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.traces = {m: list(v) for m, v in state["traces"].items()}


@METHODS.register("inforeg")
class InfoReg(FisherTrace):
    """InfoReg, the paper's form: fused loss only (Table 2), per-modality window and alpha = exp(beta tanh Delta).

    Args:
        beta: beta >= 0 of Eq. 16 (paper's best 0.9).
        threshold: K in (0, 1) of Eq. 11 (paper's best 0.04; the released code uses 0.05).
        schedule: ``"window"`` (default), ``"always"`` or ``"outside"`` (see the module docstring).
        rule: ``"paper"`` (default) or ``"code"`` (the released code's window, score and constants).
        reopen: re-test a closed window every epoch (default: False under rule="paper", True under
            rule="code", as the released code).
        constants: rule="code" only, modality -> c; default 0.10 for ``data.weak``, 0.95 otherwise.
        reference: rule="code" only, the modality whose trace drives every window (the code's
            audio); default the first modality that is not ``data.weak``.

    Logs per epoch ``trace/<m>``, ``change/<m>`` (the window statistic), ``window/<m>`` (1 open),
    ``drift/<m>`` (||w_m - w_m^{t-1}|| at epoch end); per step ``alpha/<m>`` (0: not regulated).
    Warns (``NoRegulationWarning``) at fit end when no step was regulated.

    Hooks: on_fit_start, on_train_epoch_start, on_after_forward, on_after_backward,
    on_before_optimizer_step, on_train_epoch_end, on_fit_end.
    Reference: huang2025inforeg; notebook ``notebooks/inforeg.ipynb``.
    """

    def __init__(self, beta: float = 0.9, threshold: float | None = None, schedule: str = "window",
                 rule: str = "paper", reopen: bool | None = None, constants: dict[str, float] | None = None,
                 reference: str | None = None):
        super().__init__()
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; choose from {RULES}")
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; choose from {SCHEDULES}")
        if not isinstance(beta, (int, float)) or isinstance(beta, bool) or not beta >= 0:
            raise ValueError(f"beta must be a number >= 0 (alpha = exp(beta tanh Delta)), got {beta!r}")
        threshold = (0.04 if rule == "paper" else 0.05) if threshold is None else threshold
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0 < threshold < 1:
            raise ValueError(f"threshold K must lie in (0, 1) (a relative change per epoch), got {threshold!r}")
        if rule == "paper" and (constants is not None or reference is not None):
            raise ValueError("constants and reference belong to rule='code'; drop them or pass rule='code'")
        self.beta, self.threshold, self.schedule, self.rule = float(beta), float(threshold), schedule, rule
        self.reopen = rule == "code" if reopen is None else bool(reopen)
        self.constants, self.reference = constants, reference
        self.active: dict[str, bool] = {}
        self.closed: dict[str, bool] = {}  # the window has failed its test once (reopen=False keeps it closed)
        self.regulated_steps = 0
        self._alpha: Tensor | None = None
        self._anchor: dict[str, list[Tensor]] = {}
        self._const: Tensor | None = None
        self._reference: str | None = None

    def on_fit_start(self, state: TrainState) -> None:
        super().on_fit_start(state)
        self.regulated_steps = 0
        self.closed = {m: False for m in state.modalities}
        if self.rule == "code":
            weak = getattr(state.data, "weak", None)
            const = self.constants or {m: CODE_CONSTANTS[m == weak] for m in state.modalities}
            missing = [m for m in state.modalities if m not in const]
            if missing:
                raise ValueError(f"constants has no value for modalities {missing}; give one per modality "
                                 f"{state.modalities}")
            self._const = torch.tensor([float(const[m]) for m in state.modalities], dtype=torch.float64)
            self._reference = self.reference or next(m for m in state.modalities if m != weak)
            if self._reference not in state.modalities:
                raise ValueError(f"reference {self._reference!r} is not a modality; choose from {state.modalities}")

    def window_open(self, m: str, epoch: int) -> tuple[float, bool | None]:
        """The window statistic and whether m's window is open at ``epoch`` (None: not testable yet)."""
        if self.rule == "code":
            change = moving_average_change(self.traces[self._reference], epoch)
            return change, change > self.threshold
        if epoch < 2:
            return float("nan"), None
        change = relative_change(self.traces[m], epoch)
        return change, change > self.threshold

    def on_train_epoch_start(self, state: TrainState) -> None:
        super().on_train_epoch_start(state)
        for m in state.modalities:
            change, is_open = self.window_open(m, state.epoch)
            if is_open and self.closed[m] and not self.reopen:
                is_open = False
            self.closed[m] = self.closed[m] or is_open is False
            self.active[m] = {"window": is_open is True, "always": True, "outside": is_open is False}[self.schedule]
            state.log(f"change/{m}", change)
            state.log(f"window/{m}", float("nan") if is_open is None else float(is_open))
        self._anchor = {m: [p.detach().clone() for p in ps] for m, ps in self._layout.groups.items()}

    def on_after_forward(self, state: TrainState, out, batch: dict[str, Any]) -> None:
        y, mods = batch["y"], state.modalities
        if self.rule == "paper":  # global-batch mean NLL per modality
            nll = torch.stack([F.cross_entropy(out.uni_logits[m].detach().double(), y, reduction="sum")
                               for m in mods])
            total = state.all_reduce(torch.cat([nll, nll.new_tensor([len(y)])]))
            alpha = paper_coefficients(information_gaps(total[:-1] / total[-1]), self.beta)
        else:
            scores = state.all_reduce(true_class_scores(out.uni_logits, y, mods).double())
            alpha = code_coefficients(scores, self._const)
        self._alpha = alpha * torch.tensor([self.active[m] for m in mods], dtype=alpha.dtype)
        for m, a in zip(mods, self._alpha.tolist()):
            state.log(f"alpha/{m}", a)

    def on_before_optimizer_step(self, state: TrainState, optimizer: torch.optim.Optimizer) -> None:
        if self._alpha is None or not bool((self._alpha > 0).any()):
            return
        self.regulated_steps += 1
        for (m, params), a in zip(self._layout.groups.items(), self._alpha.tolist()):
            if a <= 0:
                continue
            for p, anchor in zip(params, self._anchor[m]):
                term = (p.detach() - anchor).mul_(a)  # grad of (alpha / 2) ||w - w^{t-1}||^2
                p.grad = term if p.grad is None else p.grad.add_(term)

    def on_train_epoch_end(self, state: TrainState) -> None:
        super().on_train_epoch_end(state)
        for m, params in self._layout.groups.items():
            drift = math.sqrt(math.fsum(float((p.detach() - a).double().square().sum())
                                        for p, a in zip(params, self._anchor[m])))
            state.log(f"drift/{m}", drift)
        self._alpha = None

    def on_fit_end(self, state: TrainState) -> None:
        if self.regulated_steps == 0:
            reason = {"window": "the prime window never opened (or no modality was ahead while it was open)",
                      "outside": "the window never closed", "always": "no modality was ever ahead"}[self.schedule]
            warnings.warn(f"{type(self).__name__} regulated no step in {state.num_epochs} epochs: {reason}, so "
                          f"this run is its baseline. The paper's window test starts at epoch 2; lower the "
                          f"threshold K (now {self.threshold}) or train longer.", NoRegulationWarning, stacklevel=2)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "regulated_steps": self.regulated_steps, "closed": dict(self.closed)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.regulated_steps = int(state.get("regulated_steps", 0))
        self.closed = dict(state.get("closed", self.closed))


@METHODS.register("inforeg-star")
class InfoRegStar(InfoReg):
    """InfoReg*: InfoReg with one unimodal cross-entropy per modality added (Table 3), the released code's loss.

    L = CE(f) + sum_m CE(f^m), with f^m the unimodal logits of the head (slices for concat). The
    rule defaults to the paper's; ``rule="code"`` gives the released code's window, scores and
    constants too (module docstring, items 1-4).

    Hooks: compute_loss, on_fit_start, on_train_epoch_start, on_after_forward, on_after_backward,
    on_before_optimizer_step, on_train_epoch_end, on_fit_end.
    Reference: huang2025inforeg (Table 3); notebook ``notebooks/inforeg.ipynb``.
    """

    def compute_loss(self, state: TrainState, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        y = batch["y"]
        return {"fused": F.cross_entropy(out.logits, y),
                **{f"uni/{m}": F.cross_entropy(logit, y) for m, logit in out.uni_logits.items()}}
