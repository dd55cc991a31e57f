"""Corruptions of the survey's low-quality challenges, as transforms of a dataset's splits.

Three kinds, each a pure function that returns a new split or dataset and never changes its
input in place (corrupted modalities are new tensors; untouched ones are shared, unchanged):

* **noisy**: ``x^m + s^m * sigma^m * eps``, eps ~ N(0, I), with the strength s^m in units of
  sigma^m, the standard deviation of all values of modality m in the clean training split
  (so s = 1 adds noise as strong as the signal's own spread);
* **incomplete**: a fraction ``rate`` of the samples lose one modality each (chosen uniformly
  among the candidates, so no sample loses every modality); the missing input is replaced by a
  fill value: zeros (**zero-filling**) or the training split's mean input (**mean imputation**);
* **quality-varying**: every sample gets noise on one modality, chosen uniformly, with a
  strength drawn uniformly from [0, max_strength], so which modality is better changes from
  sample to sample.

The dataset-level functions (``noisy``, ``incomplete``, ``quality_varying``) take their
statistics (sigma^m, the mean input) from the clean training split, corrupt the splits they are
asked to (all three by default; ``splits=("test",)`` for a test-time corruption), and record
what they did in ``info["corruption"]``: one entry per call, with each split's per-sample
strengths or presence masks (``per_sample(data, split)``). Each split gets its own random draw,
derived from ``seed`` and the split's name; the noise of one modality does not depend on the
strength or on the other modalities, so a sweep over strengths scales one fixed draw.

Where inputs are standardised feature by feature with training statistics (``mfeat``), the
training mean is zero, so zero-filling and mean imputation give the same input there.

Reference: zhang2024lowquality; notebooks ``notebooks/noisy.ipynb``, ``notebooks/incomplete.ipynb``,
``notebooks/quality_varying.ipynb``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
from torch import Tensor

from .checks import check_choice, check_int, check_names, check_real
from .data.base import MultimodalDataset, Split
from .repro import derive_seed

SPLITS = ("train", "val", "test")
FILLS = ("zero", "mean")


# --- building blocks on one split ------------------------------------------------------------

def modality_scale(split: Split, modality: str) -> float:
    """sigma^m: the standard deviation of all values of one modality in ``split`` (float64)."""
    x = split.inputs[modality].double()
    return float(x.std(unbiased=False)) if x.numel() > 1 else 0.0


def fill_values(split: Split, fill: str) -> dict[str, Tensor]:
    """Per modality, the input that replaces a missing one: zeros, or the mean input of ``split``."""
    check_choice("fill", fill, FILLS)
    return {m: torch.zeros_like(x[0]) if fill == "zero" else x.double().mean(0).to(x.dtype)
            for m, x in split.inputs.items()}


def _generator(seed: int, *names: object) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(seed, *names))


def gaussian_noise(split: Split, std: Mapping[str, float | Tensor], seed: int) -> Split:
    """``x^m + std^m * eps^m``: absolute noise std per modality, a number or one value per sample (N,).

    eps^m ~ N(0, I) comes from a generator seeded by ``seed`` and the modality's name.
    """
    check_int("seed", seed, low=0)
    inputs = dict(split.inputs)
    for m, s in std.items():
        _check_modality(split, m)
        x = split.inputs[m]
        s = torch.as_tensor(s, dtype=torch.float64)
        if s.dim() == 1 and len(s) != len(split):
            raise ValueError(f"noise std of {m!r} has {len(s)} values; give one number or one per sample "
                             f"({len(split)})")
        if s.dim() > 1 or not torch.isfinite(s).all() or (s < 0).any():
            raise ValueError(f"noise std of {m!r} must be a non-negative number or a 1-D tensor of them")
        eps = torch.randn(x.shape, generator=_generator(seed, "noise", m), dtype=x.dtype)
        inputs[m] = x + s.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1))) * eps
    return Split(inputs, split.y, split.index)


def missing_mask(n: int, rate: float, modalities: tuple[str, ...], candidates: tuple[str, ...] | None = None,
                 generator: torch.Generator | None = None, exact: bool = True) -> dict[str, Tensor]:
    """Which inputs are present: modality -> bool (n,), False where the sample lost that modality.

    ``round(rate * n)`` samples (``exact``; else each sample with probability ``rate``) lose one
    modality each, drawn uniformly from ``candidates`` (default: all). With one candidate only
    that modality goes missing. At least one modality of every sample stays present as long as
    there are two or more modalities.
    """
    check_int("n", n, low=0)
    check_real("rate", rate, low=0, high=1)
    candidates = tuple(candidates or modalities)
    unknown = [m for m in candidates if m not in modalities]
    if unknown:
        raise ValueError(f"unknown modality {unknown[0]!r}; the data has {modalities}")
    if len(modalities) < 2 and rate > 0:
        raise ValueError("a missing modality needs at least two modalities, or every input of a sample is gone")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    if exact:
        lost = torch.zeros(n, dtype=torch.bool)
        lost[torch.randperm(n, generator=gen)[:round(rate * n)]] = True
    else:
        lost = torch.rand(n, generator=gen) < rate
    which = torch.randint(len(candidates), (n,), generator=gen)
    return {m: ~(lost & (which == candidates.index(m))) if m in candidates else torch.ones(n, dtype=torch.bool)
            for m in modalities}


def impute(split: Split, present: Mapping[str, Tensor], fill: Mapping[str, Tensor]) -> Split:
    """Replace every absent input (``present[m][i]`` False) with ``fill[m]``; present inputs are kept."""
    inputs = dict(split.inputs)
    for m, keep in present.items():
        _check_modality(split, m)
        keep = torch.as_tensor(keep, dtype=torch.bool)
        if keep.shape != (len(split),):
            raise ValueError(f"presence mask of {m!r} must have shape ({len(split)},), got {tuple(keep.shape)}")
        if keep.all():
            continue
        x = split.inputs[m]
        value = torch.as_tensor(fill[m], dtype=x.dtype).expand_as(x[0])
        inputs[m] = torch.where(keep.reshape(-1, *([1] * (x.dim() - 1))), x, value)
    return Split(inputs, split.y, split.index)


def quality_levels(n: int, modalities: tuple[str, ...], max_strength: float,
                   generator: torch.Generator) -> dict[str, Tensor]:
    """Per-sample strengths (float64, (n,) per modality): one modality per sample, drawn
    uniformly, gets a strength ~ U(0, max_strength); the others get 0."""
    check_real("max_strength", max_strength, low=0)
    which = torch.randint(len(modalities), (n,), generator=generator)
    level = torch.rand(n, generator=generator, dtype=torch.float64) * max_strength
    return {m: torch.where(which == i, level, torch.zeros_like(level)) for i, m in enumerate(modalities)}


def _check_modality(split: Split, modality: str) -> None:
    if modality not in split.inputs:
        raise ValueError(f"unknown modality {modality!r}; the split has {tuple(split.inputs)}")


# --- on a dataset: statistics from the clean training split ----------------------------------

def _check_splits(splits: Any) -> tuple[str, ...]:
    splits = check_names("splits", splits, "('train', 'val', 'test')")
    for s in splits:
        check_choice("split", s, SPLITS)
    if not splits:
        raise ValueError("splits must name at least one of 'train', 'val', 'test'")
    return splits


def _with(data: MultimodalDataset, new: dict[str, Split], record: dict[str, Any]) -> MultimodalDataset:
    info = {**data.info, "corruption": [*data.info.get("corruption", []), record]}
    return dataclasses.replace(data, **new, info=info)


def noisy(data: MultimodalDataset, strength: Mapping[str, float], *, seed: int = 0,
          splits: tuple[str, ...] | list[str] = SPLITS) -> MultimodalDataset:
    """Gaussian noise of strength s^m (in units of sigma^m of the clean training split) on some modalities.

    ``noisy(data, {"audio": 1.0})`` makes audio noisy in every split; ``splits=("test",)`` only
    at test time. ``per_sample`` gives s^m for every sample.
    """
    splits = _check_splits(splits)
    check_int("seed", seed, low=0)
    if not isinstance(strength, Mapping) or not strength:
        raise TypeError(f"strength must map modality names to strengths, e.g. {{'{data.modalities[0]}': 1.0}}, "
                        f"got {strength!r}")
    for m, s in strength.items():
        _check_modality(data.train, m)
        check_real(f"strength of {m!r}", s, low=0)
    scale = {m: modality_scale(data.train, m) for m in strength}
    new, per = {}, {}
    for name in splits:
        split = getattr(data, name)
        per[name] = {m: torch.full((len(split),), float(s), dtype=torch.float64) for m, s in strength.items()}
        new[name] = gaussian_noise(split, {m: s * scale[m] for m, s in strength.items()},
                                   derive_seed(seed, "noisy", name))
    return _with(data, new, {"kind": "noisy", "strength": dict(strength), "scale": scale, "seed": seed,
                             "splits": splits, "per_sample": per})


def incomplete(data: MultimodalDataset, rate: float, *, modalities: tuple[str, ...] | list[str] | None = None,
               fill: str = "zero", seed: int = 0,
               splits: tuple[str, ...] | list[str] = SPLITS) -> MultimodalDataset:
    """A fraction ``rate`` of each split's samples lose one of ``modalities`` (default: any), filled by ``fill``.

    ``fill="zero"`` puts zeros in place of the missing input, ``fill="mean"`` the mean input of
    the clean training split. ``per_sample`` gives the presence masks.
    """
    splits = _check_splits(splits)
    check_int("seed", seed, low=0)
    check_real("rate", rate, low=0, high=1)
    check_choice("fill", fill, FILLS)
    candidates = data.modalities if modalities is None else check_names("modalities", modalities, "['audio']")
    for m in candidates:
        _check_modality(data.train, m)
    values = fill_values(data.train, fill)
    new, per = {}, {}
    for name in splits:
        split = getattr(data, name)
        per[name] = missing_mask(len(split), rate, data.modalities, candidates,
                                 _generator(seed, "incomplete", name))
        new[name] = impute(split, per[name], values)
    return _with(data, new, {"kind": "incomplete", "rate": rate, "modalities": candidates, "fill": fill,
                             "seed": seed, "splits": splits, "per_sample": per})


def quality_varying(data: MultimodalDataset, max_strength: float, *,
                    modalities: tuple[str, ...] | list[str] | None = None, seed: int = 0,
                    splits: tuple[str, ...] | list[str] = SPLITS) -> MultimodalDataset:
    """Per-sample quality: each sample's noise falls on one of ``modalities`` (default: all), strength ~ U(0, max).

    Strengths are in units of sigma^m of the clean training split; ``per_sample`` gives them.
    """
    splits = _check_splits(splits)
    check_int("seed", seed, low=0)
    check_real("max_strength", max_strength, low=0)
    chosen = data.modalities if modalities is None else check_names("modalities", modalities, "['audio']")
    for m in chosen:
        _check_modality(data.train, m)
    scale = {m: modality_scale(data.train, m) for m in chosen}
    new, per = {}, {}
    for name in splits:
        split = getattr(data, name)
        per[name] = quality_levels(len(split), tuple(chosen), max_strength, _generator(seed, "quality", name))
        new[name] = gaussian_noise(split, {m: per[name][m] * scale[m] for m in chosen},
                                   derive_seed(seed, "quality-noise", name))
    return _with(data, new, {"kind": "quality-varying", "max_strength": max_strength, "scale": scale,
                             "seed": seed, "splits": splits, "per_sample": per})


def per_sample(data: MultimodalDataset, split: str = "test", kind: str | None = None) -> dict[str, Tensor]:
    """The per-sample record of the last corruption (of ``kind``, if given) applied to ``split``.

    Noise strengths (float64) for ``noisy`` and ``quality_varying``, presence masks (bool) for
    ``incomplete``; keyed by modality.
    """
    check_choice("split", split, SPLITS)
    for record in reversed(data.info.get("corruption", [])):
        if (kind is None or record["kind"] == kind) and split in record["per_sample"]:
            return record["per_sample"][split]
    what = f"{kind!r} corruption" if kind else "corruption"
    raise ValueError(f"no {what} of the {split!r} split is recorded on this dataset; "
                     f"corrupt it with mm.corrupt.noisy, incomplete or quality_varying first")


__all__ = ["FILLS", "SPLITS", "fill_values", "gaussian_noise", "impute", "incomplete", "missing_mask",
           "modality_scale", "noisy", "per_sample", "quality_levels", "quality_varying"]
