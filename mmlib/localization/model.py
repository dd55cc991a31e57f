"""``SoundingNet``: the two-stream network of class-aware sounding-object localization.

Symbols of hu2021csol (sounding_localization.md §3, §5) and their names here:

============================================  ==========================================
paper                                         mmlib
============================================  ==========================================
V (h x w x C visual feature map)              ``out.visual_map`` (B, C, h, w)
pooled audio feature                          ``out.audio_feat`` (B, C), global max over time
v_xy = visual embedding (1x1 convs)           ``out.visual_embed`` (B, E, h, w)
a = audio embedding (two FC layers)           ``out.audio_embed`` (B, E)
l(x, y) = sigmoid(w cos(v_xy, a)), w_0 = 5    ``model.av_map(visual_embed, audio_embed)`` (B, h, w)
visual / audio classifiers (K outputs)        ``out.visual_logits`` / ``out.audio_logits`` (B, K)
object dictionary D (K x D)                   ``model.dictionary`` (buffer, set by ``ObjectDictionary``)
M_k = w_o <F_xy, d_k> + b_o                   ``model.object_maps(out)`` (B, K, h, w)
============================================  ==========================================

F is the feature map the dictionary lives in, ``model.object_space(out)``: the backbone map V
(``dictionary_space="backbone"``, the paper's choice) or the localization embedding map v
(``"embed"``, our default). The paper's V comes from an ImageNet-initialised ResNet and is
semantic before any audio-visual training; ours is trained from scratch, and on the solo scenes
its object features cluster much worse by class than the embeddings that correspondence
learning shapes (the chapter measures both on the same trained model).

Departures from the paper, for CPU scale: ResNet-18 backbones are replaced by three conv
blocks (stride 4 in all, so a 20-pixel frame gives a 5 x 5 map and a 40-pixel mosaic 10 x 10;
the paper has stride 16, 224 -> 14 x 14), C = 2 ``width`` channels instead of 512 and
E = ``embed_dim`` instead of 128. The audio stream convolves over time with the
spectrogram's frequency bins as channels and max-pools over time, where the paper max-pools a
2-D ResNet map over time and frequency (a pitch must survive the pooling here, and a small
network keeps it in its channels, not in a position along frequency). The visual stream is trained from
scratch (the paper's is ImageNet-initialised).

Reference: notebook ``notebooks/sounding_localization.ipynb``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import MODELS

SPACES = ("embed", "backbone")


@dataclass
class LocOutput:
    """One forward pass: maps, embeddings and classifier logits (shapes in the module docstring)."""

    visual_map: Tensor
    audio_feat: Tensor
    visual_embed: Tensor
    audio_embed: Tensor
    visual_logits: Tensor
    audio_logits: Tensor


def _block2d(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def _block1d(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv1d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm1d(cout), nn.ReLU()]


class SoundingNet(nn.Module):
    """Visual and audio streams, the audio-visual map, classifier heads and the object dictionary.

    Args:
        audio_bins: frequency bins of the spectrogram (the audio stream's input channels).
        num_clusters: K, the size of the dictionary and of both classifiers' outputs (a real
            parameter: the official constructors hard-code 11 outputs, spec §9.1).
        width: channels of the first conv block; the feature maps have C = 2 ``width``.
        embed_dim: E, the size of the localization embeddings.
        dictionary_space: ``"embed"`` (v, D = E) or ``"backbone"`` (V, D = C): where the
            object features, the dictionary and the object maps M_k live.
    """

    modalities = ("audio", "visual")

    def __init__(self, audio_bins: int, num_clusters: int = 10, width: int = 16, embed_dim: int = 32,
                 dictionary_space: str = "embed"):
        super().__init__()
        if dictionary_space not in SPACES:
            raise ValueError(f"dictionary_space must be one of {SPACES}, got {dictionary_space!r}")
        channels = 2 * width
        self.num_clusters, self.dictionary_space = num_clusters, dictionary_space
        self.visual = nn.Sequential(*_block2d(1, width, 2), *_block2d(width, channels, 2),
                                    *_block2d(channels, channels, 1))
        self.audio = nn.Sequential(*_block1d(audio_bins, width, 1), *_block1d(width, channels, 2),
                                   *_block1d(channels, channels, 1))
        self.visual_embed = nn.Sequential(nn.Conv2d(channels, embed_dim, 1), nn.ReLU(),
                                          nn.Conv2d(embed_dim, embed_dim, 1))
        self.audio_embed = nn.Sequential(nn.Linear(channels, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim))
        self.map_scale = nn.Parameter(torch.tensor(5.0))  # w of l = sigmoid(w cos), no bias (spec §3)
        self.visual_classifier = nn.Linear(channels, num_clusters)
        self.audio_classifier = nn.Linear(channels, num_clusters)
        self.object_scale = nn.Parameter(torch.tensor(1.0))  # w_o and b_o of M_k (spec §5.1)
        self.object_bias = nn.Parameter(torch.tensor(0.0))
        dim = embed_dim if dictionary_space == "embed" else channels
        self.register_buffer("dictionary", torch.zeros(num_clusters, dim))

    def forward(self, inputs: dict[str, Tensor], feature_hook=None) -> LocOutput:
        """``inputs``: ``audio`` (B, bins, frames) and ``visual`` (B, 1, H, W).

        ``feature_hook`` is accepted for ``fit``'s call and not used: no training method edits
        these features.
        """
        missing = [m for m in self.modalities if m not in inputs]
        if missing:
            raise KeyError(f"batch has no input for modality {missing[0]!r}; it has {sorted(inputs)}")
        visual_map = self.visual(inputs["visual"])
        audio_feat = self.audio_features(inputs["audio"])
        return LocOutput(visual_map, audio_feat, self.visual_embed(visual_map), self.audio_embed(audio_feat),
                         self.visual_classifier(visual_map.mean(dim=(2, 3))), self.audio_classifier(audio_feat))

    def audio_features(self, audio: Tensor) -> Tensor:
        """The pooled audio feature: the audio stream, then a global max over time: (B, C)."""
        return self.audio(audio).amax(dim=2)

    def av_map(self, visual_embed: Tensor, audio_embed: Tensor) -> Tensor:
        """l(x, y) = sigmoid(w cos(v_xy, a)): (B, E, h, w) and (B, E) -> (B, h, w)."""
        cos = F.cosine_similarity(visual_embed, audio_embed[:, :, None, None], dim=1, eps=1e-8)
        return torch.sigmoid(self.map_scale * cos)

    def object_space(self, out: LocOutput) -> Tensor:
        """F, the feature map of the dictionary: ``out.visual_embed`` or ``out.visual_map`` (B, D, h, w)."""
        return out.visual_embed if self.dictionary_space == "embed" else out.visual_map

    def object_maps(self, out: LocOutput) -> Tensor:
        """M_k(x, y) = w_o <F_xy, d_k> + b_o: (B, K, h, w), a raw inner product (spec §5.1)."""
        feats = self.object_space(out)
        return self.object_scale * torch.einsum("bchw,kc->bkhw", feats, self.dictionary) + self.object_bias

    def reset_classifiers(self, generator: torch.Generator | None = None) -> None:
        """Re-initialise both classifiers with N(0, 0.01) weights and zero biases (spec §4.2.4)."""
        for head in (self.visual_classifier, self.audio_classifier):
            with torch.no_grad():
                head.weight.copy_(torch.randn(head.weight.shape, generator=generator) * 0.01)
                head.bias.zero_()


@MODELS.register("sounding-net")
def sounding_net(data, num_clusters: int | None = None, width: int = 16, embed_dim: int = 32,
                 dictionary_space: str = "embed") -> SoundingNet:
    """A ``SoundingNet`` for a scenes dataset (``av-solo``); K defaults to the number of classes.

    The number of classes sets only the dictionary's size, which no training step compares with a label.
    """
    bins = data.input_shape("audio")[0]
    return SoundingNet(bins, num_clusters or data.num_classes, width, embed_dim, dictionary_space)
