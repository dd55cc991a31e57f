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
* ``late``: decision-level fusion. Each modality has its own classifier f^m = W_m z^m + b_m;
  the fused prediction is the mean of their class probabilities, logits = log((1/M) sum_m
  softmax(f^m)), so softmax(logits) is that mean.
* ``evidential``: TMC (han2021tmc). Evidence e^m = softplus(W_m z^m + b_m), Dirichlet
  alpha^m = e^m + 1, opinions combined by the reduced Dempster–Shafer rule (``evidence.py``);
  logits = log alpha, so softmax(logits) = alpha / S is the Dirichlet mean, f^m = log alpha^m.
* ``qmf``: dynamic, confidence-weighted fusion in the style of QMF (zhang2023qmf): logits =
  sum_m w^m(x) f^m with w(x) = softmax over modalities of c^m(x) / T, c^m = logsumexp_k f^m_k
  (the negative energy of f^m), detached; ``dynamic=False`` fixes w^m = 1/M (static fusion).

FiLM and gated logits do not decompose by modality (the official code's slicing crashes on
them), so these heads carry one linear classifier per modality (``uni``): the spec's
"separate probe head" option; ``separate_uni=True`` gives concat and sum such classifiers
too. ``head.decomposes`` says which kind a head has; the joint loss trains separate
classifiers on detached features, so they monitor without steering the encoders. The late,
evidential and QMF heads decompose in that sense, their unimodal logits being the branches
the fused prediction is made of, though the fused logits are not their sum.

Reference: ogm_opm.md §5 and pitfall 2; notebook ``notebooks/imbalance.ipynb``; the late,
evidential and QMF heads: ``notebooks/noisy.ipynb``, ``notebooks/quality_varying.ipynb``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_real
from ..registry import FUSIONS
from .evidence import combine_all


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


class BranchFusion(FusionHead):
    """Base of heads that classify each modality on its own (f^m = W_m z^m + b_m) and combine the decisions."""

    can_decompose = True

    def __init__(self, dims: dict[str, int], num_classes: int, separate_uni: bool = False):
        super().__init__(dims, num_classes, separate_uni)
        self.fc = nn.ModuleDict({m: nn.Linear(d, num_classes) for m, d in dims.items()})

    def branches(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        """f^m (B, C) for every modality of ``feats``."""
        return {m: self.fc[m](z) for m, z in feats.items()}


@FUSIONS.register("late")
class LateFusion(BranchFusion):
    """Decision-level fusion: the mean of the modalities' class probabilities (as log-probabilities).

    Trained with ``methods="ensemble"`` (each branch on its own loss) it is a late-fusion
    ensemble of unimodal models; with the joint loss, a mixture trained as a whole.
    """

    def fuse(self, feats: dict[str, Tensor]) -> Tensor:
        logp = torch.stack([F.log_softmax(self.fc[m](feats[m]), 1) for m in self.modalities])
        return torch.logsumexp(logp, 0) - math.log(len(self.modalities))

    def decompose(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.branches(feats)


@FUSIONS.register("evidential")
class EvidentialFusion(BranchFusion):
    """Trusted multi-view classification (TMC): Dirichlet evidence per modality, combined by Dempster–Shafer.

    Logits are log alpha (fused: the combined opinion; unimodal: each modality's own), so the
    softmax of the logits is the Dirichlet mean alpha / S and the argmax is TMC's prediction.
    Train with ``methods="tmc"`` for the paper's loss. Reference: han2021tmc.
    """

    def alphas(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        """alpha^m = softplus(f^m) + 1 (B, C) for every modality of ``feats``."""
        return {m: F.softplus(f) + 1 for m, f in self.branches(feats).items()}

    def fuse(self, feats: dict[str, Tensor]) -> Tensor:
        alphas = self.alphas({m: feats[m] for m in self.modalities})
        return torch.log(combine_all(alphas[m] for m in self.modalities))

    def decompose(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        return {m: torch.log(a) for m, a in self.alphas(feats).items()}


@FUSIONS.register("qmf")
class ConfidenceFusion(BranchFusion):
    """Dynamic fusion weighted per sample by each modality's energy-based confidence (QMF-style).

    logits = sum_m w^m(x) f^m(x), w(x) = softmax_m(c^m(x) / T), c^m = logsumexp_k f^m_k. The
    weights are detached, as in QMF, so the fused loss does not raise a modality's confidence;
    ``methods="qmf"`` trains the confidence to rank samples by how often each modality got them
    right. Differences from the paper: QMF multiplies f^m by its (unnormalised, scaled) confidence;
    we normalise over modalities, so that the weights are positive and ``dynamic=False`` (w^m =
    1/M) is the same head with static weights.

    Args:
        dynamic: weight by confidence (True) or equally (False).
        temperature: T, how sharply the weights follow the confidence.
    Reference: zhang2023qmf.
    """

    def __init__(self, dims: dict[str, int], num_classes: int, dynamic: bool = True, temperature: float = 1.0,
                 separate_uni: bool = False):
        if not isinstance(dynamic, bool):
            raise TypeError(f"dynamic must be True or False, got {dynamic!r}")
        check_real("temperature", temperature, low=0, low_open=True)
        super().__init__(dims, num_classes, separate_uni)
        self.dynamic, self.temperature = dynamic, temperature

    def weights(self, feats: dict[str, Tensor]) -> Tensor:
        """w (B, M), columns in ``self.modalities`` order; rows sum to 1."""
        return self._weights(self.branches({m: feats[m] for m in self.modalities}))

    def _weights(self, f: dict[str, Tensor]) -> Tensor:
        conf = torch.stack([torch.logsumexp(f[m].detach(), 1) for m in self.modalities], 1)
        if not self.dynamic:
            return torch.full_like(conf, 1.0 / len(self.modalities))
        return torch.softmax(conf / self.temperature, 1)

    def fuse(self, feats: dict[str, Tensor]) -> Tensor:
        f = self.branches({m: feats[m] for m in self.modalities})
        w = self._weights(f)
        return sum(w[:, i:i + 1] * f[m] for i, m in enumerate(self.modalities))

    def decompose(self, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.branches(feats)
