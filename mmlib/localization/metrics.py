"""Localization metrics of hu2021csol (sounding_localization.md §7), on maps and ground-truth masks.

Single source (solo scenes), per image: binarise the map at ``0.1 x`` its maximum (strictly
above, so an all-zero map localizes nothing) and take the IoU with the union G of the
ground-truth boxes, ``|P ∩ G| / |P ∪ G|``. Over images: **IoU@0.5**, the fraction of images
with IoU >= 0.5, and **AUC**, the area under the success-rate curve ``t -> mean(IoU >= t)``
over t = 0, 0.05, ..., 1 (trapezoidal rule).

Multi source (cocktail scenes), per image: for each **sounding** class c, binarise c's map at
``0.5 x`` its maximum and take the IoU with c's boxes; the image's **CIoU** is the mean over its
sounding classes. Over images: **CIoU@0.3** (the papers' "CIoU"), CIoU@0.5 and the AUC as
above. **NSA** (no-sounding-area): for every class channel that does not sound in the image
(silent objects and absent classes alike), the fraction of pixels with value <= 0.2 (absolute);
the mean over those channels, then over images. Higher is better for all of them.

An image whose prediction and ground truth are both empty has IoU 0 (the scenes always have a
box, so this is only a guard). All functions take torch tensors and return floats or (N,)
tensors.

Reference: notebook ``notebooks/sounding_localization.ipynb``.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..data.scenes import box_masks

THRESHOLDS = tuple(np.round(np.arange(21) * 0.05, 2))  # 0, 0.05, ..., 1: the success-rate curve


def binarize(maps: Tensor, frac: float) -> Tensor:
    """``maps > frac * max`` per map: (..., H, W) -> bool of the same shape."""
    top = maps.flatten(-2).amax(dim=-1)[..., None, None]
    return maps > frac * top


def iou(pred: Tensor, gt: Tensor) -> Tensor:
    """Intersection over union of boolean masks (..., H, W) -> (...); 0 where both are empty."""
    inter = (pred & gt).flatten(-2).sum(-1).double()
    union = (pred | gt).flatten(-2).sum(-1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.zeros_like(inter))


def success_rate(ious: Tensor, t: float) -> float:
    """The fraction of images with IoU >= t."""
    return float((ious >= t - 1e-12).double().mean())


def success_auc(ious: Tensor, thresholds=THRESHOLDS) -> float:
    """Area under the success-rate curve over ``thresholds`` (trapezoidal rule)."""
    rates = np.array([success_rate(ious, t) for t in thresholds])
    t = np.asarray(thresholds, dtype=np.float64)
    return float(np.sum((rates[1:] + rates[:-1]) / 2 * np.diff(t)))


def truth_masks(truth: dict[str, Tensor], size: int, num_classes: int) -> tuple[Tensor, Tensor]:
    """Per class: the union of its objects' box masks (N, C, H, W) and whether it sounds (N, C)."""
    boxes = box_masks(truth["boxes"], size)  # (N, Q, H, W)
    n, q = truth["classes"].shape
    masks = torch.zeros(n, num_classes, size, size, dtype=torch.bool)
    sounding = torch.zeros(n, num_classes, dtype=torch.bool)
    rows = torch.arange(n)
    for j in range(q):
        cls = truth["classes"][:, j]
        masks[rows, cls] |= boxes[:, j]
        sounding[rows, cls] |= truth["sounding"][:, j]
    return masks, sounding


def class_ious(class_maps: Tensor, masks: Tensor, sounding: Tensor, frac: float = 0.5) -> Tensor:
    """Each image's CIoU: the mean IoU over its sounding classes (N, C, H, W) -> (N,)."""
    per_class = iou(binarize(class_maps, frac), masks)  # (N, C)
    counts = sounding.sum(1).double()
    return (per_class * sounding).sum(1) / counts.clamp_min(1)


def no_sound_area(class_maps: Tensor, sounding: Tensor, level: float = 0.2) -> Tensor:
    """Each image's NSA: over its non-sounding class channels, the mean fraction of pixels <= ``level``."""
    quiet = (class_maps <= level).flatten(-2).double().mean(-1)  # (N, C)
    silent = ~sounding
    return (quiet * silent).sum(1) / silent.sum(1).double().clamp_min(1)


def solo_scores(maps: Tensor, truth: dict[str, Tensor], frac: float = 0.1) -> dict[str, float]:
    """IoU@0.5, AUC and mean IoU of single-source maps (N, H, W) against the union of the boxes."""
    gt = box_masks(truth["boxes"], maps.shape[-1]).any(dim=1)
    ious = iou(binarize(maps, frac), gt)
    return {"iou@0.5": success_rate(ious, 0.5), "auc": success_auc(ious), "miou": float(ious.mean())}


def cocktail_scores(class_maps: Tensor, truth: dict[str, Tensor], frac: float = 0.5,
                    level: float = 0.2) -> dict[str, float]:
    """CIoU@0.3, CIoU@0.5, AUC and NSA of class maps (N, C, H, W) on multi-source scenes."""
    masks, sounding = truth_masks(truth, class_maps.shape[-1], class_maps.shape[1])
    cious = class_ious(class_maps, masks, sounding, frac)
    return {"ciou@0.3": success_rate(cious, 0.3), "ciou@0.5": success_rate(cious, 0.5),
            "auc": success_auc(cious), "nsa": float(no_sound_area(class_maps, sounding, level).mean())}


def object_peaks(maps: Tensor, truth: dict[str, Tensor]) -> Tensor:
    """The maximum of each scene's map (N, H, W) inside each object's box: (N, Q).

    A diagnostic of the audio-visual map l on mosaics: which objects it lights up (sounding or
    silent, from ``truth["sounding"]``).
    """
    boxes = box_masks(truth["boxes"], maps.shape[-1])  # (N, Q, H, W)
    inside = torch.where(boxes, maps[:, None], torch.full_like(maps[:, None], -torch.inf))
    return inside.flatten(2).amax(dim=2)
