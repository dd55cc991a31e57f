"""The two-stage method over seeds: two ``fit`` calls per seed, then every map scored on the test scenes.

``run(solo, cocktail, seeds=..., stage1=..., stage2=...)`` trains, for each seed,

1. stage one on the solo scenes: ``fit(SoundingNet, solo, [ObjectDictionary()], task=Correspondence())``;
2. the cluster-to-class matching from the stage-one audio classifier on the **validation** solo
   scenes (evaluation only; ``matching.py``);
3. stage two on the cocktail scenes, once per entry of ``variants`` (label -> keyword
   arguments of ``ClassAwareLocalization``, e.g. ``{"suppress": False}``), each from a copy of
   the same stage-one model: ``fit(copy, cocktail, task=ClassAwareLocalization(stage_one, ...))``;

and scores on the **test** scenes:

* solo (IoU@0.5, AUC, mean IoU): ``centre prior``, ``untrained`` (the network before stage
  one), ``stage 1``;
* cocktail (CIoU@0.3, CIoU@0.5, AUC, NSA): ``random``, ``class-agnostic`` (stage-one l times the
  audio class probability), ``dictionary only`` (the class maps of the stage-one model, before any
  stage-two training), each variant with the suppression it was trained with, and each variant
  trained with suppression once more with its test maps computed without l (``<label>, no l at test``).

The stage-one rows also carry the dictionary's quality: purity and NMI of the last k-means
against the true classes on the training scenes (logged), and the test accuracy of the audio
and visual classifiers after the matching (``cls/audio``, ``cls/visual``).

Reference: notebook ``notebooks/sounding_localization.ipynb``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd
import torch

from ..checks import check_seeds
from ..models import build_model
from ..repro import derive_seed, seed_everything
from ..train import FitResult, fit
from . import maps as M
from .dictionary import ObjectDictionary, predicted_clusters
from .matching import match_clusters
from .metrics import cocktail_scores, solo_scores
from .stage1 import Correspondence
from .stage2 import ClassAwareLocalization


@dataclass
class SeedResult:
    """What one seed leaves for figures: the fitted stages and the matching."""

    seed: int
    stage1: FitResult
    stage2: dict[str, FitResult]
    assignment: np.ndarray
    untrained: torch.nn.Module


@dataclass
class LocalizationRuns:
    """Scores of every map on the test scenes (one row per seed, scenes and label) and the fits."""

    table: pd.DataFrame
    results: list[SeedResult] = field(default_factory=list)

    @property
    def logs(self) -> pd.DataFrame:
        """The stage-one method logs of every seed (dictionary purity and NMI per clustering)."""
        frames = [r.stage1.log.assign(seed=r.seed) for r in self.results]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def curves(self) -> pd.DataFrame:
        """Per-epoch loss and validation metrics of every fit: stage ("1" or a variant label) and seed."""
        frames = [r.stage1.curves.assign(stage="1", seed=r.seed) for r in self.results]
        frames += [f.curves.assign(stage=label, seed=r.seed) for r in self.results for label, f in r.stage2.items()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _row(seed: int, scenes: str, label: str, scores: dict[str, float], **extra: Any) -> dict[str, Any]:
    return {"seed": seed, "scenes": scenes, "label": label, **scores, **extra}


def run(solo, cocktail, *, seeds: Iterable[int] = (0,), stage1: dict[str, Any], stage2: dict[str, Any],
        variants: dict[str, dict[str, Any]] | None = None, dictionary: dict[str, Any] | None = None,
        model_kwargs: dict[str, Any] | None = None, negatives: str = "all", keep: bool = True) -> LocalizationRuns:
    """Both stages for every seed, scored on the test scenes (see the module docstring).

    Args:
        solo, cocktail: ``av-solo`` and ``av-cocktail`` datasets (the same ``data_seed``, so
            their test objects are held out of both training sets).
        stage1, stage2: keyword arguments of ``fit`` for each stage (``num_epochs``, ``lr``, ...,
            ``device``), e.g. ``cfg.train("av-solo")`` and ``cfg.train("av-cocktail")``.
        variants: stage-two trainings, label -> ``ClassAwareLocalization`` keywords (default:
            ``{"stage 2": {}}``, the paper's setting).
        dictionary: ``ObjectDictionary`` keywords; model_kwargs: ``sounding_net`` keywords.
        negatives: stage one's negatives, ``Correspondence(negatives=...)``.
    """
    seeds = check_seeds(seeds)
    stage1, stage2 = dict(stage1), dict(stage2)
    device = stage1.get("device", "cpu")
    for name, part in (("solo", solo), ("cocktail", cocktail)):
        if not hasattr(part.test, "truth"):
            raise TypeError(f"{name} must be a scenes dataset (mm.load_dataset('av-{name}')), got {part.name!r}")
    variants = variants if variants is not None else {"stage 2": {}}
    task_one = Correspondence(negatives)  # checks the name before any training
    num_classes = solo.num_classes
    rows, results = [], []
    for seed in seeds:
        seed_everything(seed)
        model = build_model(solo, model="sounding-net", **(model_kwargs or {}))
        untrained = copy.deepcopy(model)
        one = fit(model, solo, [ObjectDictionary(**(dictionary or {}))], task=task_one, seed=seed, **stage1)
        k = one.model.num_clusters
        assignment = match_clusters(predicted_clusters(one.model, solo.val, device=device)["audio"],
                                    solo.val.y.numpy(), k, num_classes)

        size, n = solo.test.inputs["visual"].shape[-1], len(solo.test)
        log = one.log
        last = {name: log.loc[log["name"] == f"dictionary/{name}", "value"] for name in ("purity", "nmi")}
        test_clusters = predicted_clusters(one.model, solo.test, device=device)
        matched = {f"cls/{m}": float((assignment[c] == solo.test.y.numpy()).mean()) for m, c in test_clusters.items()}
        rows += [_row(seed, "solo", "centre prior", solo_scores(M.centre_prior(n, size), solo.test.truth)),
                 _row(seed, "solo", "untrained", solo_scores(M.solo_maps(untrained, solo.test), solo.test.truth)),
                 _row(seed, "solo", "stage 1", solo_scores(M.solo_maps(one.model, solo.test, device=device),
                                                           solo.test.truth),
                      purity=last["purity"].iloc[-1] if len(last["purity"]) else np.nan,
                      nmi=last["nmi"].iloc[-1] if len(last["nmi"]) else np.nan, seconds=one.seconds, **matched)]

        test, truth = cocktail.test, cocktail.test.truth
        big = test.inputs["visual"].shape[-1]
        low = one.model.visual(test.inputs["visual"][:1].to(device)).shape[-1]
        gen = torch.Generator().manual_seed(derive_seed(seed, "random maps"))
        rows += [_row(seed, "cocktail", "random",
                      cocktail_scores(M.random_class_maps(len(test), num_classes, low, big, gen), truth)),
                 _row(seed, "cocktail", "class-agnostic",
                      cocktail_scores(M.agnostic_class_maps(one.model, test, assignment, num_classes, device=device),
                                      truth)),
                 _row(seed, "cocktail", "dictionary only",
                      cocktail_scores(M.class_maps(one.model, test, assignment, num_classes, device=device), truth))]
        two = {}
        for label, kwargs in variants.items():
            task = ClassAwareLocalization(one.model, assignment, **kwargs)
            two[label] = fit(copy.deepcopy(one.model), cocktail, task=task, seed=seed, **stage2)
            suppress = kwargs.get("suppress", True)
            maps = M.class_maps(two[label].model, test, assignment, num_classes, suppress=suppress, device=device)
            rows.append(_row(seed, "cocktail", label, cocktail_scores(maps, truth), seconds=two[label].seconds))
            if suppress:
                maps = M.class_maps(two[label].model, test, assignment, num_classes, suppress=False, device=device)
                rows.append(_row(seed, "cocktail", f"{label}, no l at test", cocktail_scores(maps, truth)))
        if keep:
            results.append(SeedResult(seed, one, two, assignment, untrained))
    return LocalizationRuns(pd.DataFrame(rows), results)
