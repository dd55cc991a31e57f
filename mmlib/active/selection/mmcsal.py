"""MMCSAL Stage 2: select B pairs that cover the pool, spread out, and are well aligned across modalities.

The paper describes a selection objective with distribution, diversity and cross-modal
alignment terms, the last weighted by λ_align (mmcsal.md §1.6). **The formulas and the optimiser
below are our engineering reading** (mmcsal.md §4), not the paper's, which we could not read.
With d and σ = 1 − d the joint distance and similarity of ``base.py`` and a_s = u_s·w_s, we
minimise over S ⊂ U with B elements:

  J(S) = (1/τ) J_dist(S) + μ_div J_div(S) − (λ_align/τ) J_align(S)

  J_dist = (1/N) Σ_{i∈U} min_{s∈S} d(i, s)                     (distribution: S covers the pool)
  J_div  = (1/B) Σ_{s∈S} log Σ_{s'∈S, s'≠s} exp(σ(s, s')/τ)     (diversity, ActiveFT's form)
  J_align = (1/B) Σ_{s∈S} a_s                                   (alignment of the selected pairs)

τ = 0.07. The distribution and alignment terms are divided by τ so that all three terms are in
the same units as ActiveFT's (xie2023activeft) similarity-over-temperature; the spec writes
them unscaled, which would let the diversity term (of order 1/τ) swamp the other two. An
element with no partner yet contributes 0 to J_div (the empty log-sum).

**Optimiser** (ours, after mmcsal.md §4): greedy addition from the pool's medoid, each step adding
the candidate with the smallest increase of J; then ``swaps`` passes of swap refinement, which
replace each selected sample in turn by the candidate that lowers J most (if any does). The
candidates of a step are a random sample of ⌈(N/B) log(1/ε)⌉ unselected samples (stochastic
greedy), or all of them when fewer remain, so that the cost does not grow with B; with
``reference`` set and N larger than it, J_dist is estimated on a fixed random subset of that many
pool samples. Every step is matrix products over (candidates × pool); no Python loop runs over
pairs. Only real pool samples are ever selected.

Ablations: ``lam_align=0`` is "without the alignment term"; embeddings trained without
prototypes give "without prototypes"; ``SingleModalitySelector`` is the same objective on one
modality's distance d_a, without alignment (mmcsal.md §5).

Reference: shen2024mmcsal; xie2023activeft; notebook ``notebooks/mmcsal.ipynb``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ...checks import check_int, check_real
from ...registry import SELECTORS
from .base import JOINT, Selector, alignment, check_view, pair_features


def objective(embeddings: dict[str, Tensor], selected: Tensor, lam_align: float = 0.3, mu_div: float = 1.0,
              tau: float = 0.07, view: str = JOINT, budget: int | None = None) -> dict[str, float]:
    """The terms of J(S) computed directly (for tests and analysis): ``dist``, ``div``, ``align`` and ``J``.

    ``budget`` is the B of the 1/B factors (default: the size of ``selected``). Row-normalised embeddings expected.
    """
    phi, a = pair_features(embeddings, view).double(), alignment(embeddings).double()
    b = budget or len(selected)
    d = 1 - phi @ phi[selected].T
    dist = float(d.min(1).values.mean())
    sim = phi[selected] @ phi[selected].T / tau
    sim.fill_diagonal_(-float("inf"))
    lse = torch.logsumexp(sim, 1)
    div = float(torch.where(torch.isinf(lse), torch.zeros_like(lse), lse).sum() / b)
    align = float(a[selected].sum() / b)
    return {"dist": dist, "div": div, "align": align, "J": dist / tau + mu_div * div - lam_align * align / tau}


def _log_sums_after_adding(log_z: Tensor, sims: Tensor) -> Tensor:
    """Σ_t log(exp(log_z_t) + exp(sims_ct)) for every row c of ``sims`` (C, T); log_z (T,) may hold -inf.

    Equal to ``logaddexp(log_z, sims).sum(1)``, written as Σ log_z + Σ softplus(sims − log_z) with
    one exp and one log1p per entry (about twice as fast as logaddexp on CPU).
    """
    if not bool(torch.isfinite(log_z).all()):
        return torch.logaddexp(log_z.unsqueeze(0), sims).sum(1)
    d = sims - log_z
    return log_z.sum() + torch.where(d > 30, d, torch.log1p(torch.exp(d))).sum(1)


class _Reference:
    """Similarities of pool samples to the reference samples that J_dist averages over.

    The (N, R) table is computed once when it has at most ``cache`` entries (the greedy steps and
    swaps then only gather rows of it); otherwise each request is a (C, D) x (D, R) product.
    """

    def __init__(self, phi: Tensor, ref_idx: Tensor, cache: int):
        self.phi, self.ref = phi, phi[ref_idx]
        self.table = phi @ self.ref.T if len(phi) * len(ref_idx) <= cache else None

    def __len__(self) -> int:
        return len(self.ref)

    def rows(self, idx: Tensor) -> Tensor:
        """σ(i, ref) for the pool indices ``idx``: (len(idx), R)."""
        return self.table[idx] if self.table is not None else self.phi[idx] @ self.ref.T


@SELECTORS.register("mmcsal")
class MMCSALSelector(Selector):
    """Greedy minimiser of J(S) = J_dist/τ + μ_div J_div − (λ_align/τ) J_align (module docstring).

    Args:
        lam_align: λ_align, the weight of the alignment term (0: the ablation without it).
        mu_div: μ_div, the weight of the diversity term.
        tau: τ of the diversity log-sum-exp and the common scale.
        view: ``"joint"`` distance d, or one modality's name for d_a alone.
        eps: stochastic-greedy accuracy; each step draws ⌈(N/B) log(1/ε)⌉ candidates.
        reference: estimate J_dist on this many pool samples when the pool is larger (None: all).
        swaps: passes of swap refinement after the greedy additions (0: greedy only).
        chunk: candidates scored per matrix product (bounds memory at chunk × reference).
        cache: most entries of the pool × reference similarity table kept in memory (float32).
    """

    def __init__(self, lam_align: float = 0.3, mu_div: float = 1.0, tau: float = 0.07, view: str = JOINT,
                 eps: float = 0.01, reference: int | None = 2048, swaps: int = 1, chunk: int = 256,
                 cache: int = 2**25):
        check_real("lam_align", lam_align, low=0)
        check_real("mu_div", mu_div, low=0)
        check_real("tau", tau, low=0, low_open=True)
        check_real("eps", eps, low=0, high=1, low_open=True, high_open=True)
        check_int("reference", reference, low=1, none_ok=True)
        check_int("swaps", swaps, low=0)
        check_int("chunk", chunk, low=1)
        check_int("cache", cache, low=0)
        self.lam_align, self.mu_div, self.tau, self.view = lam_align, mu_div, tau, view
        self.eps, self.reference, self.swaps, self.chunk, self.cache = eps, reference, swaps, chunk, cache

    def check(self, embeddings: dict[str, Tensor]) -> None:
        check_view(self.view, embeddings)
        if self.lam_align > 0 and len(embeddings) < 2:
            raise ValueError("the alignment term needs two or more modalities; use lam_align=0 for one")

    def _select(self, embeddings: dict[str, Tensor], budget: int, generator: torch.Generator) -> Tensor:
        phi = pair_features(embeddings, self.view)
        align = alignment(embeddings) if self.lam_align > 0 else torch.zeros(len(phi))
        n, tau = len(phi), self.tau
        if self.reference is not None and n > self.reference:
            ref = _Reference(phi, torch.randperm(n, generator=generator)[: self.reference].sort().values, self.cache)
        else:
            ref = _Reference(phi, torch.arange(n), self.cache)
        draws = math.ceil(n / budget * math.log(1 / self.eps))
        chosen = torch.empty(budget, dtype=torch.long)
        chosen[0] = int((phi @ ref.ref.sum(0)).argmax())  # the medoid: largest total similarity to the pool
        taken = torch.zeros(n, dtype=torch.bool)
        taken[chosen[0]] = True
        chosen_phi = phi.new_empty(budget, phi.shape[1])
        chosen_phi[0] = phi[chosen[0]]
        mind = 1 - ref.rows(chosen[:1])[0]  # distance of every reference sample to its nearest selected one
        log_z = torch.full((budget,), -float("inf"))  # log Σ_{s'≠s} exp(σ(s, s')/τ) of each selected s
        for k in range(1, budget):
            cand = self._draw(taken, draws, generator)
            delta = torch.cat([self._increase(ref.rows(c), phi[c], align[c], chosen_phi[:k], mind, log_z[:k], budget)
                               for c in cand.split(self.chunk)])
            best = int(cand[int(delta.argmin())])
            sims = chosen_phi[:k] @ phi[best] / tau
            log_z[k] = torch.logsumexp(sims, 0)
            log_z[:k] = torch.logaddexp(log_z[:k], sims)
            mind = torch.minimum(mind, 1 - ref.rows(torch.tensor([best]))[0])
            chosen[k], chosen_phi[k], taken[best] = best, phi[best], True
        for _ in range(self.swaps):
            chosen = self._swap_pass(phi, align, ref, chosen, draws, generator)
        return chosen

    @staticmethod
    def _draw(taken: Tensor, draws: int, generator: torch.Generator) -> Tensor:
        """A random sample of ``draws`` unselected pool indices (all of them if fewer remain)."""
        free = (~taken).nonzero().squeeze(1)
        return free[torch.randperm(len(free), generator=generator)[:draws]] if draws < len(free) else free

    def _increase(self, cand_ref: Tensor, cand: Tensor, cand_align: Tensor, chosen: Tensor, mind: Tensor,
                  log_z: Tensor, budget: int) -> Tensor:
        """ΔJ of adding each candidate to the selection.

        Args:
            cand_ref: (C, R) similarities of the candidates to the reference samples (S selected so far).
            cand, chosen: (C, D) and (S, D) features φ of the candidates and the selected samples.
            mind: (R,) distance of each reference sample to its nearest selected one.
            log_z: (S,) log Σ_{s'≠s} exp(σ(s, s')/τ) of each selected s (-inf: no partner yet).
        """
        tau = self.tau
        d_dist = (torch.minimum(mind, 1 - cand_ref).sum(1) - mind.sum()) / len(mind)
        sims = cand @ chosen.T / tau  # (C, |S|)
        own = torch.logsumexp(sims, 1)
        before = torch.where(torch.isinf(log_z), torch.zeros_like(log_z), log_z).sum()
        others = _log_sums_after_adding(log_z, sims) - before
        return d_dist / tau + self.mu_div * (own + others) / budget - self.lam_align * cand_align / (tau * budget)

    def _swap_pass(self, phi: Tensor, align: Tensor, ref: _Reference, chosen: Tensor, draws: int,
                   generator: torch.Generator) -> Tensor:
        """One pass over the selected positions: replace each by the candidate that lowers J most, if any does.

        Kept up to date across the pass: each reference sample's two nearest selected positions
        (so that removing one position costs O(R)) and the log-sums of J_div (so that removing
        and adding one element costs O(B)).
        """
        tau, budget = self.tau, len(chosen)
        if budget == len(phi):
            return chosen  # the whole pool: nothing to swap with
        chosen = chosen.clone()
        taken = torch.zeros(len(phi), dtype=torch.bool)
        taken[chosen] = True
        chosen_phi, chosen_align = phi[chosen].clone(), align[chosen].clone()
        dist = 1 - ref.rows(chosen).T  # (R, B)
        vals, pos = dist.topk(min(2, budget), dim=1, largest=False)
        logits = (chosen_phi @ chosen_phi.T).double() / tau
        logits.fill_diagonal_(-float("inf"))
        log_z = torch.logsumexp(logits, 1)
        for p in range(budget):
            cand = self._draw(taken, draws, generator)
            others = torch.arange(budget) != p
            mind_wo = torch.where(pos[:, 0] == p, vals[:, -1], vals[:, 0]) if budget > 1 else \
                torch.full((len(ref),), float("inf"))
            column = (chosen_phi @ chosen_phi[p]).double() / tau
            # log Σ_{t' ∉ {t, p}} exp(σ(t, t')/τ) for every other t: p's term removed from t's log-sum
            share = (column[others] - log_z[others]).exp().clamp(max=1.0)
            base = log_z[others] + torch.log1p(-share)
            best_j, best_c = self._total(vals[:, 0], log_z, chosen_align), None
            for c in cand.split(self.chunk):
                new_dist = torch.minimum(mind_wo, 1 - ref.rows(c)).mean(1).double()
                sims = (phi[c] @ chosen_phi[others].T).double() / tau  # (C, B-1)
                div = _log_sums_after_adding(base, sims) + torch.logsumexp(sims, 1) if budget > 1 \
                    else torch.zeros(len(c), dtype=torch.float64)
                a = (chosen_align[others].sum() + align[c]).double()
                j = new_dist / tau + self.mu_div * div / budget - self.lam_align * a / (tau * budget)
                k = int(j.argmin())
                if float(j[k]) < best_j - 1e-9:
                    best_j, best_c = float(j[k]), int(c[k])
            if best_c is None:
                continue
            new = (chosen_phi @ phi[best_c]).double() / tau
            if budget > 1:
                log_z[p] = torch.logsumexp(new[others], 0)
                log_z[others] = torch.logaddexp(base, new[others])
            taken[chosen[p]], taken[best_c] = False, True
            chosen[p], chosen_phi[p], chosen_align[p] = best_c, phi[best_c], align[best_c]
            dist[:, p] = col = 1 - ref.rows(torch.tensor([best_c]))[0]
            vals, pos = self._merge_nearest(dist, vals, pos, p, col)
        return chosen

    @staticmethod
    def _merge_nearest(dist: Tensor, vals: Tensor, pos: Tensor, p: int, col: Tensor) -> tuple[Tensor, Tensor]:
        """The two nearest selected positions of every reference sample after column ``p`` became ``col``."""
        if vals.shape[1] == 1:
            return col.unsqueeze(1), pos
        stale = (pos == p).any(1)  # p was among the two nearest: recompute those rows from scratch
        first, second = vals[:, 0], vals[:, 1]
        beats_first, beats_second = col < first, (col >= first) & (col < second)
        new_vals = torch.stack([torch.where(beats_first, col, first),
                                torch.where(beats_first, first, torch.where(beats_second, col, second))], 1)
        new_pos = torch.stack([torch.where(beats_first, p, pos[:, 0]),
                               torch.where(beats_first, pos[:, 0], torch.where(beats_second, p, pos[:, 1]))], 1)
        if bool(stale.any()):
            new_vals[stale], new_pos[stale] = dist[stale].topk(2, dim=1, largest=False)
        return new_vals, new_pos

    def _total(self, mind: Tensor, log_z: Tensor, chosen_align: Tensor) -> float:
        """J of the current selection from its coverage distances, log-sums and alignments."""
        budget = len(chosen_align)
        div = torch.where(torch.isinf(log_z), torch.zeros_like(log_z), log_z).sum()
        return float(mind.double().mean() / self.tau + self.mu_div * div / budget
                     - self.lam_align * chosen_align.double().sum() / (self.tau * budget))


@SELECTORS.register("single-modality")
class SingleModalitySelector(MMCSALSelector):
    """The MMCSAL objective on one modality's distance d_a alone, without alignment (a baseline).

    The downstream classifier still trains on both modalities of the selected pairs
    (mmcsal.md §6, pitfall 6).
    """

    def __init__(self, modality: str, mu_div: float = 1.0, tau: float = 0.07, eps: float = 0.01,
                 reference: int | None = 2048, swaps: int = 1, chunk: int = 256, cache: int = 2**25):
        if not isinstance(modality, str):
            raise TypeError(f"modality must be a modality name such as 'audio', got {modality!r}")
        super().__init__(lam_align=0.0, mu_div=mu_div, tau=tau, view=modality, eps=eps, reference=reference,
                         swaps=swaps, chunk=chunk, cache=cache)
        self.modality = modality

    @classmethod
    def example(cls, modalities: tuple[str, ...]) -> "SingleModalitySelector":
        return cls(modalities[0])
