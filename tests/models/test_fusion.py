"""Fusion heads: shapes, decomposition (concat b/M, sum full bias), FiLM/gated, late, evidential and QMF formulas, errors."""
import math

import pytest
import torch
import torch.nn.functional as F

import mmlib as mm
from mmlib.models.evidence import combine
from mmlib.models.fusion import ConcatFusion, FiLMFusion, GatedFusion, SumFusion

B, C = 5, 4
ADDITIVE = ("concat", "sum")  # the fused logits are the sum of the unimodal ones
BRANCHES = ("late", "evidential", "qmf")  # the unimodal logits are the branches the fusion combines
ALL_DIMS = {"m0": 3, "m1": 4, "m2": 6}


def dims_for(m):
    return dict(list(ALL_DIMS.items())[:m])


def feats_for(dims, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(B, d, generator=g).requires_grad_(grad) for m, d in dims.items()}


def make(name, m, **kw):
    torch.manual_seed(0)
    return mm.FUSIONS.create(name, dims=dims_for(m), num_classes=C, **kw)


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("name", mm.FUSIONS.names())
def test_shapes_and_unimodal_keys(name, m):
    head = make(name, m)
    feats = feats_for(dims_for(m))
    logits, uni = head(feats)
    assert logits.shape == (B, C)
    assert list(uni) == list(dims_for(m))
    assert all(u.shape == (B, C) for u in uni.values())
    assert head.modalities == tuple(dims_for(m))


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("name", mm.FUSIONS.names())
def test_decomposing_heads_sum_to_the_fused_logits(name, m):
    head = make(name, m)
    feats = feats_for(dims_for(m))
    logits, uni = head(feats)
    assert head.decomposes == (name in ADDITIVE + BRANCHES)
    if name in ADDITIVE:
        assert not hasattr(head, "uni")
        assert torch.allclose(sum(uni.values()), logits, atol=1e-5)
    else:
        assert not torch.allclose(sum(uni.values()), logits, atol=1e-3)
    if name in BRANCHES:
        assert not hasattr(head, "uni")
        for k, z in feats.items():
            assert torch.allclose(head.fc[k](z), head.branches(feats)[k])


@pytest.mark.parametrize("m", [2, 3])
def test_concat_slices_share_the_bias_equally(m):
    head = make("concat", m)
    feats = feats_for(dims_for(m))
    _, uni = head(feats)
    W, b = head.fc.weight, head.fc.bias
    start = 0
    for name, d in dims_for(m).items():
        expected = feats[name] @ W[:, start:start + d].T + b / m
        assert torch.allclose(uni[name], expected, atol=1e-6)
        start += d
    zeros = {k: torch.zeros(1, d) for k, d in dims_for(m).items()}
    assert torch.allclose(head.unimodal(zeros)["m0"], (b / m)[None], atol=1e-7)


def test_sum_gives_each_modality_its_full_own_bias():
    head = make("sum", 2)
    zeros = {k: torch.zeros(1, d) for k, d in dims_for(2).items()}
    logits, uni = head(zeros)
    for k in uni:
        assert torch.allclose(uni[k], head.fc[k].bias[None])
    assert torch.allclose(logits, (head.fc["m0"].bias + head.fc["m1"].bias)[None])


def test_unimodal_of_a_subset_of_modalities_matches_the_full_decomposition():
    for name in ("concat", "sum", "film", "gated"):
        head = make(name, 3)
        feats = feats_for(dims_for(3))
        full = head.unimodal(feats)
        part = head.unimodal({"m1": feats["m1"]})
        assert list(part) == ["m1"]
        assert torch.allclose(part["m1"], full["m1"], atol=1e-6), name


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("name", ["film", "gated"])
def test_film_and_gated_use_separate_linear_heads(name, m):
    head = make(name, m)
    assert head.decomposes is False
    feats = feats_for(dims_for(m))
    _, uni = head(feats)
    assert set(head.uni) == set(dims_for(m))
    for k, z in feats.items():
        assert isinstance(head.uni[k], torch.nn.Linear)
        assert torch.allclose(uni[k], z @ head.uni[k].weight.T + head.uni[k].bias, atol=1e-6)


def test_film_formula_modulates_the_last_modality():
    head = make("film", 3)
    feats = feats_for(dims_for(3))
    gb = head.film(torch.cat([feats["m0"], feats["m1"]], 1))
    gamma, beta = gb[:, :6], gb[:, 6:]
    expected = head.fc(gamma * feats["m2"] + beta)
    assert head.target == "m2" and head.cond == ("m0", "m1")
    assert torch.allclose(head.fuse(feats), expected, atol=1e-6)


def test_gated_formula_and_hidden_size():
    head = make("gated", 2, hidden=7)
    assert head.value.out_features == 7 and head.gate.in_features == 3
    feats = feats_for(dims_for(2))
    expected = head.fc(torch.sigmoid(head.gate(feats["m0"])) * head.value(feats["m1"]))
    assert torch.allclose(head.fuse(feats), expected, atol=1e-6)
    assert make("gated", 2).value.out_features == 4  # default hidden: the target's width


@pytest.mark.parametrize("name", ["concat", "sum"])
def test_separate_uni_makes_concat_and_sum_non_decomposing(name):
    head = make(name, 2, separate_uni=True)
    assert head.decomposes is False
    feats = feats_for(dims_for(2))
    logits, uni = head(feats)
    for k, z in feats.items():
        assert torch.allclose(uni[k], head.uni[k](z))
    assert not torch.allclose(sum(uni.values()), logits, atol=1e-3)


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("name", mm.FUSIONS.names())
def test_gradient_flows_from_fused_logits_into_every_feature(name, m):
    head = make(name, m)
    feats = feats_for(dims_for(m), grad=True)
    head.fuse(feats).pow(2).sum().backward()
    for k, z in feats.items():
        assert z.grad is not None and z.grad.abs().sum() > 0, k


@pytest.mark.parametrize("cls", [ConcatFusion, SumFusion, FiLMFusion, GatedFusion, mm.models.LateFusion,
                                 mm.models.EvidentialFusion, mm.models.ConfidenceFusion])
@pytest.mark.parametrize("dims", [{"a": 3}, {}])
def test_fewer_than_two_modalities_is_an_error(cls, dims):
    with pytest.raises(ValueError, match=r"fusion needs at least two modalities, got"):
        cls(dims, num_classes=C)


def test_unknown_fusion_suggests_close_match():
    with pytest.raises(mm.UnknownNameError, match=r"Did you mean 'concat'\?.*Known fusions: concat, evidential, film, gated, late, qmf, "
                       r"sum"):
        mm.FUSIONS.create("concatt", dims=dims_for(2), num_classes=C)


def set_branches(head, logits_per_modality):
    """Make every branch output fixed logits (zero weights, the bias holds them)."""
    with torch.no_grad():
        for m, value in logits_per_modality.items():
            head.fc[m].weight.zero_()
            head.fc[m].bias.copy_(torch.tensor(value))


def test_late_fusion_averages_the_branch_probabilities():
    head = mm.FUSIONS.create("late", dims={"a": 2, "b": 3}, num_classes=2)
    set_branches(head, {"a": [0.0, math.log(3.0)], "b": [0.0, 0.0]})  # p^a = (1/4, 3/4), p^b = (1/2, 1/2)
    logits = head.fuse({"a": torch.zeros(1, 2), "b": torch.zeros(1, 3)})
    assert torch.allclose(logits.exp(), torch.tensor([[3 / 8, 5 / 8]]), atol=1e-6)  # a probability already
    feats = feats_for(dims_for(3))
    head = make("late", 3)
    expected = torch.stack([F.softmax(head.fc[m](z), 1) for m, z in feats.items()]).mean(0)
    assert torch.allclose(F.softmax(head.fuse(feats), 1), expected, atol=1e-6)


def test_evidential_fusion_combines_hand_made_opinions():
    head = mm.FUSIONS.create("evidential", dims={"a": 2, "b": 2}, num_classes=2)
    softplus_inv = lambda e: math.log(math.expm1(e))  # noqa: E731
    # alpha^a = (3, 1) + tiny, alpha^b = (1, 3): b^a = (1/2, 0), b^b = (0, 1/2), u = 1/2 each; C = 1/4,
    # so b = (1/3, 1/3), u = 1/3, S = 6 and the combined alpha = (3, 3)
    set_branches(head, {"a": [softplus_inv(2.0), -30.0], "b": [-30.0, softplus_inv(2.0)]})
    zeros = {"a": torch.zeros(1, 2), "b": torch.zeros(1, 2)}
    assert torch.allclose(head.decompose(zeros)["a"].exp(), torch.tensor([[3.0, 1.0]]), atol=1e-5)
    assert torch.allclose(head.fuse(zeros).exp(), torch.tensor([[3.0, 3.0]]), atol=1e-4)


def test_evidential_fusion_of_three_combines_left_to_right():
    head = make("evidential", 3)
    feats = feats_for(dims_for(3))
    alpha = {m: F.softplus(head.fc[m](z)) + 1 for m, z in feats.items()}
    expected = combine(combine(alpha["m0"], alpha["m1"]), alpha["m2"])
    assert torch.allclose(head.fuse(feats), expected.log(), atol=1e-6)
    assert (head.fuse(feats).exp() >= 1 - 1e-6).all()


def test_qmf_weights_follow_the_negative_energy_and_are_detached():
    head = mm.FUSIONS.create("qmf", dims={"a": 2, "b": 2}, num_classes=3, temperature=2.0)
    fa, fb = [1.0, 2.0, 0.5], [0.0, 0.0, 3.0]
    set_branches(head, {"a": fa, "b": fb})
    zeros = {"a": torch.zeros(1, 2), "b": torch.zeros(1, 2)}
    ca, cb = torch.tensor(fa).logsumexp(0), torch.tensor(fb).logsumexp(0)
    wa = torch.sigmoid((ca - cb) / 2.0)  # softmax over two modalities
    w = head.weights(zeros)
    assert torch.allclose(w, torch.stack([wa, 1 - wa])[None], atol=1e-6)
    assert torch.allclose(head.fuse(zeros), wa * torch.tensor(fa) + (1 - wa) * torch.tensor(fb), atol=1e-6)
    feats = feats_for(dims_for(2), grad=True)
    assert not head.weights({"a": feats["m0"][:, :2], "b": feats["m1"][:, :2]}).requires_grad


def test_static_qmf_weighs_modalities_equally():
    head = make("qmf", 3, dynamic=False)
    feats = feats_for(dims_for(3))
    assert torch.allclose(head.weights(feats), torch.full((B, 3), 1 / 3))
    assert torch.allclose(head.fuse(feats), sum(head.branches(feats).values()) / 3, atol=1e-6)


@pytest.mark.parametrize("kwargs, error", [({"dynamic": 1}, TypeError), ({"temperature": 0.0}, ValueError)])
def test_qmf_rejects_bad_settings(kwargs, error):
    with pytest.raises(error, match=r"dynamic must be True or False|temperature must be"):
        make("qmf", 2, **kwargs)
