"""Localization maps at inference, upsampled to scene pixels, and the baselines they are compared with.

* ``solo_maps``: the audio-visual map l(x, y) of each scene with its own audio (and, on request,
  the peaks p of the matched and of a mismatched pair).
* ``class_maps``: the class-aware maps of hu2021csol (sounding_localization.md §7),
  c_k(x, y) = softmax_k(3 M~_k(x, y)) with silent-object suppression M~_k = M_k l, or
  M~_k = M_k without it (``suppress=False``, the ablation); clusters become classes through an
  ``assignment`` (``matching.py``) and the maps of clusters assigned to one class are summed.
* Baselines: ``centre_prior`` (a centred Gaussian, the same for every scene),
  ``random_class_maps`` (softmax of Gaussian noise at the feature resolution) and
  ``agnostic_class_maps`` (class-agnostic: the map l, weighted per class by the audio
  classifier's probability of the cluster(s) assigned to that class: the map says where
  something sounds, the audio says what).

Maps are computed at the feature resolution and upsampled bilinearly to the scene size, as the
paper upsamples to 224 x 224. Every function puts the model in eval mode and restores its mode.

Reference: notebook ``notebooks/sounding_localization.ipynb``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.base import BatchLoader, Split

TEMPERATURE = 3.0  # softmax_k(3 M~_k) at inference (spec §7)


def upsample(maps: Tensor, size: int) -> Tensor:
    """Bilinear upsampling of (N, h, w) or (N, K, h, w) maps to size x size."""
    flat = maps[:, None] if maps.dim() == 3 else maps
    out = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=False)
    return out[:, 0] if maps.dim() == 3 else out


def _batches(model, split: Split, batch_size: int, device):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in BatchLoader(split, batch_size):
                inputs = {m: x.to(device) for m, x in batch["inputs"].items()}
                yield inputs, model(inputs)
    finally:
        model.train(was_training)


def solo_maps(model, split: Split, batch_size: int = 256, device="cpu", pairs: bool = False):
    """l(x, y) of every scene with its own audio, upsampled: (N, H, W).

    With ``pairs=True`` also the peaks p of the matched pairs and of mismatched pairs (each
    audio with the next scene's frame in split order; the last with the first), each (N,).
    """
    size = split.inputs["visual"].shape[-1]
    maps, embeds, audio = [], [], []
    for _, out in _batches(model, split, batch_size, device):
        maps.append(model.av_map(out.visual_embed, out.audio_embed).cpu())
        if pairs:
            embeds.append(out.visual_embed.cpu())
            audio.append(out.audio_embed.cpu())
    low = torch.cat(maps)
    if not pairs:
        return upsample(low, size)
    mismatched = model.av_map(torch.cat(embeds).roll(-1, dims=0), torch.cat(audio))
    return upsample(low, size), low.flatten(1).amax(1), mismatched.flatten(1).amax(1)


def cluster_to_class(maps: Tensor, assignment: np.ndarray, num_classes: int) -> Tensor:
    """Sum the cluster channels (N, K, ...) assigned to each class: (N, num_classes, ...); -1 means unused."""
    out = torch.zeros(maps.shape[0], num_classes, *maps.shape[2:], dtype=maps.dtype)
    for k, c in enumerate(np.asarray(assignment)):
        if c >= 0:
            out[:, c] += maps[:, k]
    return out


def class_maps(model, split: Split, assignment: np.ndarray, num_classes: int, suppress: bool = True,
               batch_size: int = 256, device="cpu") -> Tensor:
    """Class-aware maps softmax_k(3 M~_k), clusters summed into classes, upsampled: (N, C, H, W)."""
    size = split.inputs["visual"].shape[-1]
    chunks = []
    for _, out in _batches(model, split, batch_size, device):
        m = model.object_maps(out)
        if suppress:
            m = m * model.av_map(out.visual_embed, out.audio_embed)[:, None]
        chunks.append(torch.softmax(TEMPERATURE * m, dim=1).cpu())
    return upsample(cluster_to_class(torch.cat(chunks), assignment, num_classes), size)


def agnostic_class_maps(model, split: Split, assignment: np.ndarray, num_classes: int, batch_size: int = 256,
                        device="cpu") -> Tensor:
    """Baseline: l(x, y) times the audio classifier's probability of each class: (N, C, H, W)."""
    size = split.inputs["visual"].shape[-1]
    chunks = []
    for _, out in _batches(model, split, batch_size, device):
        prob = cluster_to_class(torch.softmax(out.audio_logits, dim=1), assignment, num_classes)
        chunks.append((prob[:, :, None, None] * model.av_map(out.visual_embed, out.audio_embed)[:, None]).cpu())
    return upsample(torch.cat(chunks), size)


def random_class_maps(n: int, num_classes: int, low_size: int, size: int, generator: torch.Generator) -> Tensor:
    """Baseline: softmax_k(3 z) of Gaussian noise z at the feature resolution, upsampled: (n, C, H, W)."""
    z = torch.randn(n, num_classes, low_size, low_size, generator=generator)
    return upsample(torch.softmax(TEMPERATURE * z, dim=1), size)


def centre_prior(n: int, size: int, sigma: float = 0.25) -> Tensor:
    """Baseline: a centred isotropic Gaussian of std ``sigma x size`` for every scene: (n, H, W)."""
    r = (torch.arange(size, dtype=torch.float64) + 0.5 - size / 2) / (sigma * size)
    g = torch.exp(-0.5 * (r[:, None] ** 2 + r[None, :] ** 2))
    return g.float().expand(n, size, size).clone()
