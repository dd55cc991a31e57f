"""The in-memory multimodal dataset, its splits, and a fast batch loader.

A batch is a dict ``{"inputs": {modality: Tensor}, "y": LongTensor (B,), "index": LongTensor (B,)}``;
``index`` holds sample ids 0..N-1 within the split (sample-level methods keep per-sample state by them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import Tensor


@dataclass
class Split:
    """One split: modality -> tensor (N, ...), labels (N,), and sample ids (N,).

    ``subset`` keeps the parent's ids; ``make_splits`` renumbers each split 0..N-1.
    """

    inputs: dict[str, Tensor]
    y: Tensor
    index: Tensor = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        n = len(self.y)
        for m, x in self.inputs.items():
            if len(x) != n:
                raise ValueError(f"modality {m!r} has {len(x)} samples but there are {n} labels")
        if self.index is None:
            self.index = torch.arange(n)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: Tensor | np.ndarray) -> "Split":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return Split({m: x[idx] for m, x in self.inputs.items()}, self.y[idx], self.index[idx])

    def batch(self, idx: Tensor) -> dict[str, Any]:
        return {"inputs": {m: x[idx] for m, x in self.inputs.items()}, "y": self.y[idx], "index": self.index[idx]}


@dataclass
class MultimodalDataset:
    """A dataset with train / validation / test splits and per-modality metadata.

    Attributes:
        encoders: modality -> (encoder registry name, kwargs): the default encoder for
            that modality's input (``build_model`` uses it).
        info: provenance and generation settings, shown by notebooks.
        weak: the modality that joint training under-optimises by default, as measured in
            ``notebooks/imbalance.ipynb`` (None if not known); notebooks read it instead of
            naming modalities per dataset.
    """

    name: str
    modalities: tuple[str, ...]
    num_classes: int
    train: Split
    val: Split
    test: Split
    encoders: dict[str, tuple[str, dict[str, Any]]]
    class_names: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    weak: str | None = None

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def input_shape(self, modality: str) -> tuple[int, ...]:
        return tuple(self.train.inputs[modality].shape[1:])

    def select(self, modalities: tuple[str, ...] | list[str]) -> "MultimodalDataset":
        """The same dataset restricted to some modalities (in the given order); ``weak`` is kept if selected."""
        unknown = [m for m in modalities if m not in self.modalities]
        if unknown:
            raise ValueError(f"unknown modality {unknown[0]!r} for {self.name}; it has {self.modalities}")
        pick = lambda s: Split({m: s.inputs[m] for m in modalities}, s.y, s.index)  # noqa: E731
        return MultimodalDataset(self.name, tuple(modalities), self.num_classes, pick(self.train),
                                 pick(self.val), pick(self.test),
                                 {m: self.encoders[m] for m in modalities}, self.class_names, dict(self.info),
                                 self.weak if self.weak in modalities else None)

    def summary(self) -> dict[str, Any]:
        return {
            "dataset": self.name,
            "modalities": ", ".join(f"{m} {tuple(self.input_shape(m))}" for m in self.modalities),
            "classes": self.num_classes,
            "train / val / test": f"{len(self.train)} / {len(self.val)} / {len(self.test)}",
        }


def stratified_split(y: np.ndarray, fractions: tuple[float, float, float], seed: int) -> tuple[np.ndarray, ...]:
    """Split indices into train / val / test with the class proportions of ``y`` in each."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) <= 0:
        raise ValueError(f"split fractions must be three positive numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_tr = int(round(fractions[0] * len(idx)))
        n_va = int(round(fractions[1] * len(idx)))
        parts[0] += idx[:n_tr].tolist()
        parts[1] += idx[n_tr:n_tr + n_va].tolist()
        parts[2] += idx[n_tr + n_va:].tolist()
    return tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)


def make_splits(inputs: dict[str, Tensor], y: Tensor, fractions: tuple[float, float, float],
                seed: int) -> tuple[Split, Split, Split]:
    tr, va, te = stratified_split(y.numpy(), fractions, seed)
    full = Split(inputs, y)
    parts = [full.subset(idx) for idx in (tr, va, te)]
    return tuple(Split(p.inputs, p.y) for p in parts)  # ids 0..N-1 within each split


class BatchLoader:
    """Iterates over a :class:`Split` in mini-batches, without per-sample Python work.

    Under data parallelism (``world_size > 1``) each rank takes an equal, disjoint share of
    each epoch's order, padded by wrap-around as ``DistributedSampler`` does.

    Args:
        generator: seeds the shuffling; each ``iter`` draws a new permutation from it.
        order: which samples an epoch visits, in which order, instead of all of them (shuffled if
            ``shuffle``): a 1-D index tensor (repeats allowed: re-sampling), or a callable
            ``order(generator) -> index tensor`` drawn anew every epoch. Shuffling is then the
            order's business; ``shuffle`` is ignored.
        transform: ``transform(batch) -> batch`` applied to every batch (e.g. blank one modality of
            re-sampled copies, or pair each sample with another sample's audio).
    """

    def __init__(self, split: Split, batch_size: int, shuffle: bool = False,
                 generator: torch.Generator | None = None, drop_last: bool = False,
                 rank: int = 0, world_size: int = 1, order: Tensor | Callable[[torch.Generator], Tensor] | None = None,
                 transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        if order is not None and not callable(order):
            order = self._check_order(torch.as_tensor(order), len(split))
        self.split, self.batch_size, self.shuffle = split, batch_size, shuffle
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.drop_last, self.rank, self.world_size = drop_last, rank, world_size
        self.order, self.transform = order, transform

    @staticmethod
    def _check_order(order: Tensor, n: int) -> Tensor:
        if order.dim() != 1 or order.dtype not in (torch.int64, torch.int32) or len(order) == 0:
            raise ValueError(f"order must be a non-empty 1-D integer tensor of sample indices, got "
                             f"{tuple(order.shape)} {order.dtype}")
        if int(order.min()) < 0 or int(order.max()) >= n:
            raise ValueError(f"order holds indices outside 0..{n - 1} (the split has {n} samples)")
        return order.long()

    def _order(self) -> Tensor:
        n = len(self.split)
        if callable(self.order):
            order = self._check_order(torch.as_tensor(self.order(self.generator)), n)
        elif self.order is not None:
            order = self.order
        else:
            order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        if self.world_size > 1:
            total = len(order)
            per_rank = -(-total // self.world_size)
            order = order.repeat(-(-per_rank * self.world_size // total))[: per_rank * self.world_size]
            order = order[self.rank::self.world_size]
        return order

    def __iter__(self) -> Iterator[dict[str, Any]]:
        order = self._order()
        stop = len(order) - (len(order) % self.batch_size if self.drop_last else 0)
        for start in range(0, stop, self.batch_size):
            batch = self.split.batch(order[start:start + self.batch_size])
            yield self.transform(batch) if self.transform is not None else batch

    def __len__(self) -> int:
        """Batches per epoch (for an ``order`` callable: assuming it returns a full split's worth)."""
        total = len(self.order) if self.order is not None and not callable(self.order) else len(self.split)
        n = -(-total // self.world_size)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
