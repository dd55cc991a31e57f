"""Fusion heads: shapes, decomposition (concat b/M, sum full bias), FiLM/gated formulas, errors."""
import pytest
import torch

import mmlib as mm
from mmlib.models.fusion import ConcatFusion, FiLMFusion, GatedFusion, SumFusion

B, C = 5, 4
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
    assert head.decomposes == (name in ("concat", "sum"))
    if head.decomposes:
        assert not hasattr(head, "uni")
        assert torch.allclose(sum(uni.values()), logits, atol=1e-5)
    else:
        assert not torch.allclose(sum(uni.values()), logits, atol=1e-3)


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


@pytest.mark.parametrize("cls", [ConcatFusion, SumFusion, FiLMFusion, GatedFusion])
@pytest.mark.parametrize("dims", [{"a": 3}, {}])
def test_fewer_than_two_modalities_is_an_error(cls, dims):
    with pytest.raises(ValueError, match=r"fusion needs at least two modalities, got"):
        cls(dims, num_classes=C)


def test_unknown_fusion_suggests_close_match():
    with pytest.raises(mm.UnknownNameError, match=r"Did you mean 'concat'\?.*Known fusions: concat, film, gated, sum"):
        mm.FUSIONS.create("concatt", dims=dims_for(2), num_classes=C)
