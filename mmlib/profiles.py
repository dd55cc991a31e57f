"""Run profiles: the sizes a notebook runs at, resolved after its ``parameters`` cell.

* ``quick``: a CI smoke run in seconds (one seed, tiny data, two epochs);
* ``default``: what the book shows (three seeds, minutes per notebook on a 2-core CPU);
* ``paper``: the published protocols on the real datasets on a GPU (needs ``data_root``).

A notebook's parameters cell holds only plain values (``profile``, ``seeds``, ``device``,
``data_root``, ``overrides``); sizes come from here, so papermill's ``-p`` changes them
consistently. Overrides name training settings (``num_epochs``, ``lr``, ...) or dataset
settings (``n_samples``, ``views``, ...); an unknown name is an error.
"""
from __future__ import annotations

import copy
import difflib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks import check_device, check_seeds, check_train_args
from .data import load_dataset
from .data.base import MultimodalDataset
from .registry import DATASETS
from .train import TRAIN_KEYS  # fit's keyword settings, read from its signature

# SGD with momentum 0.9 and weight decay 1e-4, the optimiser of the OGM-GE (CVPR 2022) and
# MMPareto official codes. Under Adam-type optimisers a gradient scaled by a slowly varying
# factor is normalised away, which would hide what gradient-modulation methods do.
_SGD = {"batch_size": 64, "lr": 0.05, "optimizer": "sgd", "momentum": 0.9, "weight_decay": 1e-4}
_AV = {"num_epochs": 20, **_SGD}
_MFEAT = {"num_epochs": 30, **_SGD}
# Sounding-object localization (sounding_localization.ipynb): Adam as in hu2021csol, at larger
# rates than its 1e-4 to fit the CPU budget; stage one on av-solo, stage two on av-cocktail.
_ADAM = {"batch_size": 32, "optimizer": "adam", "weight_decay": 1e-4}
_SOLO = {"num_epochs": 8, "lr": 2e-3, **_ADAM}
_COCKTAIL = {"num_epochs": 2, "lr": 5e-4, **_ADAM}

PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "seeds": [0],
        "close_seeds": [0],
        "datasets": {
            "av-digits": {"data": {"n_samples": 300}, "train": {**_AV, "num_epochs": 2}},
            "av-mnist": {"data": {"n_samples": 300}, "train": {**_AV, "num_epochs": 2}},
            "mfeat": {"data": {}, "train": {**_MFEAT, "num_epochs": 2}},
            "av-solo": {"data": {"n_scenes": 400}, "train": {**_SOLO, "num_epochs": 2}},
            "av-cocktail": {"data": {"n_scenes": 200}, "train": {**_COCKTAIL, "num_epochs": 1}},
        },
    },
    "default": {
        "seeds": [0, 1, 2],
        # for comparisons whose differences are near the spread of three seeds (MMPareto chapter)
        "close_seeds": list(range(8)),
        "datasets": {
            "av-digits": {"data": {}, "train": dict(_AV)},
            "av-mnist": {"data": {}, "train": dict(_AV)},
            "mfeat": {"data": {}, "train": dict(_MFEAT)},
            "av-solo": {"data": {}, "train": dict(_SOLO)},
            "av-cocktail": {"data": {}, "train": dict(_COCKTAIL)},
        },
    },
    # The CVPR 2022 CREMA-D protocol (ogm_opm.md §6 row 1): SGD 1e-3, batch 64, 100 epochs.
    "paper": {
        "seeds": [0, 1, 2],
        "close_seeds": [0, 1, 2],
        "needs_data_root": True,
        "datasets": {
            "cremad": {"data": {}, "train": {"num_epochs": 100, "batch_size": 64, "lr": 1e-3, "optimizer": "sgd",
                                             "weight_decay": 1e-4, "momentum": 0.9, "lr_step": 70, "lr_gamma": 0.1}},
        },
    },
}


class ProfileError(ValueError):
    """A profile name, override or data_root that cannot be used; the message says how to fix it."""


def _closest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


@dataclass
class Profile:
    """A resolved profile: seeds, device, and per-dataset data and training settings.

    ``close_seeds`` is a longer seed list (a superset of ``seeds``) for comparisons whose
    differences are near the spread over ``seeds``; it equals ``seeds`` when the caller gives seeds.
    """

    name: str
    seeds: list[int]
    device: str
    data_root: Path | None
    datasets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    close_seeds: list[int] = field(default_factory=list)

    def __post_init__(self):
        self.close_seeds = list(self.close_seeds or self.seeds)

    def train(self, dataset: str) -> dict[str, Any]:
        """Keyword arguments for ``fit`` on ``dataset`` (includes ``device``)."""
        return {**self._entry(dataset)["train"], "device": self.device}

    def data_kwargs(self, dataset: str) -> dict[str, Any]:
        return dict(self._entry(dataset)["data"])

    def load(self, dataset: str, **kwargs: Any) -> MultimodalDataset:
        """Load ``dataset`` with this profile's settings (``kwargs`` win)."""
        return load_dataset(dataset, **{**self.data_kwargs(dataset), **kwargs})

    def _entry(self, dataset: str) -> dict[str, dict[str, Any]]:
        if dataset not in self.datasets:
            raise ProfileError(f"profile {self.name!r} has no settings for dataset {dataset!r}; "
                               f"it covers {sorted(self.datasets)}.{_closest(dataset, sorted(self.datasets))}")
        return self.datasets[dataset]


def check_data_root(data_root: str | Path | None, profile: str) -> Path:
    """The real datasets' root folder, which must exist and be a directory."""
    if data_root in (None, ""):
        raise ProfileError(f"profile {profile!r} reads the real datasets: pass data_root=/path/to/datasets "
                           f"(papermill: -p data_root /path/to/datasets)")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise ProfileError(f"data_root {str(root)!r} is not an existing folder; point it at the folder that "
                           f"holds the dataset folders (e.g. CREMA-D/)")
    return root


def resolve(profile: str = "default", seeds: list[int] | None = None, device: str = "cpu",
            data_root: str | Path | None = None, **overrides: Any) -> Profile:
    """Resolve a profile by name and apply overrides; unknown names are errors.

    Args:
        seeds: replaces the profile's seed list when given.
        overrides: training keys (``TRAIN_KEYS``) apply to every dataset; any other key must
            be an argument of each dataset's loader that the profile covers.
    """
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ProfileError(f"unknown profile {profile!r}.{_closest(str(profile), sorted(PROFILES))} "
                           f"Known profiles: {', '.join(sorted(PROFILES))}")
    spec = copy.deepcopy(PROFILES[profile])
    root = check_data_root(data_root, profile) if spec.get("needs_data_root") else (
        Path(data_root) if data_root else None)
    missing = [d for d in spec["datasets"] if d not in DATASETS]
    if missing:
        raise ProfileError(f"profile {profile!r} needs dataset(s) {missing}, whose loaders are not in this "
                           f"version of mmlib yet; use profile 'default' on the built-in data")
    try:
        check_device(device)
    except ValueError as err:
        raise ProfileError(str(err)) from None
    try:
        check_train_args({k: v for k, v in overrides.items() if k in TRAIN_KEYS})
    except (TypeError, ValueError) as err:
        raise ProfileError(f"override {err}") from None
    for key, value in overrides.items():
        if key in TRAIN_KEYS:
            for entry in spec["datasets"].values():
                entry["train"][key] = value
            continue
        used = False
        for name, entry in spec["datasets"].items():
            if key in inspect.signature(DATASETS.get(name)).parameters:
                entry["data"][key] = value
                used = True
        if not used:
            valid = sorted(set(TRAIN_KEYS).union(*(inspect.signature(DATASETS.get(n)).parameters
                                                   for n in spec["datasets"])))
            raise ProfileError(f"unknown override {key!r}.{_closest(key, valid)} Valid overrides: {', '.join(valid)}")
    if seeds is not None:
        try:
            seeds = check_seeds(seeds)
        except ValueError as err:
            raise ProfileError(str(err)) from None
        return Profile(profile, list(seeds), device, root, spec["datasets"], close_seeds=list(seeds))
    return Profile(profile, list(spec["seeds"]), device, root, spec["datasets"], close_seeds=spec["close_seeds"])
