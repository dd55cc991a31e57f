"""Subjective-logic opinions and the reduced Dempster–Shafer rule, on hand-made evidence."""
import torch

from mmlib.models.evidence import combine, combine_all, opinion


def test_opinion_of_hand_made_evidence():
    b, u = opinion(torch.tensor([[5.0, 1.0, 2.0]]))  # e = (4, 0, 1), S = 8
    assert torch.allclose(b, torch.tensor([[0.5, 0.0, 0.125]]))
    assert torch.allclose(u, torch.tensor([[3 / 8]]))
    assert torch.allclose(b.sum(1, keepdim=True) + u, torch.ones(1, 1))


def test_combination_of_two_conflicting_opinions():
    # b^1 = (1/2, 0), b^2 = (0, 1/2), u = 1/2 each: C = 1/4, b = (1/3, 1/3), u = 1/3, S = 6
    alpha = combine(torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0, 3.0]]))
    assert torch.allclose(alpha, torch.tensor([[3.0, 3.0]]))


def test_combination_of_two_agreeing_opinions():
    # alpha^1 = (3, 1): b^1 = (1/2, 0), u^1 = 1/2; alpha^2 = (8/3, 4/3): b^2 = (5/12, 1/12), u^2 = 1/2.
    # C = 1/2 * 1/12 = 1/24; b = (16/24, 1/24) / (23/24) = (16/23, 1/23); u = (1/4) / (23/24) = 6/23;
    # S = 2 / u = 23/3, alpha = b S + 1 = (19/3, 4/3)
    alpha = combine(torch.tensor([[3.0, 1.0]]), torch.tensor([[8 / 3, 4 / 3]]))
    assert torch.allclose(alpha, torch.tensor([[19 / 3, 4 / 3]]))
    assert alpha[0, 0] > 3.0  # agreement adds evidence for the shared class


def test_vacuous_opinion_is_neutral_and_the_rule_is_commutative():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(6, 4, generator=g) * 5 + 1
    b = torch.rand(6, 4, generator=g) * 5 + 1
    assert torch.allclose(combine(a, torch.ones(6, 4)), a, atol=1e-5)
    assert torch.allclose(combine(a, b), combine(b, a), atol=1e-5)
    _, u = opinion(combine(a, b))
    assert (u < opinion(a)[1]).all() and (u < opinion(b)[1]).all()  # two sources: less uncertainty


def test_combine_all_goes_left_to_right():
    g = torch.Generator().manual_seed(1)
    a, b, c = (torch.rand(3, 5, generator=g) * 4 + 1 for _ in range(3))
    assert torch.equal(combine_all([a, b, c]), combine(combine(a, b), c))
    assert torch.equal(combine_all([a]), a)
