"""OGM and OGM-GE: slow down the dominant encoder's gradients, optionally with GE noise."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..registry import METHODS
from ..repro import derive_seed
from .base import Method, TrainState, in_window
from .discrepancy import batch_ratios

RULES = ("code", "paper")
MODULATE = ("weights", "all")


def ogm_coefficient(rho: float, alpha: float, rule: str = "code") -> float:
    """k = 1 - tanh(alpha * a) for a dominant modality (rho > 1), else 1.

    ``rule="code"`` (default): a = rho, the released code and the CVPR paper's Eq. 10 as
    printed, so k jumps from 1 to 1 - tanh(alpha) as rho crosses 1. ``rule="paper"``:
    a = rho - 1, the early-repository form that relaxes continuously to k = 1 at rho = 1.
    """
    if rule not in RULES:
        raise ValueError(f"unknown coefficient rule {rule!r}; choose from {RULES}")
    if rho <= 1.0:
        return 1.0
    return 1.0 - math.tanh(alpha * (rho if rule == "code" else rho - 1.0))


def encoder_tensors(encoder: nn.Module, modulate: str = "weights") -> list[nn.Parameter]:
    """The parameters of one encoder module that OGM modulates.

    ``"weights"``: every weight matrix and conv kernel (tensors with dim >= 2) of every
    sub-module, so linear layers count as well as convolutions; BN affine parameters and
    biases (1-D) are left alone. ``"all"``: every trainable parameter of the encoder.
    """
    if modulate not in MODULATE:
        raise ValueError(f"unknown modulate={modulate!r}; choose from {MODULATE}")
    params = [p for p in encoder.parameters() if p.requires_grad]
    return params if modulate == "all" else [p for p in params if p.dim() >= 2]


@METHODS.register("ogm-ge")
class OGMGE(Method):
    """On-the-fly gradient modulation with generalisation enhancement (OGM-GE).

    Each step, rho^u comes from the unimodal logits of the current batch (``discrepancy.py``);
    a dominant modality (rho^u > 1) gets k^u = ``ogm_coefficient(rho^u)``, the others k = 1.
    After backward and before the optimizer step, inside the epoch window, each modulated
    gradient G of encoder u becomes k^u G + eps with eps ~ N(0, (std(G) + 1e-8)^2), std taken
    per tensor of the *unmodulated* G, on every encoder (weak ones included).

    Parameters are chosen **by module**: ``model.encoders[u]``, never by parameter-name
    position (the official code matches the DataParallel name prefix and silently modulates
    nothing without it). It touches only conv kernels; by default we modulate every weight
    matrix and kernel of the encoder (``modulate="weights"``), as its maintainers advise for
    encoders with linear layers. The fusion head is never modulated.

    Args:
        alpha: the modulation strength alpha.
        start_epoch, end_epoch: the window, inclusive and 0-based; ``end_epoch=None`` runs to
            the last epoch.
        ge: add the GE noise (``False`` gives plain OGM, registered as ``"ogm"``).
        rule: ``"code"`` (default, k = 1 - tanh(alpha rho)) or ``"paper"`` (1 - tanh(alpha (rho - 1))).
        modulate: ``"weights"`` (default) or ``"all"``, see ``encoder_tensors``.

    Logs ``rho/<m>`` and ``k/<m>`` every step (k from the rule, applied only inside the window).
    Noise comes from a generator seeded from the run's seed, so runs repeat exactly and every
    DDP rank draws the same noise.

    Hooks: on_fit_start, on_after_forward, on_before_optimizer_step.
    Reference: peng2022ogmge (Eq. 10, Algorithm 1), wei2024onthefly; notebook ``notebooks/ogm_opm.ipynb``.
    """

    def __init__(self, alpha: float = 0.3, start_epoch: int = 0, end_epoch: int | None = None, ge: bool = True,
                 rule: str = "code", modulate: str = "weights"):
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if rule not in RULES:
            raise ValueError(f"unknown coefficient rule {rule!r}; choose from {RULES}")
        if modulate not in MODULATE:
            raise ValueError(f"unknown modulate={modulate!r}; choose from {MODULATE}")
        self.alpha, self.start_epoch, self.end_epoch = alpha, start_epoch, end_epoch
        self.ge, self.rule, self.modulate = ge, rule, modulate
        self._k: dict[str, float] = {}
        self._params: dict[str, list[nn.Parameter]] = {}
        self._noise: torch.Generator | None = None

    def in_window(self, epoch: int) -> bool:
        return in_window(epoch, self.start_epoch, self.end_epoch)

    def on_fit_start(self, state: TrainState) -> None:
        self._params = {m: encoder_tensors(state.model.encoders[m], self.modulate) for m in state.modalities}
        # a sub-seed of the run's seed: reproducible, equal on every rank, data order untouched
        self._noise = torch.Generator(device=state.device)
        self._noise.manual_seed(derive_seed(state.generator.initial_seed(), self.registry_name, "noise"))

    def on_after_forward(self, state: TrainState, out, batch: dict[str, Any]) -> None:
        rho = batch_ratios(state, out.uni_logits, batch["y"])
        self._k = {m: ogm_coefficient(r, self.alpha, self.rule) for m, r in rho.items()}
        for m in state.modalities:
            state.log(f"rho/{m}", rho[m])
            state.log(f"k/{m}", self._k[m])

    def on_before_optimizer_step(self, state: TrainState, optimizer: torch.optim.Optimizer) -> None:
        if not self.in_window(state.epoch):
            return
        for m, params in self._params.items():
            k = self._k.get(m, 1.0)
            if k == 1.0 and not self.ge:
                continue
            for p in params:
                if p.grad is None:
                    continue
                noise = self._ge_noise(p.grad) if self.ge else None  # std of the unmodulated gradient
                p.grad.mul_(k)
                if noise is not None:
                    p.grad.add_(noise)

    def _ge_noise(self, grad: Tensor) -> Tensor:
        std = grad.std() if grad.numel() > 1 else grad.new_zeros(())
        noise = torch.randn(grad.shape, generator=self._noise, device=grad.device, dtype=grad.dtype)
        return noise.mul_(std + 1e-8)

    def state_dict(self) -> dict[str, Any]:
        return {"noise": self._noise.get_state() if self._noise is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Called by ``fit`` after ``on_fit_start``: continue the noise sequence where it stopped."""
        if state.get("noise") is not None:
            self._noise.set_state(state["noise"])


@METHODS.register("ogm")
class OGM(OGMGE):
    """OGM without generalisation enhancement: gradient scaling only (``OGMGE(ge=False)``).

    Hooks: on_fit_start, on_after_forward, on_before_optimizer_step.
    Reference: peng2022ogmge (the "OGM" ablation), wei2024onthefly; notebook ``notebooks/ogm_opm.ipynb``.
    """

    def __init__(self, alpha: float = 0.3, start_epoch: int = 0, end_epoch: int | None = None,
                 rule: str = "code", modulate: str = "weights"):
        super().__init__(alpha, start_epoch, end_epoch, ge=False, rule=rule, modulate=modulate)
