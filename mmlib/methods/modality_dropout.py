"""Modality dropout: train with whole modalities missing, filled as they will be at test time."""
from __future__ import annotations

from typing import Any

import torch

from ..checks import check_choice, check_names, check_real
from ..corrupt import FILLS, fill_values, impute, missing_mask
from ..data.base import BatchLoader, Split
from ..registry import METHODS
from ..repro import derive_seed
from .base import Method, TrainState


@METHODS.register("modality-dropout")
class ModalityDropout(Method):
    """Each training sample loses one modality (drawn uniformly) with probability p, every epoch anew.

    The lost input is replaced by ``fill``: zeros, or the mean input of the training split,
    the same values that ``mm.corrupt.incomplete`` puts in at test time, so the network learns
    what a missing input looks like. This is input-level dropout, as in ModDrop; the batch order
    is the default loader's (the same generator), and the drops use a generator of their own
    (seeded from the run's seed and the rank). ``modalities`` restricts which ones may go
    missing (default: all). Logs the realised share of samples with a missing modality per epoch
    (``dropped``).

    Hooks: on_fit_start, train_loader, on_train_epoch_end.
    Reference: zhang2024lowquality (incomplete data); notebook ``notebooks/incomplete.ipynb``.
    """

    def __init__(self, p: float = 0.5, fill: str = "zero", modalities: tuple[str, ...] | list[str] | None = None):
        check_real("p", p, low=0, high=1)
        check_choice("fill", fill, FILLS)
        self.p, self.fill = p, fill
        self.modalities = None if modalities is None else check_names("modalities", modalities, "['audio']")
        self._gen = torch.Generator()
        self._values: dict[str, torch.Tensor] = {}
        self._all: tuple[str, ...] = ()
        self._dropped = self._total = 0

    @classmethod
    def example(cls, modalities: tuple[str, ...]) -> "ModalityDropout":
        return cls(p=0.5, fill="mean")

    def on_fit_start(self, state: TrainState) -> None:
        self._all = tuple(state.modalities)
        unknown = [m for m in self.modalities or () if m not in self._all]
        if unknown:
            raise ValueError(f"modality-dropout: unknown modality {unknown[0]!r}; the model has {self._all}")
        self._gen = torch.Generator().manual_seed(
            derive_seed(state.generator.initial_seed(), "modality-dropout", state.rank))
        self._values = fill_values(state.data.train, self.fill)
        self._dropped = self._total = 0

    def _drop(self, batch: dict[str, Any]) -> dict[str, Any]:
        n = len(batch["y"])
        present = missing_mask(n, self.p, self._all, self.modalities, self._gen, exact=False)
        self._dropped += int((~torch.stack(list(present.values()))).any(0).sum())
        self._total += n
        split = impute(Split(batch["inputs"], batch["y"], batch["index"]), present, self._values)
        return {**batch, "inputs": split.inputs}

    def train_loader(self, state: TrainState, split) -> BatchLoader:
        return BatchLoader(split, state.batch_size, shuffle=True, generator=state.generator, rank=state.rank,
                           world_size=state.world_size, transform=self._drop)

    def on_train_epoch_end(self, state: TrainState) -> None:
        state.log("dropped", self._dropped / max(self._total, 1))
        self._dropped = self._total = 0

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self._gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._gen.set_state(state["generator"])
