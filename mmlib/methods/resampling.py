"""Re-sampling with unimodal copies, driven by per-sample Shapley contributions (sample- and modality-level).

Both methods value the training samples with ``mmlib/contribution.py`` after an epoch and add
to the next epoch extra **unimodal copies**: a copy of sample i that keeps only modality m, every
other modality's feature zeroed at the fusion input (as the official code zeroes features), trained
with the ordinary fused cross-entropy. Only which copies differ:

* **sample-level** (``sample-resampling``): every sample gets s(phi_m) copies keeping m, for each m;
* **modality-level** (``modality-resampling``): n copies of uniformly drawn samples, all keeping the
  modality with the lowest mean phi over a random subset Z.

They share everything else (valuation, the copy split, feature masking, warm-up, loader, state),
so they live in one file; each adds only its ``plan``.

The epoch's training set is the split plus the planned copies (``CopySplit``), read by the
ordinary ``BatchLoader`` through the exclusive ``train_loader`` hook, shuffled by a generator
seeded from (run seed, method, epoch): the copies and their order are deterministic from the seed,
identical on every DDP rank (phi is all-reduced before planning), and reproduced on resume.

Reference: wei2024valuation; notebook ``notebooks/modality_valuation.ipynb``.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..contribution import value_features, value_split
from ..data.base import BatchLoader, Split
from ..registry import METHODS
from ..repro import derive_seed
from .base import Method, TrainState

FEATURES = ("epoch", "eval")
MAPPINGS = ("linear", "tanh", "square")


def sample_copies(phi: Tensor) -> Tensor:
    """s(phi), the number of unimodal copies per sample and modality: (N, M) long from phi (N, M).

    s = 0 for phi >= 1 (at least the fair share), 1 for 0.4 < phi < 1, 2 for -0.1 < phi <= 0.4 and
    3 for phi <= -0.1. With two modalities phi lies on {-0.5, 0, 0.5, 1, 1.5}, where this is
    2 (1 - phi) below 1. The official code leaves its boundaries open (0.4 and -0.1 give no copy,
    and its upper bound is 0.9); they are never reached with two modalities, and we close them so
    that every phi < 1 gets copies with M >= 3 too.
    """
    out = torch.zeros(phi.shape, dtype=torch.long)
    out[(phi > 0.4) & (phi < 1)] = 1
    out[(phi > -0.1) & (phi <= 0.4)] = 2
    out[phi <= -0.1] = 3
    return out


def modality_copies(mean_phi: Tensor, num_samples: int, alpha: float = 1.0, mapping: str = "linear") -> tuple[int, int]:
    """The weaker modality's index and its number of copies n for modality-level re-sampling.

    gaps g_m = 1 - mean phi_m; the weaker modality has the largest gap; with
    d = (2/3) (max g - min g) (``|g_a - g_v|`` for two modalities), n = floor(f(d) N) where f is
    ``"linear"``: alpha d, ``"tanh"``: tanh(alpha d), ``"square"``: alpha d^1.5 (the official
    code's three mappings, linear by default; "square" is its name for the power 1.5).
    """
    if mapping not in MAPPINGS:
        raise ValueError(f"unknown mapping {mapping!r}; choose from {MAPPINGS}")
    gaps = 1.0 - mean_phi.double()
    d = 2.0 / 3.0 * float(gaps.max() - gaps.min())
    f = {"linear": alpha * d, "tanh": math.tanh(alpha * d), "square": alpha * d ** 1.5}[mapping]
    return int(gaps.argmax()), int(math.floor(f * num_samples + 1e-9))  # 1e-9: 0.2 * 1000 is 200, not 199


class CopySplit:
    """A training split plus unimodal copies, indexable by ``BatchLoader`` like a ``Split``.

    Row r < N is sample r with every modality; row N + j is a copy of sample ``source[j]`` that
    keeps only modality ``keep[j]``, an index into ``modalities`` (the model's order). Batches
    carry ``"keep"``: (B, M) bool, which modalities' features reach the fusion head.
    """

    def __init__(self, split: Split, source: Tensor, keep: Tensor, modalities: tuple[str, ...]):
        if len(source) != len(keep):
            raise ValueError(f"source ({len(source)}) and keep ({len(keep)}) must have one entry per copy")
        self.split, self.source, self.keep, self.modalities = split, source.long(), keep.long(), tuple(modalities)

    def __len__(self) -> int:
        return len(self.split) + len(self.source)

    def batch(self, idx: Tensor) -> dict[str, Any]:
        n = len(self.split)
        copy = idx >= n
        rows = torch.where(copy, self.source[(idx - n).clamp_min(0)], idx) if len(self.source) else idx
        batch = self.split.batch(rows)
        keep = torch.ones(len(idx), len(self.modalities), dtype=torch.bool)
        if copy.any():
            keep[copy] = torch.nn.functional.one_hot(self.keep[idx[copy] - n], len(self.modalities)).bool()
        return {**batch, "keep": keep}


class ContributionMonitor(Method):
    """Joint training that values the training samples every epoch and logs the mean phi per modality.

    ``features="epoch"`` (default) values each sample from the features of its own training forward
    pass in this epoch (no extra encoder pass; the head is evaluated on them 2^M - 1 times, so phi
    comes from the model of that step, with BatchNorm on batch statistics). ``features="eval"``
    values with a separate eval-mode encoder pass after the epoch, as the paper does.
    Logs ``phi/<m>``, the mean over the valued samples, each epoch.

    Hooks: on_fit_start, on_train_epoch_start, on_after_forward, on_train_epoch_end.
    Reference: wei2024valuation (Fig. 2d); notebook ``notebooks/modality_valuation.ipynb``.
    """

    def __init__(self, features: str = "epoch"):
        if features not in FEATURES:
            raise ValueError(f"unknown features={features!r}; choose from {FEATURES}")
        self.features = features
        self._phi = torch.zeros(0, 0, dtype=torch.float64)
        self._valued = torch.zeros(0, dtype=torch.bool)
        self._sums = self._counts = None
        self._seed = 0

    @property
    def phi(self) -> Tensor:
        """The last valuation, (N, M) float64 in the model's modality order; rows not valued are 0."""
        return self._phi

    @property
    def valued(self) -> Tensor:
        """(N,) bool: which training samples the last valuation covered."""
        return self._valued

    def first_valued_epoch(self) -> int:
        return 0

    def valued_rows(self, state: TrainState) -> Tensor:
        """Which training samples the decision needs (all; modality-level: its subset Z)."""
        return torch.arange(len(state.data.train))

    def on_fit_start(self, state: TrainState) -> None:
        n, m = len(state.data.train), len(state.modalities)
        self._phi, self._valued = torch.zeros(n, m, dtype=torch.float64), torch.zeros(n, dtype=torch.bool)
        self._seed = state.generator.initial_seed()

    def _generator(self, purpose: str, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(derive_seed(self._seed, self.registry_name, purpose, epoch))

    def on_train_epoch_start(self, state: TrainState) -> None:
        n, m = self.phi.shape
        self._sums, self._counts = torch.zeros(n, m, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)

    def on_after_forward(self, state: TrainState, out, batch: dict[str, Any]) -> None:
        if self.features != "epoch" or state.epoch < self.first_valued_epoch():
            return
        keep = batch.get("keep")
        orig = keep.all(1) if keep is not None else torch.ones(len(batch["y"]), dtype=torch.bool)
        if not orig.any():
            return
        rows = orig.to(batch["y"].device)
        feats = {m: out.feats[m].detach()[rows] for m in state.modalities}
        phi, _ = value_features(state.model.head, feats, batch["y"][rows], state.modalities)
        index = batch["index"][orig]
        self._sums.index_add_(0, index, phi.cpu())
        self._counts.index_add_(0, index, torch.ones(len(index), dtype=torch.float64))

    def on_train_epoch_end(self, state: TrainState) -> None:
        if state.epoch < self.first_valued_epoch():
            return
        rows = self.valued_rows(state)
        if self.features == "eval":  # each rank values its share; the all-reduce gives every rank all of them
            mine = rows[state.rank::state.world_size]
            phi, _ = value_split(state.model, state.data.train.subset(mine), device=state.device)
            self._sums.index_add_(0, mine, phi)
            self._counts.index_add_(0, mine, torch.ones(len(mine), dtype=torch.float64))
        state.all_reduce(self._sums)
        state.all_reduce(self._counts)
        self._valued = self._counts > 0
        self._phi = torch.where(self._valued[:, None], self._sums / self._counts.clamp_min(1)[:, None],
                                torch.zeros_like(self._sums))
        for i, m in enumerate(state.modalities):
            state.log(f"phi/{m}", self.phi[self.valued, i].mean())
        self.after_valuation(state, rows)

    def after_valuation(self, state: TrainState, rows: Tensor) -> None:
        """What to do with ``self.phi`` (the monitor only logs)."""


class Resampling(ContributionMonitor):
    """Base of the two re-sampling methods: plans copies after valuation and serves them next epoch.

    Epochs 0 .. warmup - 1 are joint training; the valuation after epoch e >= warmup - 1 plans the
    copies of epoch e + 1 (the first copies come at epoch max(warmup, 1)). Logs ``epoch_size``
    (originals plus copies) and ``copies/<m>`` every epoch, ``phi/<m>`` after every valuation.

    Hooks: on_fit_start, train_loader, on_train_epoch_start, on_train_batch_start, on_features,
    on_after_forward, on_train_epoch_end.
    """

    def __init__(self, warmup: int = 5, features: str = "epoch"):
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"warmup must be an integer >= 0 (epochs of joint training first), got {warmup!r}")
        super().__init__(features)
        self.warmup = warmup
        self._plan: tuple[Tensor, Tensor] | None = None
        self._plan_epoch = -1
        self._keep: Tensor | None = None

    def first_valued_epoch(self) -> int:
        # "epoch" features cost nothing extra, so they are valued (and logged) from the start
        return 0 if self.features == "epoch" else max(self.warmup - 1, 0)

    def plan(self, state: TrainState, rows: Tensor) -> tuple[Tensor, Tensor]:
        """The next epoch's copies from ``self.phi``: (source sample ids, kept modality index)."""
        raise NotImplementedError

    def after_valuation(self, state: TrainState, rows: Tensor) -> None:
        if state.epoch >= self.warmup - 1:
            self._plan, self._plan_epoch = self.plan(state, rows), state.epoch + 1

    def train_loader(self, state: TrainState, split: Split):
        planned = self._plan is not None and self._plan_epoch == state.epoch
        source, keep = self._plan if planned else (torch.zeros(0, dtype=torch.long),) * 2
        state.log("epoch_size", len(split) + len(source))
        for i, m in enumerate(state.modalities):
            state.log(f"copies/{m}", (keep == i).sum())
        if not planned:
            return None
        return BatchLoader(CopySplit(split, source, keep, state.modalities), state.batch_size, shuffle=True,
                           generator=self._generator("order", state.epoch), rank=state.rank,
                           world_size=state.world_size)

    def on_train_batch_start(self, state: TrainState, batch: dict[str, Any]) -> None:
        self._keep = batch.get("keep")

    def on_features(self, state: TrainState, feats: dict[str, Tensor]) -> dict[str, Tensor]:
        if self._keep is None or bool(self._keep.all()):
            return feats
        col = {m: i for i, m in enumerate(state.modalities)}  # keep's columns follow the model's modalities
        return {m: z * self._keep[:, col[m]:col[m] + 1].to(device=z.device, dtype=z.dtype) for m, z in feats.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"plan": self._plan, "plan_epoch": self._plan_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Called by ``fit`` after ``on_fit_start``: the copies planned for the next epoch."""
        self._plan, self._plan_epoch = state.get("plan"), state.get("plan_epoch", -1)


@METHODS.register("sample-resampling")
class SampleResampling(Resampling):
    """Sample-level re-sampling: s(phi_m) unimodal copies of every sample for each modality m.

    Copies per sample and modality from ``sample_copies``: 1, 2 or 3 for phi_m in (0.4, 1),
    (-0.1, 0.4], (-inf, -0.1], none at phi_m >= 1; modalities are handled independently (a sample
    every coalition gets wrong has 2 copies per modality). All training samples are valued.

    Args:
        warmup: epochs of joint training before the first valuation that plans copies (5).
        features: ``"epoch"`` or ``"eval"``, see ``ContributionMonitor``.

    Hooks: on_fit_start, train_loader, on_train_epoch_start, on_train_batch_start, on_features,
    on_after_forward, on_train_epoch_end.
    Reference: wei2024valuation (sample-level method); notebook ``notebooks/modality_valuation.ipynb``.
    """

    def plan(self, state: TrainState, rows: Tensor) -> tuple[Tensor, Tensor]:
        counts = sample_copies(self.phi)
        counts[~self.valued] = 0
        ids = torch.arange(len(counts))
        source = torch.cat([ids.repeat_interleave(counts[:, i]) for i in range(counts.shape[1])])
        keep = torch.cat([torch.full((int(counts[:, i].sum()),), i, dtype=torch.long) for i in range(counts.shape[1])])
        return source, keep


@METHODS.register("modality-resampling")
class ModalityResampling(Resampling):
    """Modality-level re-sampling: n copies of the weaker modality, from a subset's mean contributions.

    After each valuation epoch, a subset Z of floor(ratio N) training samples is drawn **without**
    replacement (the official code draws with replacement); the weaker modality and n come from
    the mean phi over Z (``modality_copies``); n samples are drawn uniformly **with** replacement
    (as the official code) and copied keeping only the weaker modality. With ``features="eval"``
    only Z is valued (the method's point; the official code values every sample and averages
    over Z); with ``"epoch"`` every sample's phi is free and Z still decides.

    Args:
        alpha: the strength alpha; ratio: the share of samples in Z (0.2);
        mapping: ``"linear"``, ``"tanh"`` or ``"square"`` (``modality_copies``).
        warmup, features: as ``SampleResampling``.

    Hooks: on_fit_start, train_loader, on_train_epoch_start, on_train_batch_start, on_features,
    on_after_forward, on_train_epoch_end.
    Reference: wei2024valuation (modality-level method); notebook ``notebooks/modality_valuation.ipynb``.
    """

    def __init__(self, alpha: float = 1.0, ratio: float = 0.2, mapping: str = "linear", warmup: int = 5,
                 features: str = "epoch"):
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"ratio (the share of samples valued, |Z| / N) must be in (0, 1], got {ratio}")
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if mapping not in MAPPINGS:
            raise ValueError(f"unknown mapping {mapping!r}; choose from {MAPPINGS}")
        super().__init__(warmup, features)
        self.alpha, self.ratio, self.mapping = alpha, ratio, mapping

    def subset(self, epoch: int, n: int) -> Tensor:
        """Z of the valuation after ``epoch``: floor(ratio n) ids without replacement, sorted."""
        size = max(1, int(math.floor(self.ratio * n + 1e-9)))
        return torch.randperm(n, generator=self._generator("subset", epoch))[:size].sort().values

    def valued_rows(self, state: TrainState) -> Tensor:
        return self.subset(state.epoch, len(state.data.train))

    def plan(self, state: TrainState, rows: Tensor) -> tuple[Tensor, Tensor]:
        mean = self.phi[rows].mean(0)
        for i, m in enumerate(state.modalities):
            state.log(f"phi_subset/{m}", mean[i])
        weak, n = modality_copies(mean, len(self.phi), self.alpha, self.mapping)
        source = torch.randint(len(self.phi), (n,), generator=self._generator("copies", state.epoch + 1))
        return source, torch.full((n,), weak, dtype=torch.long)
