"""MultimodalNet and build_model: forward output, the feature hook, and mismatch errors."""
import pytest
import torch
from torch import nn

import mmlib as mm
from mmlib.models.net import MultimodalNet, Output, build_model


def batch_of(data, n=5):
    return {m: x[:n] for m, x in data.train.inputs.items()}


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("fusion", mm.FUSIONS.names())
def test_build_model_for_every_fusion(make_data, fusion, kind):
    data = make_data(modalities=("a", "b", "c"), kind=kind)
    torch.manual_seed(0)
    model = build_model(data, fusion=fusion).eval()
    assert model.modalities == ("a", "b", "c")
    assert type(model.head) is type(mm.FUSIONS.create(fusion, dims={"a": 4, "b": 4}, num_classes=3))
    out = model(batch_of(data))
    assert isinstance(out, Output)
    assert out.logits.shape == (5, 3)
    assert list(out.feats) == ["a", "b", "c"] and list(out.uni_logits) == ["a", "b", "c"]
    for m in data.modalities:
        assert out.feats[m].shape == (5, model.encoders[m].out_dim) == (5, 4)
        assert out.uni_logits[m].shape == (5, 3)
        assert torch.allclose(out.feats[m], model.encoders[m](data.train.inputs[m][:5]))
    assert torch.allclose(out.logits, model.head.fuse(out.feats))


def test_encoder_override_and_fusion_kwargs(make_data):
    data = make_data()
    model = build_model(data, fusion="sum", encoders={"b": ("mlp", {"in_dim": 6, "hidden": 5, "out_dim": 7})},
                        separate_uni=True)
    assert model.encoders["a"].out_dim == 4 and model.encoders["b"].out_dim == 7
    assert model.head.dims == {"a": 4, "b": 7}
    assert model.head.decomposes is False
    assert data.encoders["b"][1]["out_dim"] == 4  # the dataset's defaults are not changed


@pytest.mark.parametrize("fusion", mm.FUSIONS.names())
def test_feature_hook_changes_fused_logits_but_not_unimodal_ones(make_data, fusion):
    data = make_data()
    torch.manual_seed(0)
    model = build_model(data, fusion=fusion).eval()
    x = batch_of(data)
    plain = model(x)
    seen = {}

    def drop_b(feats):
        seen.update(feats)
        return {**feats, "b": torch.zeros_like(feats["b"]) + 5.0}

    hooked = model(x, feature_hook=drop_b)
    assert set(seen) == {"a", "b"}
    assert not torch.allclose(hooked.logits, plain.logits)
    expected = model.head.fuse({"a": plain.feats["a"], "b": torch.full_like(plain.feats["b"], 5.0)})
    assert torch.allclose(hooked.logits, expected, atol=1e-6)
    for m in data.modalities:
        assert torch.equal(hooked.uni_logits[m], plain.uni_logits[m])
        assert torch.equal(hooked.feats[m], plain.feats[m])  # feats are the encoders' output


def test_extra_inputs_are_ignored(make_data):
    data = make_data()
    model = build_model(data).eval()
    x = batch_of(data)
    assert torch.equal(model({**x, "z": torch.zeros(5, 2)}).logits, model(x).logits)


def test_missing_modality_is_a_key_error_naming_it(make_data):
    data = make_data(modalities=("a", "b", "c"))
    model = build_model(data)
    x = batch_of(data)
    del x["b"]
    with pytest.raises(KeyError, match=r"batch has no input for modality 'b'; it has \['a', 'c'\]"):
        model(x)


def test_encoders_and_head_must_list_the_same_modalities():
    encs = nn.ModuleDict({"a": mm.models.MLPEncoder(3, 4, 2), "b": mm.models.MLPEncoder(3, 4, 2)})
    for dims in ({"a": 2, "c": 2}, {"b": 2, "a": 2}, {"a": 2, "b": 2, "c": 2}):
        head = mm.FUSIONS.create("concat", dims=dims, num_classes=3)
        with pytest.raises(ValueError, match=r"encoders \('a', 'b'\) and head .* must list the same modalities"):
            MultimodalNet(encs, head)


def test_unknown_fusion_in_build_model(make_data):
    with pytest.raises(mm.UnknownNameError, match=r"unknown fusion 'gate'\. Did you mean 'gated'\?"):
        build_model(make_data(), fusion="gate")
