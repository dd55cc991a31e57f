"""Fusion heads: features (modality -> (B, D_m)) -> fused logits (B, C) and per-modality logits.

Every head returns ``(logits, uni_logits)`` for any number of modalities M >= 2.

* ``concat``: logits = W [z^1; ...; z^M] + b. The unimodal logits are the head's slices,
  f^m = W_m z^m + b / M, so that sum_m f^m = logits exactly (each modality gets an equal
  share of the bias, the M-modality form of the papers' b/2).
* ``sum``: logits = sum_m (W_m z^m + b_m); f^m = W_m z^m + b_m with its full own bias, in
  training and evaluation alike (the official code mixes b and b/2). sum_m f^m = logits.
* ``film``: the last modality is modulated by the others, [gamma; beta] = A [z^1..z^{M-1}] + c,
  logits = L(gamma * z^M + beta).
* ``gated``: logits = L(sigmoid(P [z^1..z^{M-1}]) * (Q z^M)).

FiLM and gated logits do not decompose by modality (the official code's slicing crashes on
them), so these heads carry one linear classifier per modality (``uni``): the spec's
"separate probe head" option; ``separate_uni=True`` gives concat and sum such classifiers
too. ``head.decomposes`` says which kind a head has; the joint loss trains separate
classifiers on detached features, so they monitor without steering the encoders.

Reference: ogm_opm.md §5 and pitfall 2; notebook ``notebooks/imbalance.ipynb``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import FUSIONS


class FusionHead(nn.Module):
    """Base class: subclasses implement ``fuse`` and, if their logits decompose, ``decompose``.

    Args:
        separate_uni: give every modality its own linear classifier even where the fused
            logits decompose (MMPareto's unimodal heads are separate, not slices).
    """

    can_decompose = False

    def __init__(self, dims: dict[str, int], num_classes: int, separate_uni: bool = False):
        super().__init__()
        if len(dims) < 2:
            raise ValueError(f"fusion needs at least two modalities, got {list(dims)}")
        self.modalities = tuple(dims)
        self.dims, self.num_classes = dict(dims), num_classes
        self.decomposes = self.can_decompose and not separate_uni
        if not self.decomposes:
            self.uni = nn.ModuleDict({m: nn.Linear(d, num_classes) for m, d in dims.items()})

    def fuse(self, feats: dict[str, Tensor]) -> Tensor:
        raise NotImplementedError

    def decompose(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    def unimodal(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        """Per-modality logits (B, C) for whichever modalities ``feats`` holds."""
        if self.decomposes:
            return self.decompose(feats)
        return {m: self.uni[m](z) for m, z in feats.items()}

    def forward(self, feats: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        return self.fuse(feats), self.unimodal(feats)


@FUSIONS.register("concat")
class ConcatFusion(FusionHead):
    can_decompose = True

    def __init__(self, dims: dict[str, int], num_classes: int, separate_uni: bool = False):
        super().__init__(dims, num_classes, separate_uni)
        self.fc = nn.Linear(sum(dims.values()), num_classes)

    def fuse(self, feats: dict[str, Tensor]) -> Tensor:
        return self.fc(torch.cat([feats[m] for m in self.modalities], dim=1))

    def decompose(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        out, start = {}, 0
        for m in self.modalities:
            stop = start + self.dims[m]
            if m in feats:
                out[m] = feats[m] @ self.fc.weight[:, start:stop].T + self.fc.bias / len(self.modalities)
            start = stop
        return out


@FUSIONS.register("sum")
class SumFusion(FusionHead):
    can_decompose = True

    def __init__(self, dims: dict[str, int], num_classes: int, separate_uni: bool = False):
        super().__init__(dims, num_classes, separate_uni)
        self.fc = nn.ModuleDict({m: nn.Linear(d, num_classes) for m, d in dims.items()})

    def fuse(self, feats: dict[str, Tensor]) -> Tensor:
        return torch.stack([self.fc[m](feats[m]) for m in self.modalities]).sum(0)

    def decompose(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        return {m: self.fc[m](z) for m, z in feats.items()}


@FUSIONS.register("film")
class FiLMFusion(FusionHead):
    def __init__(self, dims: dict[str, int], num_classes: int, separate_uni: bool = True):
        super().__init__(dims, num_classes, separate_uni)
        *cond, self.target = self.modalities
        self.cond = tuple(cond)
        d = dims[self.target]
        self.film = nn.Linear(sum(dims[m] for m in cond), 2 * d)
        self.fc = nn.Linear(d, num_classes)

    def fuse(self, feats: dict[str, Tensor]) -> Tensor:
        gamma, beta = self.film(torch.cat([feats[m] for m in self.cond], 1)).chunk(2, dim=1)
        return self.fc(gamma * feats[self.target] + beta)


@FUSIONS.register("gated")
class GatedFusion(FusionHead):
    def __init__(self, dims: dict[str, int], num_classes: int, hidden: int | None = None,
                 separate_uni: bool = True):
        super().__init__(dims, num_classes, separate_uni)
        *gate, self.target = self.modalities
        self.gate_from = tuple(gate)
        hidden = hidden or dims[self.target]
        self.gate = nn.Linear(sum(dims[m] for m in gate), hidden)
        self.value = nn.Linear(dims[self.target], hidden)
        self.fc = nn.Linear(hidden, num_classes)

    def fuse(self, feats: dict[str, Tensor]) -> Tensor:
        g = torch.sigmoid(self.gate(torch.cat([feats[m] for m in self.gate_from], 1)))
        return self.fc(g * self.value(feats[self.target]))
