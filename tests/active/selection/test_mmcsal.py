"""The MMCSAL objective: greedy increments equal J differences, swaps never raise J, λ_align's effect."""
import math

import pytest
import torch
import torch.nn.functional as F

import mmlib as mm
from mmlib.active.selection import MMCSALSelector, SingleModalitySelector, objective
from mmlib.active.selection.base import alignment, check_embeddings, pair_features


def pool(n=40, seed=0, noise=0.6):
    """Paired embeddings whose cross-modal alignment varies a lot from pair to pair."""
    g = torch.Generator().manual_seed(seed)
    u = F.normalize(torch.randn(n, 5, generator=g), dim=1)
    w = F.normalize(u + noise * torch.randn(n, 5, generator=g) * torch.rand(n, 1, generator=g) * 3, dim=1)
    return {"a": u, "b": w}


def test_objective_by_hand_on_two_points():
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    w = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    emb = {"a": u, "b": w}
    sel = torch.tensor([0, 1])
    # σ(0,1) = ⅓(u0·u1 + w0·w1 + ½(u0·w1 + w0·u1)) = ⅓(0 + 0.6 + ½(0.6 + 0)) = 0.3
    # d(0,0) = ⅓(1 − 1) = 0, d(1,1) = ⅓(1 − 0.8): every point covers itself best
    terms = objective(emb, sel, lam_align=0.5, mu_div=2.0, tau=0.1)
    assert terms["dist"] == pytest.approx((0 + (1 - 0.8) / 3) / 2, abs=1e-6)
    assert terms["div"] == pytest.approx(2 * (0.3 / 0.1) / 2, abs=1e-5)
    assert terms["align"] == pytest.approx((1.0 + 0.8) / 2, abs=1e-6)
    assert terms["J"] == pytest.approx(terms["dist"] / 0.1 + 2.0 * terms["div"] - 0.5 * terms["align"] / 0.1, abs=1e-5)
    assert objective(emb, sel[:1])["div"] == 0.0  # one element: no partner, empty log-sum counts 0


@pytest.mark.parametrize("lam, mu", [(0.0, 1.0), (0.3, 1.0), (1.0, 0.0), (0.3, 2.5)])
def test_greedy_increase_equals_the_objective_difference(lam, mu):
    emb = check_embeddings(pool())
    sel = MMCSALSelector(lam_align=lam, mu_div=mu, reference=None)
    phi, align = pair_features(emb), alignment(emb)
    budget, chosen = 8, [3, 17, 25]
    mind = (1 - phi @ phi[chosen].T).min(1).values
    sims = phi[chosen] @ phi[chosen].T / sel.tau
    sims.fill_diagonal_(-math.inf)
    log_z = torch.logsumexp(sims, 1)
    cand = torch.tensor([0, 5, 30])
    inc = sel._increase(phi[cand] @ phi.T, phi[cand], align[cand], phi[chosen], mind, log_z, budget)
    base = objective(emb, torch.tensor(chosen), lam, mu, sel.tau, budget=budget)["J"]
    for k, c in enumerate(cand.tolist()):
        after = objective(emb, torch.tensor(chosen + [c]), lam, mu, sel.tau, budget=budget)["J"]
        assert float(inc[k]) == pytest.approx(after - base, abs=1e-4)


def test_first_increase_from_a_single_element():
    emb = check_embeddings(pool())
    sel = MMCSALSelector(reference=None)
    phi, align = pair_features(emb), alignment(emb)
    mind = 1 - phi @ phi[4]
    inc = sel._increase(phi[[9]] @ phi.T, phi[[9]], align[[9]], phi[[4]], mind, torch.full((1,), -math.inf), 5)
    after = objective(emb, torch.tensor([4, 9]), sel.lam_align, sel.mu_div, sel.tau, budget=5)["J"]
    before = objective(emb, torch.tensor([4]), sel.lam_align, sel.mu_div, sel.tau, budget=5)["J"]
    assert float(inc[0]) == pytest.approx(after - before, abs=1e-4)


@pytest.mark.parametrize("budget", [2, 5, 12])
def test_swap_refinement_never_raises_j(budget):
    emb = check_embeddings(pool(seed=1))
    for seed in range(3):
        greedy = MMCSALSelector(swaps=0).select(emb, budget, seed)
        refined = MMCSALSelector(swaps=1).select(emb, budget, seed)
        j = lambda s: objective(emb, s, 0.3, 1.0, 0.07)["J"]  # noqa: E731
        assert j(refined) <= j(greedy) + 1e-6


def test_exact_greedy_when_all_candidates_fit():
    """With few enough samples every step scores all candidates: the seed does not matter."""
    emb = pool()
    sel = MMCSALSelector(eps=0.01, swaps=0)
    assert torch.equal(sel.select(emb, 3, 0), sel.select(emb, 3, 1))  # draws = ⌈40/3 · ln 100⌉ ≥ 40


def test_large_lambda_selects_the_best_aligned_pairs():
    emb = pool()
    a = alignment(check_embeddings(emb))
    top = set(a.topk(6).indices.tolist())
    chosen = MMCSALSelector(lam_align=1e4, eps=1e-6).select(emb, 6, 0)
    assert set(chosen.tolist()) == top
    none = MMCSALSelector(lam_align=0.0).select(emb, 6, 0)
    assert a[chosen].mean() > a[none].mean()


def test_reference_subsample_keeps_results_valid_and_seeded():
    emb = pool(n=80)
    sel = MMCSALSelector(reference=20)
    idx = sel.select(emb, 10, 0)
    assert len(torch.unique(idx)) == 10 and torch.equal(idx, sel.select(emb, 10, 0))


def test_single_modality_ignores_the_other_modality():
    emb = pool()
    other = dict(emb, b=F.normalize(torch.randn(40, 5, generator=torch.Generator().manual_seed(9)), dim=1))
    sel = mm.SELECTORS.create("single-modality", modality="a")
    assert torch.equal(sel.select(emb, 7, 2), sel.select(other, 7, 2))
    assert torch.equal(sel.select(emb, 7, 2), MMCSALSelector(lam_align=0.0, view="a").select(emb, 7, 2))
    assert isinstance(sel, SingleModalitySelector) and sel.lam_align == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="lam_align"):
        MMCSALSelector(lam_align=-1)
    with pytest.raises(ValueError, match="eps"):
        MMCSALSelector(eps=1.0)
    with pytest.raises(ValueError, match="unknown view"):
        MMCSALSelector(view="c").select(pool(), 3)
    with pytest.raises(ValueError, match="two or more modalities"):
        MMCSALSelector(lam_align=0.5).select({"a": pool()["a"]}, 3)


def test_uncached_reference_rows_give_the_same_selection():
    emb = pool(n=50)
    assert torch.equal(MMCSALSelector(cache=0).select(emb, 9, 1), MMCSALSelector().select(emb, 9, 1))
    assert torch.equal(MMCSALSelector(cache=0, reference=20).select(emb, 9, 1),
                       MMCSALSelector(reference=20).select(emb, 9, 1))


def test_two_nearest_positions_follow_a_replaced_column():
    g = torch.Generator().manual_seed(4)
    dist = torch.rand(30, 6, generator=g)
    vals, pos = dist.topk(2, dim=1, largest=False)
    for p in [0, 3, 5]:
        col = torch.rand(30, generator=g)
        dist[:, p] = col
        vals, pos = MMCSALSelector._merge_nearest(dist, vals, pos, p, col)
        expected = dist.topk(2, dim=1, largest=False)
        assert torch.equal(vals, expected.values)
        assert torch.equal(dist.gather(1, pos), vals)


def reference_swap_pass(emb, chosen, lam, mu, tau):
    """One pass of best swaps by brute force over every unselected pair, J recomputed from scratch."""
    chosen = chosen.clone()
    n = len(emb["a"])
    for p in range(len(chosen)):
        current = objective(emb, chosen, lam, mu, tau)["J"]
        best, best_c = current, None
        for c in range(n):
            if c in chosen.tolist():
                continue
            trial = chosen.clone()
            trial[p] = c
            j = objective(emb, trial, lam, mu, tau)["J"]
            if j < best - 1e-9:
                best, best_c = j, c
        if best_c is not None:
            chosen[p] = best_c
    return chosen


@pytest.mark.parametrize("n, budget, lam, seed, swapped", [(24, 2, 0.3, 2, 1), (24, 4, 0.3, 2, 2), (40, 6, 0.3, 2, 2),
                                                           (50, 7, 1.0, 4, 3), (60, 12, 0.3, 5, 5)])
def test_swap_pass_matches_brute_force(n, budget, lam, seed, swapped):
    """With every unselected pair as a candidate, the incremental swap pass equals recomputing J."""
    emb = check_embeddings(pool(n=n, seed=seed))
    greedy = MMCSALSelector(lam_align=lam, swaps=0, eps=1e-9).select(emb, budget, 0)
    refined = MMCSALSelector(lam_align=lam, swaps=1, eps=1e-9).select(emb, budget, 0)
    assert torch.equal(refined, reference_swap_pass(emb, greedy, lam, 1.0, 0.07))
    assert int((refined != greedy).sum()) == swapped  # the pass does replace pairs in these cases
