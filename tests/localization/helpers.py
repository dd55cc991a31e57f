"""Tiny scenes and a small SoundingNet for the localization tests."""
from __future__ import annotations

import functools

import torch

import mmlib as mm
from mmlib.data.scenes import SceneSplit
from mmlib.localization.model import LocOutput, SoundingNet


@functools.lru_cache(maxsize=None)
def tiny(kind: str = "solo", n: int = 60):
    """A small ``av-solo`` or ``av-cocktail`` dataset (cached: tests must not change it)."""
    return mm.load_dataset(f"av-{kind}", n_scenes=n)


def small_net(data, **kwargs) -> SoundingNet:
    return mm.build_model(data, model="sounding-net", **{"width": 4, "embed_dim": 6, **kwargs})


def embeddings(visual: list, audio: list) -> LocOutput:
    """A ``LocOutput`` whose embeddings are given: visual (B, E, h, w) and audio (B, E) as nested lists."""
    v, a = torch.tensor(visual, dtype=torch.float32), torch.tensor(audio, dtype=torch.float32)
    return LocOutput(v, None, v, a, None, None)


def relabel(data, y_of):
    """The same dataset with the training labels replaced by ``y_of(y)`` (inputs and truth unchanged)."""
    from dataclasses import replace

    t = data.train
    return replace(data, train=SceneSplit(t.inputs, y_of(t.y), t.index, t.truth))
