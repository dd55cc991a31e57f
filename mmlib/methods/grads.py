"""Per-loss gradients of parameter groups, flattened: the plumbing of gradient-level methods.

A ``GradLayout`` fixes where each parameter of some named groups (one per modality: its
encoder's tensors) sits in a flat gradient of length N, and sums flat rows per tensor or per
group (segmented sums, in float64). The gradient functions return per-loss gradients of given
parameters in three ways, all with the same values:

- ``separate_grads``: one backward pass per loss, the shared loss on every group and each
  group's own loss on that group (the official MMPareto scheme: 1 + M passes, the graph kept
  for a final ``backward_except`` of the total that fills the heads);
- ``two_pass_grads``: the shared loss and the sum of the groups' own losses, two passes in all;
- ``two_pass_grads(batched=True)``: the same two as one vmapped pass (``loss_grads``).

Gradients come from ``torch.autograd.grad``, so nothing is written to ``.grad`` until the
caller does so with ``accumulate``.

Reference: wei2024mmpareto (its per-encoder g_m, g_u); huang2025inforeg (per-encoder squared
gradient norms for the Fisher-trace proxy); notebook ``notebooks/mmpareto.ipynb``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor, nn

from .base import modality_params

Grads = Sequence[Tensor | None]


class GradLayout:
    """Where each parameter of named groups sits in a flat gradient (N,) of all their entries.

    Groups follow ``groups`` in order and, within a group, its parameters: T tensors in all.
    ``tensors_of[name]`` is the slice of a group's tensors among the T, ``tensor_of`` (N,) the
    tensor of each entry. Sums over entries (``per_tensor``, ``per_group``, ``gram``) are taken
    in float64: a tensor's Gram entries may cancel far below float32's resolution.
    """

    def __init__(self, groups: Mapping[str, Sequence[Tensor]]):
        self.groups = {name: list(ps) for name, ps in groups.items()}
        self.names = tuple(self.groups)
        self.params = [p for ps in self.groups.values() for p in ps]
        self.sizes = [p.numel() for p in self.params]
        self.tensors_of, start = {}, 0
        for name, ps in self.groups.items():
            self.tensors_of[name], start = slice(start, start + len(ps)), start + len(ps)
        device = self.params[0].device if self.params else torch.device("cpu")
        self._lengths = torch.tensor(self.sizes, dtype=torch.long, device=device)
        self._group_lengths = torch.tensor([sum(self.sizes[s]) for s in self.tensors_of.values()],
                                           dtype=torch.long, device=device)
        self.tensor_of = torch.repeat_interleave(torch.arange(len(self.sizes), device=device), self._lengths)
        self._key = _key(self.groups)

    def describes(self, groups: Mapping[str, Sequence[Tensor]]) -> bool:
        """Whether ``groups`` holds the same parameter objects in the same groups and order."""
        return self._key == _key(groups)

    def flat(self, grads: Grads) -> Tensor:
        """Per-parameter gradients (None: zero) -> one flat gradient (N,)."""
        return torch.cat([torch.zeros_like(p).reshape(-1) if g is None else g.reshape(-1)
                          for g, p in zip(grads, self.params, strict=True)])

    def unflat(self, flat: Tensor) -> list[Tensor]:
        """A flat gradient (N,) -> one view per parameter, shaped like it."""
        return [g.view_as(p) for g, p in zip(flat.split(self.sizes), self.params)]

    def per_tensor(self, rows: Tensor) -> Tensor:
        """(R, N) -> (R, T) float64: each row summed over each tensor's entries."""
        return _segment_sum(rows, self._lengths)

    def per_group(self, rows: Tensor) -> Tensor:
        """(R, N) -> (R, G) float64: each row summed over each group's entries."""
        return _segment_sum(rows, self._group_lengths)

    def gram(self, rows: Tensor) -> Tensor:
        """(R, N) -> (R, R, T) float64: the dot product of every pair of rows, per tensor.

        The products are formed in float64, where those of float32 entries are exact.
        """
        x = rows.double()
        out = x.new_empty(len(x), len(x), len(self.sizes))
        for i in range(len(x)):
            for j in range(i, len(x)):
                out[i, j] = out[j, i] = self.per_tensor((x[i] * x[j]).unsqueeze(0))[0]
        return out

    def squared_norms(self, flat: Tensor) -> dict[str, Tensor]:
        """||g||^2 of each group's part of a flat gradient (N,), as float64 scalars by name."""
        return dict(zip(self.names, self.per_group(flat.double().square().unsqueeze(0))[0]))

    def spread(self, values: Tensor) -> Tensor:
        """(R, T) -> (R, N): each tensor's value repeated over its entries."""
        return values.index_select(1, self.tensor_of)


def encoder_groups(model: nn.Module, modalities: Sequence[str]) -> dict[str, list[nn.Parameter]]:
    """One parameter group per modality: its encoder's trainable parameters, selected by module."""
    return {m: modality_params(model, m) for m in modalities}


def layout_for(groups: Mapping[str, Sequence[Tensor]], cached: GradLayout | None = None) -> GradLayout:
    """``cached`` if it still describes ``groups``, else a new layout (parameters may be replaced)."""
    return cached if cached is not None and cached.describes(groups) else GradLayout(groups)


def loss_grads(losses: Sequence[Tensor], params: Sequence[Tensor], batched: bool = False,
               retain_graph: bool = False) -> list[tuple[Tensor | None, ...]]:
    """Each loss's gradients of ``params`` (None where a loss does not reach a parameter).

    One backward pass per loss, the graph kept between them; or, with ``batched``, one vmapped
    pass over the K one-hot cotangents (``is_grads_batched``; on one CPU thread the plain
    passes are faster). ``retain_graph`` keeps the graph after the last pass as well.
    """
    if batched:
        stacked = torch.stack(list(losses))
        eye = torch.eye(len(stacked), dtype=stacked.dtype, device=stacked.device)
        every = torch.autograd.grad(stacked, params, eye, retain_graph=retain_graph, is_grads_batched=True,
                                    allow_unused=True)
        return [tuple(None if g is None else g[k] for g in every) for k in range(len(stacked))]
    last = len(losses) - 1
    return [torch.autograd.grad(loss, params, retain_graph=retain_graph or k < last, allow_unused=True)
            for k, loss in enumerate(losses)]


def two_pass_grads(shared: Tensor, own: Mapping[str, Tensor], layout: GradLayout, extra: Sequence[Tensor] = (),
                   batched: bool = False) -> tuple[Tensor, list[Tensor | None]]:
    """[g_shared; g_own] of every group, flattened: (2, N); and the sum of both for ``extra``.

    Two backward passes (or one vmapped, ``batched``): the shared loss, and the sum of the
    groups' own losses. Each ``own[name]`` must reach no other group (a modality's unimodal
    loss and the other encoders), so the sum's gradient on a group is its own loss's exactly.
    ``extra`` (the heads) gets its ordinary gradient, the sum of both passes; the graph is freed.
    """
    wrt = [*layout.params, *extra]
    g_shared, g_own = loss_grads([shared, sum(own[name] for name in layout.names)], wrt, batched)
    n = len(layout.params)
    g_extra = [b if a is None else (a if b is None else a + b) for a, b in zip(g_shared[n:], g_own[n:])]
    return torch.stack([layout.flat(g_shared[:n]), layout.flat(g_own[:n])]), g_extra


def separate_grads(shared: Tensor, own: Mapping[str, Tensor], layout: GradLayout) -> Tensor:
    """[g_shared; g_own] of every group, flattened: (2, N), one backward pass per loss.

    The shared loss on every group, then each group's own loss on that group alone: 1 + G
    passes, as the official MMPareto code. The graph is kept for the caller's final backward.
    """
    (g_shared,) = loss_grads([shared], layout.params, retain_graph=True)
    g_own = [g for name, ps in layout.groups.items() for g in loss_grads([own[name]], ps, retain_graph=True)[0]]
    return torch.stack([layout.flat(g_shared), layout.flat(g_own)])


def backward_except(loss: Tensor, params: Sequence[Tensor]) -> None:
    """``loss.backward()`` into every parameter's ``.grad`` but those of ``params``, left as they were."""
    before = [p.grad for p in params]
    loss.backward()
    for p, g in zip(params, before):
        p.grad = g


def accumulate(params: Sequence[Tensor], grads: Grads) -> None:
    """Add each gradient to its parameter's ``.grad`` (None: nothing to add)."""
    for p, g in zip(params, grads, strict=True):
        if g is not None:
            p.grad = g if p.grad is None else p.grad + g


def _segment_sum(rows: Tensor, lengths: Tensor) -> Tensor:
    return torch.segment_reduce(rows.double(), "sum", lengths=lengths.expand(len(rows), -1), axis=1, unsafe=True)


def _key(groups: Mapping[str, Sequence[Tensor]]) -> tuple:
    return tuple((name, tuple(id(p) for p in ps)) for name, ps in groups.items())
