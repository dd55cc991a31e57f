"""The Stage-1 network of MMCSAL: one encoder and projection head per modality, plus prototypes.

``TwoStreamNet`` maps each modality to an L2-normalised embedding (u_i for the first modality,
w_i for the second; any M >= 2 works) and holds K learnable prototypes per modality (or one
bank shared by all, ``shared_prototypes=True``). It has no classifier: ``forward`` returns an
``Output`` whose ``feats`` are the normalised embeddings and whose ``logits`` are empty, so that
``fit`` can train it with a self-supervised task (``mmlib/active/pretraining.py``).

The encoders are the dataset's default ones (as for the classifier); the projection heads
(linear-ReLU-linear to ``proj_dim``) and the prototype count follow mmcsal.md §3, which is our
engineering reading: the paper's backbones, dimensions and K are not known.

Reference: shen2024mmcsal; notebook ``notebooks/mmcsal.ipynb``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import check_int
from ..models.encoders import build_encoder
from ..models.net import Output
from ..registry import MODELS


class TwoStreamNet(nn.Module):
    """Encoders + projection heads -> normalised embeddings; prototypes for the uni-modal loss.

    Args:
        encoders: modality -> encoder (exposing ``out_dim``).
        proj_dim: embedding size d.
        hidden: width of each projection head's hidden layer.
        num_prototypes: K prototypes per modality.
        shared_prototypes: one prototype bank used by every modality (mmcsal.md §3.4, P3)
            instead of one bank per modality (P1, the default).
    """

    def __init__(self, encoders: nn.ModuleDict, proj_dim: int = 32, hidden: int = 64, num_prototypes: int = 30,
                 shared_prototypes: bool = False):
        super().__init__()
        if len(encoders) < 2:
            raise ValueError(f"the two-stream net needs at least two modalities, got {list(encoders)}")
        self.encoders = encoders
        self.modalities = tuple(encoders)
        self.proj_dim, self.shared_prototypes = proj_dim, shared_prototypes
        self.projectors = nn.ModuleDict({m: nn.Sequential(nn.Linear(e.out_dim, hidden), nn.ReLU(),
                                                          nn.Linear(hidden, proj_dim)) for m, e in encoders.items()})
        banks = ["shared"] if shared_prototypes else list(self.modalities)
        self.prototypes = nn.ParameterDict({b: nn.Parameter(F.normalize(torch.randn(num_prototypes, proj_dim), dim=1))
                                            for b in banks})

    def prototypes_of(self, modality: str) -> Tensor:
        """The (K, d) prototypes that ``modality`` is assigned to (unnormalised parameters)."""
        return self.prototypes["shared" if self.shared_prototypes else modality]

    def embed(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """modality -> (B, proj_dim) L2-normalised embeddings."""
        missing = [m for m in self.modalities if m not in inputs]
        if missing:
            raise KeyError(f"batch has no input for modality {missing[0]!r}; it has {sorted(inputs)}")
        return {m: F.normalize(self.projectors[m](self.encoders[m](inputs[m])), dim=1) for m in self.modalities}

    def forward(self, inputs: dict[str, Tensor], feature_hook=None) -> Output:
        """``feats``: the normalised embeddings; ``logits`` (B, 0) and ``uni_logits`` empty (no classes)."""
        feats = self.embed(inputs)
        if feature_hook is not None:
            feats = feature_hook(feats)
        n = len(next(iter(feats.values())))
        return Output(feats[self.modalities[0]].new_zeros(n, 0), {}, feats)


@MODELS.register("two-stream")
def two_stream_net(data, proj_dim: int = 32, hidden: int = 64, num_prototypes: int = 30,
                   shared_prototypes: bool = False, encoders: dict[str, tuple[str, dict]] | None = None,
                   fusion: str | None = None) -> TwoStreamNet:
    """A ``TwoStreamNet`` with the dataset's default encoders (or ``encoders``: modality -> (name, kwargs)).

    ``fusion`` is accepted and ignored (``mm.run`` passes one; this model has no fusion head).
    The default K = 30 is three prototypes per class for the built-in 10-class datasets
    (mmlib's reading of mmcsal.md §3.2: K = 3 × the expected number of classes).
    """
    for name, value in [("proj_dim", proj_dim), ("hidden", hidden), ("num_prototypes", num_prototypes)]:
        check_int(name, value, low=1)
    spec = {**data.encoders, **(encoders or {})}
    encs = nn.ModuleDict({m: build_encoder(spec[m][0], **spec[m][1]) for m in data.modalities})
    return TwoStreamNet(encs, proj_dim, hidden, num_prototypes, shared_prototypes)
