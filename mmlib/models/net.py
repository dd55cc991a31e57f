"""``MultimodalNet``: one encoder per modality plus a fusion head, and ``build_model``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor, nn

from ..registry import FUSIONS, MODELS
from .encoders import build_encoder

FeatureHook = Callable[[dict[str, Tensor]], dict[str, Tensor]]


@dataclass
class Output:
    """What a forward pass returns. logits (B, C); uni_logits and feats keyed by modality."""

    logits: Tensor
    uni_logits: dict[str, Tensor]
    feats: dict[str, Tensor]


class MultimodalNet(nn.Module):
    """``encoders`` (an ``nn.ModuleDict`` keyed by modality) and a fusion ``head``.

    ``forward(inputs, feature_hook)`` applies ``feature_hook`` (if given) to the features
    between the encoders and the head; ``fit`` passes the methods' ``on_features`` hooks
    there in training (OPM drops features this way). ``uni_logits`` are computed from the
    features the encoders produced, before the hook.
    """

    def __init__(self, encoders: nn.ModuleDict, head: nn.Module):
        super().__init__()
        if tuple(encoders) != tuple(head.modalities):
            raise ValueError(f"encoders {tuple(encoders)} and head {head.modalities} must list the same modalities")
        self.encoders, self.head = encoders, head
        self.modalities = tuple(encoders)

    def encode(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        missing = [m for m in self.modalities if m not in inputs]
        if missing:
            raise KeyError(f"batch has no input for modality {missing[0]!r}; it has {sorted(inputs)}")
        return {m: self.encoders[m](inputs[m]) for m in self.modalities}

    def forward(self, inputs: dict[str, Tensor], feature_hook: FeatureHook | None = None) -> Output:
        feats = self.encode(inputs)
        uni = self.head.unimodal(feats)
        fused_in = feature_hook(feats) if feature_hook is not None else feats
        return Output(self.head.fuse(fused_in), uni, feats)


def build_model(data, model: str = "fusion", **kwargs) -> nn.Module:
    """A registered model for ``data`` (``MODELS``); the default is encoders plus a fusion head.

    ``build_model(data, fusion="sum", separate_uni=True)`` passes the keywords to the model's
    factory (here ``fusion_net``); a chapter with another kind of model registers its factory
    with ``@MODELS.register(name)`` and is built with ``build_model(data, model=name)``.
    """
    return MODELS.create(model, data=data, **kwargs)


@MODELS.register("fusion")
def fusion_net(data, fusion: str = "concat", encoders: dict[str, tuple[str, dict]] | None = None,
               **fusion_kwargs) -> MultimodalNet:
    """Encoders from the dataset's defaults (or ``encoders``) and a fusion head by name.

    Args:
        data: a ``MultimodalDataset`` (gives modalities, classes and default encoders).
        encoders: optional overrides, modality -> (encoder name, kwargs).
    """
    spec = dict(data.encoders)
    spec.update(encoders or {})
    encs = nn.ModuleDict({m: build_encoder(spec[m][0], **spec[m][1]) for m in data.modalities})
    head = FUSIONS.create(fusion, dims={m: e.out_dim for m, e in encs.items()},
                          num_classes=data.num_classes, **fusion_kwargs)
    return MultimodalNet(encs, head)
