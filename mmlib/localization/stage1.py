"""Stage one: audio-visual correspondence on solo scenes, a task for ``fit``.

The correspondence score of an (audio, frame) pair is the peak of its map,
p = max_{x,y} l(x, y), and L_loc1 = BCE(p, y) with y = 1 for a scene's audio with its own frame
and y = 0 for the audio with another scene's frame (hu2021csol; sounding_localization.md §4.1).

``negatives="one"`` is the paper's batch: B positive pairs and B negatives (each audio with the
frame of the scene before it in the shuffled batch), one mean over the 2B pairs.
``negatives="all"`` (our default) pairs every audio with every other frame of the batch: the B
positives and the B(B - 1) negatives are each averaged, and L_loc1 is the mean of the two. It
costs one B x B table of cosines per batch and gives each audio B - 1 contrasts instead of one;
at our CPU budget (a few epochs, a backbone trained from scratch) stage one learns far faster
with it. Measured with the default profile (8 epochs, batch 32, training seeds 0, 1, 2, portable
numerics), test solo scenes, in %, mean ± std over seeds, ``"one"`` against ``"all"``: IoU@0.5
6.7 ± 0.7 against 38.0 ± 25.2, AUC 32.4 ± 1.2 against 42.8 ± 10.1, purity of the last clustering
57.6 ± 7.2 against 79.0 ± 1.8, matched audio-classifier accuracy 63.9 ± 12.2 against 86.5 ± 5.7
(validation pair accuracy 79.0 ± 2.6 against 84.4 ± 1.0). In both, negatives come from any other
scene, as the spec recommends for strictly label-free training (about one in ten has the same
class by chance); the official MUSIC code draws them from a video of a different instrument
class, which uses class metadata.

The task's ``evaluate`` scores a solo split: IoU@0.5 and AUC of the maps (``metrics.py``) and
the accuracy of matched vs mismatched pairs. ``select = None``: the last epoch is kept, as the
paper trains a fixed schedule. The object dictionary and the pseudo-label classifiers of stage
one are a method, ``ObjectDictionary`` (``dictionary.py``), which adds its losses to this one.

Reference: notebook ``notebooks/sounding_localization.ipynb``.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..registry import TASKS
from ..task import Task
from .maps import solo_maps
from .metrics import solo_scores


def peak(maps: Tensor) -> Tensor:
    """p = max over positions of each map: (B, h, w) -> (B,)."""
    return maps.flatten(1).amax(dim=1)


NEGATIVES = ("one", "all")


def pair_peaks(model, out) -> Tensor:
    """p for every (audio j, frame i) pair of a batch: (B, B), matched pairs on the diagonal."""
    v = F.normalize(out.visual_embed, dim=1, eps=1e-8)
    a = F.normalize(out.audio_embed, dim=1, eps=1e-8)
    cos = torch.einsum("iehw,je->jihw", v, a)
    return torch.sigmoid(model.map_scale * cos).flatten(2).amax(dim=2)


def correspondence_loss(model, out, negatives: str = "all") -> Tensor:
    """L_loc1 of one batch (see the module docstring).

    A batch of one scene has no other scene to pair with; it gives the positive term only.
    """
    p_pos = peak(model.av_map(out.visual_embed, out.audio_embed))
    if len(p_pos) < 2:
        return F.binary_cross_entropy(p_pos, torch.ones_like(p_pos))
    if negatives == "one":
        p_neg = peak(model.av_map(out.visual_embed.roll(1, dims=0), out.audio_embed))
        p = torch.cat([p_pos, p_neg])
        return F.binary_cross_entropy(p, torch.cat([torch.ones_like(p_pos), torch.zeros_like(p_neg)]))
    p = pair_peaks(model, out)
    off = ~torch.eye(len(p), dtype=torch.bool, device=p.device)
    pos = F.binary_cross_entropy(p_pos, torch.ones_like(p_pos))
    return 0.5 * (pos + F.binary_cross_entropy(p[off], torch.zeros_like(p[off])))


@TASKS.register("av-correspondence")
class Correspondence(Task):
    """Stage one's task: ``loss`` is L_loc1; ``evaluate`` gives ``iou@0.5``, ``auc``, ``miou``, ``pair_acc``.

    Args:
        negatives: ``"all"`` (every other frame of the batch) or ``"one"`` (the paper's one per audio).
    """

    select = None

    def __init__(self, negatives: str = "all"):
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {NEGATIVES}, got {negatives!r}")
        self.negatives = negatives

    def loss(self, state, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        return {"loc": correspondence_loss(state.model, out, self.negatives)}

    def evaluate(self, model, split, data, device) -> dict[str, float]:
        maps, p_pos, p_neg = solo_maps(model, split, device=device, pairs=True)
        scores = solo_scores(maps, split.truth)
        pair_acc = 0.5 * (float((p_pos > 0.5).float().mean()) + float((p_neg <= 0.5).float().mean()))
        return {**scores, "pair_acc": pair_acc}

    def __repr__(self) -> str:
        return f"Correspondence(negatives={self.negatives!r})"
