"""Stage-1 losses: InfoNCE and the prototype loss against hand-computed values, Sinkhorn's marginals."""
import math

import pytest
import torch

from mmlib.active.contrastive import cross_modal_loss, info_nce, jitter, prototype_loss, sinkhorn


def softplus(x):
    return math.log1p(math.exp(x))


def test_info_nce_on_matched_pairs_is_log_one_plus_e_to_minus_one_over_tau():
    eye = torch.eye(2)
    assert info_nce(eye, eye, tau=1.0).item() == pytest.approx(softplus(-1.0), abs=1e-6)
    assert info_nce(eye, eye, tau=0.5).item() == pytest.approx(softplus(-2.0), abs=1e-6)
    swapped = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert info_nce(eye, swapped, tau=1.0).item() == pytest.approx(softplus(1.0), abs=1e-6)


def test_info_nce_averages_both_directions():
    """Rows and columns of the similarity matrix differ here: the loss is the mean of both cross-entropies."""
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    b = torch.eye(2)
    rows = (softplus(-1.0) + softplus(-0.2)) / 2  # a_i against all b: logits [[1, 0], [0.6, 0.8]]
    cols = (softplus(-0.4) + softplus(-0.8)) / 2  # b_i against all a: logits [[1, 0.6], [0, 0.8]]
    assert info_nce(a, b, tau=1.0).item() == pytest.approx((rows + cols) / 2, abs=1e-6)
    assert info_nce(a, b, 1.0).item() != pytest.approx(rows, abs=1e-3)


def test_cross_modal_loss_averages_pairs_of_three_modalities():
    g = torch.Generator().manual_seed(0)
    emb = {m: torch.nn.functional.normalize(torch.randn(5, 3, generator=g), dim=1) for m in "abc"}
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    expected = sum(info_nce(emb[x], emb[y], 0.2) for x, y in pairs) / 3
    assert cross_modal_loss(emb, 0.2).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="at least two modalities"):
        cross_modal_loss({"a": emb["a"]})
    with pytest.raises(ValueError, match="same shape"):
        info_nce(emb["a"], emb["b"][:4])


def test_sinkhorn_balances_two_samples_that_prefer_one_prototype():
    """Both samples prefer prototype 0; equipartition splits them evenly (without it q would be ~[1, 0])."""
    q = sinkhorn(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), eps=0.05, iters=3)
    assert torch.allclose(q, torch.full((2, 2), 0.5), atol=1e-6)


def test_sinkhorn_marginals():
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(12, 4, generator=g)
    q = sinkhorn(scores, eps=0.5, iters=3)
    assert torch.allclose(q.sum(1), torch.ones(12), atol=1e-5)  # rows: a distribution per sample
    q = sinkhorn(scores, eps=0.5, iters=200)
    assert torch.allclose(q.sum(0), torch.full((4,), 3.0), atol=1e-4)  # columns: B / K each
    assert torch.allclose(sinkhorn(torch.zeros(6, 3)), torch.full((6, 3), 1 / 3))


def test_prototype_loss_on_views_at_their_prototypes():
    """z1 = z2 = prototypes = I: targets are one-hot (up to e^-20), predictions softmax(I / τ_p)."""
    eye = torch.eye(2)
    assert prototype_loss(eye, eye, eye, tau_p=1.0).item() == pytest.approx(softplus(-1.0), abs=1e-6)
    assert prototype_loss(eye, eye, eye, tau_p=0.1).item() == pytest.approx(softplus(-10.0), abs=1e-6)


def test_prototype_loss_swaps_the_views():
    """View 1 sits at prototype 0 and view 2 at prototype 1 for sample 0 (and vice versa): each view's
    target then disagrees with the other view's prediction, a large loss."""
    eye = torch.eye(2)
    flipped = eye.flip(0)
    assert prototype_loss(eye, flipped, eye, tau_p=1.0).item() == pytest.approx(softplus(1.0), abs=1e-6)


def test_prototype_loss_reaches_prototypes_and_embeddings_not_targets():
    z = torch.nn.functional.normalize(torch.randn(8, 3, generator=torch.Generator().manual_seed(2)), dim=1)
    z1, z2 = z.clone().requires_grad_(), (z + 0.1).clone().requires_grad_()
    protos = torch.randn(4, 3, generator=torch.Generator().manual_seed(3), requires_grad=True)
    prototype_loss(z1, z2, protos).backward()
    assert protos.grad.abs().sum() > 0 and z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_jitter_masks_and_adds_noise_reproducibly():
    x = torch.ones(1000, 4)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    only_mask = jitter(x, noise=0.0, mask=0.25, generator=g())
    assert set(only_mask.unique().tolist()) == {0.0, 1.0}
    assert (only_mask == 0).float().mean().item() == pytest.approx(0.25, abs=0.02)
    assert torch.equal(jitter(x, 0.1, 0.2, g()), jitter(x, 0.1, 0.2, g()))
    assert torch.equal(jitter(x, 0.0, 0.0), x)
