"""Diagnosing & Re-learning: diagnose every encoder from its features, then softly re-initialise it."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ..checks import check_int, check_real
from ..diagnosis import N_INIT, TrainSamples, check_train_samples, learning_state, reinit_strength
from ..registry import METHODS
from .base import Method, TrainState

MOMENTUM_KEYS = ("momentum_buffer", "exp_avg")  # SGD's and Adam(W)'s first-moment state
TARGETS = ("all", "worse")


def schedule(num_epochs: int, period: int, reinits: int | None = None) -> list[int]:
    """The 0-based epochs after which D&R diagnoses and re-initialises.

    Every ``period``-th epoch after the first (epochs R, 2R, 3R, ...), as the official code
    (``epoch > 0 and epoch % R == 0``), at most ``reinits`` of them (``None``: no cap). The last
    epoch is left out: a re-initialisation after it would not be followed by any training.
    """
    check_int("period", period, low=1)
    epochs = list(range(period, num_epochs - 1, period))
    return epochs if reinits is None else epochs[:reinits]


def scaled_schedule(num_epochs: int, period: int | None = None, reinits: int = 3) -> dict[str, int | None]:
    """``ReLearning``'s ``period`` and ``reinits`` for a run of ``num_epochs``, after the official proportions.

    The official CREMA-D script re-initialises every 20 of 90 epochs, 3 times (after epochs 20,
    40, 60). By default the period keeps that proportion, ``max(1, round(num_epochs * 20 / 90))``
    (4 for 20 epochs, 7 for 30); ``reinits`` is capped at what the schedule allows, and ``None``
    when it allows none (a run too short to re-initialise: D&R is then joint training).
    """
    check_int("num_epochs", num_epochs, low=1)
    check_int("reinits", reinits, low=1)
    period = max(1, round(num_epochs * 20 / 90)) if period is None else period
    return {"period": period, "reinits": min(reinits, len(schedule(num_epochs, period))) or None}


@torch.no_grad()
def soft_reset(module: nn.Module, init: dict[str, Tensor], alpha: float, buffers: bool = False) -> None:
    """theta <- alpha theta_init + (1 - alpha) theta for every parameter of ``module``, in place.

    ``init`` maps ``named_parameters`` (and, with ``buffers``, floating ``named_buffers``: the
    BatchNorm running mean and variance) to their initial values. ``torch.lerp`` returns theta
    itself for alpha = 0 and theta_init itself for alpha = 1, bit for bit. Integer buffers (the
    BatchNorm batch counter) are never touched.
    """
    for name, p in module.named_parameters():
        p.lerp_(init[name], alpha)
    if buffers:
        for name, b in module.named_buffers():
            if b.is_floating_point():
                b.lerp_(init[name], alpha)


@torch.no_grad()
def scale_momentum(optimizer: torch.optim.Optimizer, params: list[nn.Parameter], alpha: float) -> None:
    """Scale the first-moment state of ``params`` by 1 - alpha: a blend with a fresh optimizer's zero state.

    SGD's ``momentum_buffer`` and Adam(W)'s ``exp_avg``; Adam's second moment and step count are
    left alone (shrinking the second moment towards zero would enlarge the next steps instead).
    """
    for p in params:
        for key in MOMENTUM_KEYS:
            buf = optimizer.state.get(p, {}).get(key)
            if isinstance(buf, Tensor):
                buf.mul_(1.0 - alpha)


def snapshot(module: nn.Module) -> dict[str, Tensor]:
    """Detached copies of a module's parameters and floating buffers, by name."""
    out = {name: p.detach().clone() for name, p in module.named_parameters()}
    out |= {name: b.detach().clone() for name, b in module.named_buffers() if b.is_floating_point()}
    return out


def check_diagnosable(state: TrainState, who: str) -> None:
    """The run has a training and a validation split, each with at least as many samples as classes."""
    data = state.data
    for split in ("train", "val"):
        part = getattr(data, split, None)
        if part is None or len(part) < state.num_classes:
            have = "none" if part is None else f"{len(part)} samples"
            raise ValueError(f"{who} diagnoses on the training and validation splits, and needs at least "
                             f"num_classes={state.num_classes} samples in each; the {split!r} split has {have}. "
                             f"Give the dataset a validation split (e.g. make_splits(..., (0.6, 0.2, 0.2), seed)); "
                             f"the test split is never used for this")


def diagnose(state: TrainState, n_init: int, seed: int, train_samples: TrainSamples = "val"
             ) -> dict[str, dict[str, float]]:
    """``diagnosis.learning_state`` of ``state.model``; under DDP the purities are averaged over ranks."""
    diag = learning_state(state.model, state.data, n_init, seed, state.device, train_samples)
    if state.world_size > 1:  # BatchNorm statistics differ per rank until fit syncs them: agree here
        vec = torch.tensor([[d["purity_train"], d["purity_val"]] for d in diag.values()], dtype=torch.float64)
        state.all_reduce(vec).div_(state.world_size)
        diag = {m: {"purity_train": float(t), "purity_val": float(v), "gap": abs(float(t) - float(v))}
                for m, (t, v) in zip(diag, vec.tolist())}
    for m, d in diag.items():
        for key, value in d.items():
            state.log(f"{key}/{m}", value)
    return diag


@METHODS.register("relearning")
class ReLearning(Method):
    """Diagnosing & Re-learning (D&R): soft re-initialisation of every encoder by its learning state.

    After epochs R, 2R, ... (``schedule``; at most N_r times), each encoder k is diagnosed from
    the separability of its features on the training and validation splits
    (``mmlib.diagnosis``: P_D^k, P_V^k, g^k = abs(P_D^k - P_V^k)), gets alpha_k = tanh(lambda g^k),
    and is pulled back towards its initial weights: theta_k <- alpha_k theta_k^init +
    (1 - alpha_k) theta_k. An over-fitted encoder (large gap) re-learns; one that still
    generalises is barely touched. All modalities are treated alike; none is singled out.

    The diagnosis runs at the end of the epoch, in eval mode, on features computed once for all
    modalities; the validation split also selects the epoch (``fit``), so it serves both, as in
    the official code's split. The reset is applied at the start of the next epoch, so the
    epoch's validation sees the model before the reset, as in the official code (evaluate, then
    re-initialise). theta^init is copied in ``on_fit_start``, before any step: the weights at
    construction when ``fit`` gets a fresh model (a pre-trained model is pulled back to its
    pre-trained weights instead); it is part of ``state_dict``, so a resumed run keeps it.

    What is reset. By default what the official code resets: every parameter of every encoder
    (conv and linear weights and biases, BatchNorm's affine weight and bias). Left alone, as
    there: BatchNorm running statistics, the fusion head, and the optimizer state (momentum).
    Options: ``blend_buffers`` blends the running mean and variance with the same alpha;
    ``blend_head`` blends the head with the mean alpha of the encoders (it reads all of them);
    ``blend_momentum`` scales each reset parameter's momentum by 1 - alpha (``scale_momentum``),
    so the next steps do not push it straight back where it was.

    Args:
        lam: lambda > 0 (3 in the official code).
        period: R, epochs between diagnoses (20 in the official CREMA-D script, for 90 epochs).
        reinits: N_r, the most re-initialisations (3 there); ``None``: every R-th epoch. More than
            the schedule allows for the run's epochs is an error.
        alpha: ``None`` (alpha from the diagnosis) or a fixed strength in [0, 1] for every encoder
            (ablation; 1 is a hard reset). The diagnosis is still computed and logged.
        targets: ``"all"`` (the method: every encoder gets its own alpha) or ``"worse"`` (ablation:
            only the worse-learnt modality at each diagnosis, the one with the lowest validation
            purity, is reset; the others get alpha 0).
        n_init, kmeans_seed: k-means initialisations and random state (``mmlib.diagnosis``).
        train_samples: training samples clustered per diagnosis: ``"val"`` (as many as the
            validation split, a fixed random subset; removes the purity floor, see
            ``mmlib.diagnosis``), ``None`` (all, as the official code) or an integer.

    Logs at each diagnosis ``purity_train/<m>``, ``purity_val/<m>``, ``gap/<m>``, ``alpha/<m>``.

    Hooks: on_fit_start, on_train_epoch_end, on_train_epoch_start.
    Reference: wei2024diagnosing; notebook ``notebooks/diagnosing_relearning.ipynb``.
    """

    def __init__(self, lam: float = 3.0, period: int = 20, reinits: int | None = 3, alpha: float | None = None,
                 targets: str = "all", n_init: int = N_INIT, kmeans_seed: int = 0,
                 train_samples: TrainSamples = "val", blend_buffers: bool = False, blend_head: bool = False,
                 blend_momentum: bool = False):
        check_real("lam", lam, low=0, low_open=True)
        check_int("period", period, low=1)
        check_int("reinits", reinits, low=1, none_ok=True)
        if alpha is not None:
            check_real("alpha", alpha, low=0, high=1)
        if targets not in TARGETS:
            raise ValueError(f"targets must be one of {TARGETS}, got {targets!r}")
        check_int("n_init", n_init, low=1)
        check_int("kmeans_seed", kmeans_seed, low=0)
        check_train_samples(train_samples)
        for name, flag in (("blend_buffers", blend_buffers), ("blend_head", blend_head),
                           ("blend_momentum", blend_momentum)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be True or False, got {flag!r}")
        self.lam, self.period, self.reinits, self.alpha = lam, period, reinits, alpha
        self.targets, self.n_init, self.kmeans_seed, self.train_samples = targets, n_init, kmeans_seed, train_samples
        self.blend_buffers, self.blend_head, self.blend_momentum = blend_buffers, blend_head, blend_momentum
        self._history: list[dict[str, Any]] = []
        self._epochs: list[int] = []
        self._init: dict[str, dict[str, Tensor]] = {}
        self._pending: dict[str, float] | None = None

    @property
    def history(self) -> list[dict[str, Any]]:
        """One row per diagnosis and modality: epoch, modality, purity_train, purity_val, gap, alpha."""
        return list(self._history)

    @classmethod
    def example(cls, modalities: tuple[str, ...]) -> "ReLearning":
        return cls(period=1, reinits=None)

    def on_fit_start(self, state: TrainState) -> None:
        check_diagnosable(state, "relearning")
        self._epochs = schedule(state.num_epochs, self.period, self.reinits)
        if self.reinits is not None and len(self._epochs) < self.reinits:
            allowed = schedule(state.num_epochs, self.period)
            raise ValueError(f"relearning: reinits={self.reinits} with period={self.period}, but "
                             f"num_epochs={state.num_epochs} allows {len(allowed)} re-initialisation(s) (after the "
                             f"0-based epochs {allowed or 'none'}; never after epoch 0 or the last epoch); lower "
                             f"reinits, shorten the period, train longer, or pass reinits=None")
        self._init = {m: snapshot(state.model.encoders[m]) for m in state.modalities}
        if self.blend_head:
            self._init["head"] = snapshot(state.model.head)
        self._history, self._pending = [], None

    def on_train_epoch_end(self, state: TrainState) -> None:
        if state.epoch not in self._epochs:
            return
        diag = diagnose(state, self.n_init, self.kmeans_seed, self.train_samples)
        alphas = {m: self.alpha if self.alpha is not None else reinit_strength(d["gap"], self.lam)
                  for m, d in diag.items()}
        if self.targets == "worse":  # the first of equals, in the model's modality order
            worse = min(diag, key=lambda m: diag[m]["purity_val"])
            alphas = {m: (a if m == worse else 0.0) for m, a in alphas.items()}
        for m, a in alphas.items():
            state.log(f"alpha/{m}", a)
            self._history.append({"epoch": state.epoch, "modality": m, **diag[m], "alpha": a})
        self._pending = alphas

    def on_train_epoch_start(self, state: TrainState) -> None:
        if not self._pending:
            return
        for m, a in self._pending.items():
            encoder = state.model.encoders[m]
            soft_reset(encoder, self._init[m], a, self.blend_buffers)
            if self.blend_momentum:
                scale_momentum(state.optimizer, list(encoder.parameters()), a)
        if self.blend_head:
            a = sum(self._pending.values()) / len(self._pending)
            soft_reset(state.model.head, self._init["head"], a, self.blend_buffers)
            if self.blend_momentum:
                scale_momentum(state.optimizer, list(state.model.head.parameters()), a)
        self._pending = None

    def state_dict(self) -> dict[str, Any]:
        return {"init": self._init, "pending": self._pending, "history": list(self._history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Called by ``fit`` after ``on_fit_start``: the original theta^init, and a reset still to apply."""
        self._init = {k: {n: t.to(self._init[k][n].device) for n, t in v.items()} if k in self._init else v
                      for k, v in state["init"].items()}
        self._pending, self._history = state["pending"], list(state["history"])


class PurityMonitor(Method):
    """Joint training that only records the diagnosis (no reset): purity curves of the baseline.

    Every ``every`` epochs (after 0-based epochs every-1, 2 every-1, ...) it logs
    ``purity_train/<m>``, ``purity_val/<m>`` and ``gap/<m>`` as ``ReLearning`` does; its runs
    are joint training exactly (k-means draws from its own random state, not torch's).

    Hooks: on_fit_start, on_train_epoch_end.
    Reference: wei2024diagnosing; notebook ``notebooks/diagnosing_relearning.ipynb``.
    """

    def __init__(self, every: int = 1, n_init: int = N_INIT, kmeans_seed: int = 0, train_samples: TrainSamples = "val"):
        check_int("every", every, low=1)
        check_int("n_init", n_init, low=1)
        check_int("kmeans_seed", kmeans_seed, low=0)
        check_train_samples(train_samples)
        self.every, self.n_init, self.kmeans_seed, self.train_samples = every, n_init, kmeans_seed, train_samples

    def on_fit_start(self, state: TrainState) -> None:
        check_diagnosable(state, "PurityMonitor")

    def on_train_epoch_end(self, state: TrainState) -> None:
        if (state.epoch + 1) % self.every == 0:
            diagnose(state, self.n_init, self.kmeans_seed, self.train_samples)
