"""OPM: on-the-fly prediction modulation, dropping the dominant modality's features."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..registry import METHODS
from ..repro import derive_seed
from .base import Method, TrainState, in_window
from .discrepancy import batch_ratios


def opm_drop_probability(rho: float, q_base: float, lam: float) -> float:
    """q = clip(q_base (1 + lam tanh(rho - 1)), 0, 1) for a dominant modality (rho > 1), else 0."""
    if rho <= 1.0:
        return 0.0
    return min(max(q_base * (1.0 + lam * math.tanh(rho - 1.0)), 0.0), 1.0)


@METHODS.register("opm")
class OPM(Method):
    """On-the-fly prediction modulation (OPM).

    After each step, rho^u of that batch (``discrepancy.py``) gives the drop probability
    q^u = ``opm_drop_probability(rho^u)`` used at the **next** step (q_{t+1} from rho_t, as in
    the paper's figure; the first step drops nothing). Each training batch inside the window
    is modulated with probability ``p_exe``. A modulated batch draws, per sample and modality,
    keep ~ Bernoulli(1 - q^u) and zeroes the whole feature z^u_i where keep = 0; then **all**
    features are multiplied by 1 / (1 - theta), with theta = sum_u d_u q^u / sum_u d_u the
    feature-size-weighted mean of q, so the gradients are rescaled the same way (inverted
    dropout). The fused logits and the loss use these features; rho uses the unmasked ones
    (the model computes ``uni_logits`` before the feature hook). Evaluation never drops.

    No sample loses every modality: with rho^u = s^u / mean of the other scores, the
    lowest-scoring modality always has rho <= 1, hence q = 0, so it is always kept; the
    paper's "exclude samples with every modality dropped" never applies.

    Args:
        q_base, lam: the base drop probability and the strength lambda (q lies in
            [q_base, q_base (1 + lam)] for a dominant modality).
        p_exe: probability that a batch is modulated at all.
        start_epoch, end_epoch: the window, inclusive and 0-based (``start_epoch`` > 0 is a
            warm-up); ``end_epoch=None`` runs to the last epoch.

    Logs ``rho/<m>`` and ``q/<m>`` every step (q from this step's rho, applied at the next
    modulated step inside the window). The execution draws use one generator seeded from the
    run's seed (equal on every DDP rank); the masks use a per-rank one.

    Hooks: on_fit_start, on_train_batch_start, on_features, on_after_forward.
    Reference: wei2024onthefly (OPM); notebook ``notebooks/ogm_opm.ipynb``.
    """

    def __init__(self, q_base: float = 0.5, lam: float = 0.5, p_exe: float = 0.7, start_epoch: int = 0,
                 end_epoch: int | None = None):
        for name, value in (("q_base", q_base), ("p_exe", p_exe)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.q_base, self.lam, self.p_exe = q_base, lam, p_exe
        self.start_epoch, self.end_epoch = start_epoch, end_epoch
        self._q: dict[str, float] = {}
        self._active = False
        self._gens: dict[str, torch.Generator] = {}

    def in_window(self, epoch: int) -> bool:
        return in_window(epoch, self.start_epoch, self.end_epoch)

    def on_fit_start(self, state: TrainState) -> None:
        seed = state.generator.initial_seed()
        self._gens = {}
        for name, parts in (("exe", ()), ("mask", (state.rank,))):
            gen = torch.Generator(device=state.device)
            gen.manual_seed(derive_seed(seed, self.registry_name, name, *parts))
            self._gens[name] = gen
        self._q = {m: 0.0 for m in state.modalities}

    def on_train_batch_start(self, state: TrainState, batch: dict[str, Any]) -> None:
        # drawn every batch, so the sequence of decisions does not depend on the window
        draw = float(torch.rand((), generator=self._gens["exe"], device=self._gens["exe"].device))
        self._active = self.in_window(state.epoch) and draw < self.p_exe

    def on_features(self, state: TrainState, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        if not (self._active and state.model.training) or not any(self._q.get(m, 0.0) > 0 for m in feats):
            return feats
        dims = {m: z.shape[1] for m, z in feats.items()}
        theta = sum(dims[m] * self._q.get(m, 0.0) for m in feats) / sum(dims.values())
        scale = 1.0 / (1.0 - theta)
        out = {}
        for m, z in feats.items():
            q = self._q.get(m, 0.0)
            if q > 0:
                u = torch.rand(z.shape[0], 1, generator=self._gens["mask"], device=self._gens["mask"].device)
                out[m] = z * ((u >= q).to(z.dtype) * scale)
            else:
                out[m] = z * scale
        return out

    def on_after_forward(self, state: TrainState, out, batch: dict[str, Any]) -> None:
        rho = batch_ratios(state, out.uni_logits, batch["y"])
        self._q = {m: opm_drop_probability(r, self.q_base, self.lam) for m, r in rho.items()}
        for m in state.modalities:
            state.log(f"rho/{m}", rho[m])
            state.log(f"q/{m}", self._q[m])

    def state_dict(self) -> dict[str, Any]:
        return {"q": dict(self._q), **{name: g.get_state() for name, g in self._gens.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Called by ``fit`` after ``on_fit_start``: the last q and both generators' positions."""
        self._q = dict(state.get("q") or self._q)
        for name, gen in self._gens.items():
            if state.get(name) is not None:
                gen.set_state(state[name])
