"""A modality made of pure noise: the scarcely informative input of the Diagnosing & Re-learning chapter.

``with_noise(data, "fou")`` replaces one modality by noise; ``with_noise(data, "fou", name="noise")``
keeps every modality and adds a new one shaped like ``fou`` (M + 1 modalities). Either way the
noise carries no information about the label, and the given dataset is left as it was.

Reference: notebook ``notebooks/diagnosing_relearning.ipynb``.
"""
from __future__ import annotations

import torch

from ..checks import check_int
from .base import MultimodalDataset, Split


def with_noise(data: MultimodalDataset, modality: str, name: str | None = None, seed: int = 0) -> MultimodalDataset:
    """A new dataset in which one modality holds Gaussian noise instead of data.

    Every input element of the noise has the mean and standard deviation of the same element of
    ``modality``'s training inputs, so it looks like that modality to the encoder (same shape and
    scale) but is drawn independently of everything, labels included: one draw per sample and
    split, from a generator seeded by ``seed``. The other modalities' tensors, the labels and the
    ids are shared with ``data``, never copied or changed; the new dataset has its own splits.

    Args:
        modality: the modality whose shape and scale the noise takes.
        name: ``None`` replaces ``modality`` by the noise; a new name adds the noise as an extra,
            last modality with ``modality``'s encoder (``modality`` keeps its data).
        seed: seeds the noise.

    The dataset is named ``"<name>+noise"``; ``info["noise"]`` records what was done. ``weak``
    is kept unless the weak modality itself was replaced.
    """
    if not isinstance(data, MultimodalDataset):
        raise TypeError(f"with_noise needs a MultimodalDataset (e.g. mm.load_dataset('mfeat')), "
                        f"got {type(data).__name__}")
    if modality not in data.modalities:
        raise ValueError(f"with_noise: unknown modality {modality!r}; {data.name} has {data.modalities}")
    target = modality if name is None else name
    if not isinstance(target, str) or not target:
        raise TypeError(f"with_noise: name must be None or a non-empty string, got {name!r}")
    if name is not None and name in data.modalities:
        raise ValueError(f"with_noise: {data.name} already has a modality {name!r}; pick a new name for the noise, "
                         f"or name=None to replace {modality!r}")
    check_int("seed", seed, low=0)
    x = data.train.inputs[modality]
    mean, std = x.float().mean(0), x.float().std(0)
    gen = torch.Generator().manual_seed(seed)

    def noisy(split: Split) -> Split:
        draw = torch.randn((len(split), *mean.shape), generator=gen).mul_(std).add_(mean).to(x.dtype)
        return Split({**split.inputs, target: draw}, split.y, split.index)

    modalities = data.modalities if name is None else (*data.modalities, name)
    encoders = {**data.encoders, target: data.encoders[modality]}
    weak = None if data.weak == target else data.weak
    info = {**data.info, "noise": {"modality": target, "like": modality, "seed": seed}}
    return MultimodalDataset(f"{data.name}+noise", modalities, data.num_classes, noisy(data.train), noisy(data.val),
                             noisy(data.test), {m: encoders[m] for m in modalities}, list(data.class_names), info, weak)
