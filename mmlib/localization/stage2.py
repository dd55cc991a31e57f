"""Stage two: class-aware localization on cocktail-party scenes, a task for ``fit``.

For a mosaic with its mixed audio (hu2021csol; sounding_localization.md §5):

1. class-aware object maps M_k(x, y) = w_o <V_xy, d_k> + b_o from the stage-one dictionary;
2. silent-object suppression M~_k = M_k l, with l the audio-visual map of this audio
   (``suppress=False`` drops the product: the ablation);
3. the visual category distribution q = softmax_k(mean_{x,y} M~_k);
4. the audio category distribution π = softmax of the **frozen stage-one model's** audio
   classifier logits (temperature 1);
5. the category-level consistency L_cat = KL(π ‖ q), an element mean over the B·K entries
   (the scale the 0.5 weight was tuned for; spec §9.7);
6. the multi-source localization loss: the positive pair (the mosaic with its own audio) pushes
   max l to 1, the negative (the same audio with the mosaic before it in the batch) pushes each of
   the four quadrant maxima of l to 0; L_loc2 = ½ (BCE_pos + BCE_neg);
7. L_2 = L_cat + 0.5 L_loc2 (``loc_weight``). Every parameter of the model trains; the
   dictionary is a buffer and stays fixed.

``use_cat=False`` drops L_cat (the second ablation of spec §10.4). No label is read in training.
``evaluate`` scores a cocktail split with the class maps (``maps.class_maps``) mapped to classes
by ``assignment`` (``matching.py``; evaluation only): ``ciou@0.3``, ``ciou@0.5``, ``auc``,
``nsa``. ``select = None``: the last epoch is kept (a fixed schedule, as in the paper).

Reference: notebook ``notebooks/sounding_localization.ipynb``.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_real
from ..registry import TASKS
from ..task import Task
from .maps import class_maps
from .metrics import cocktail_scores
from .stage1 import peak


def visual_distribution(model, out, suppress: bool = True) -> Tensor:
    """log q: the log-softmax over k of the spatial mean of M~_k (B, K)."""
    m = model.object_maps(out)
    if suppress:
        m = m * model.av_map(out.visual_embed, out.audio_embed)[:, None]
    return F.log_softmax(m.mean(dim=(2, 3)), dim=1)


def category_consistency(log_q: Tensor, pi: Tensor) -> Tensor:
    """L_cat = KL(π ‖ q), averaged over all B·K elements: sum π (log π - log q) / (B K), with 0 log 0 = 0.

    (``F.kl_div(..., reduction="mean")`` computes the same today, but is announced to become a batch mean.)
    """
    return (torch.xlogy(pi, pi) - pi * log_q).mean()


def multisource_loss(model, out) -> Tensor:
    """½ (BCE(max l_pos, 1) + mean over the 4 quadrants of BCE(max l_neg, 0)); negatives by rolling the frames."""
    l_pos = model.av_map(out.visual_embed, out.audio_embed)
    pos = F.binary_cross_entropy(peak(l_pos), torch.ones(len(l_pos), device=l_pos.device))
    if len(l_pos) < 2:
        return 0.5 * pos
    l_neg = model.av_map(out.visual_embed.roll(1, dims=0), out.audio_embed)
    quadrants = F.adaptive_max_pool2d(l_neg[:, None], 2).flatten(1)  # (B, 4)
    return 0.5 * (pos + F.binary_cross_entropy(quadrants, torch.zeros_like(quadrants)))


@TASKS.register("class-aware-localization")
class ClassAwareLocalization(Task):
    """Stage two's task (see the module docstring).

    Args:
        teacher: the trained stage-one model; a frozen copy gives π.
        assignment: cluster -> class for ``evaluate`` (``match_clusters``); None: no metrics.
        loc_weight: the weight of L_loc2 (paper: 0.5).
        suppress: multiply M_k by l in training (paper: yes).
        use_cat: include L_cat (paper: yes).
    """

    select = None

    def __init__(self, teacher, assignment: np.ndarray | None = None, loc_weight: float = 0.5,
                 suppress: bool = True, use_cat: bool = True):
        if not hasattr(teacher, "audio_classifier"):
            raise TypeError(f"teacher must be the stage-one SoundingNet, got {type(teacher).__name__}")
        check_real("loc_weight", loc_weight, low=0)
        self.teacher = copy.deepcopy(teacher).eval().requires_grad_(False)
        self.assignment = None if assignment is None else np.asarray(assignment)
        self.loc_weight, self.suppress, self.use_cat = loc_weight, suppress, use_cat

    def audio_distribution(self, audio: Tensor) -> Tensor:
        """π = softmax of the frozen stage-one audio classifier: (B, K)."""
        self.teacher.to(audio.device)
        with torch.no_grad():
            return torch.softmax(self.teacher.audio_classifier(self.teacher.audio_features(audio)), dim=1)

    def loss(self, state, out, batch: dict[str, Any]) -> dict[str, Tensor]:
        model = state.model
        losses = {"loc": self.loc_weight * multisource_loss(model, out)}
        if self.use_cat:
            pi = self.audio_distribution(batch["inputs"]["audio"])
            losses["cat"] = category_consistency(visual_distribution(model, out, self.suppress), pi)
        return losses

    def evaluate(self, model, split, data, device) -> dict[str, float]:
        if self.assignment is None:
            return {}
        maps = class_maps(model, split, self.assignment, data.num_classes, suppress=True, device=device)
        return cocktail_scores(maps, split.truth)

    def __repr__(self) -> str:
        return (f"ClassAwareLocalization(loc_weight={self.loc_weight}, suppress={self.suppress}, "
                f"use_cat={self.use_cat})")
