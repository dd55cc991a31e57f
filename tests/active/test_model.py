"""The Stage-1 two-stream network: normalised embeddings, prototypes, no classifier."""
import pytest
import torch

import mmlib as mm
from mmlib.active.model import TwoStreamNet


def test_embeddings_are_normalised_and_logits_empty(make_data):
    data = make_data()
    net = mm.build_model(data, model="two-stream", proj_dim=5, num_prototypes=7)
    out = net(data.train.batch(torch.arange(9))["inputs"])
    assert set(out.feats) == {"a", "b"} and out.uni_logits == {}
    assert out.logits.shape == (9, 0)
    for z in out.feats.values():
        assert z.shape == (9, 5) and torch.allclose(z.norm(dim=1), torch.ones(9), atol=1e-6)
    assert net.prototypes_of("a").shape == (7, 5) and net.prototypes_of("a") is not net.prototypes_of("b")


def test_shared_prototypes_are_one_bank(make_data):
    net = mm.build_model(make_data(("a", "b", "c")), model="two-stream", shared_prototypes=True)
    assert net.prototypes_of("a") is net.prototypes_of("c")
    assert list(net.prototypes) == ["shared"]


def test_same_seed_same_encoders_with_or_without_prototypes_in_use(make_data):
    """The ablation without prototypes starts from the same encoder weights (paired by seed)."""
    data = make_data()
    torch.manual_seed(0)
    a = mm.build_model(data, model="two-stream", shared_prototypes=False)
    torch.manual_seed(0)
    b = mm.build_model(data, model="two-stream", shared_prototypes=True)
    for (name, p), (_, q) in zip(a.encoders.named_parameters(), b.encoders.named_parameters()):
        assert torch.equal(p, q), name


def test_bad_arguments(make_data):
    data = make_data()
    with pytest.raises(ValueError, match="proj_dim"):
        mm.build_model(data, model="two-stream", proj_dim=0)
    with pytest.raises(ValueError, match="two modalities"):
        TwoStreamNet(torch.nn.ModuleDict({"a": torch.nn.Identity()}))
    net = mm.build_model(data, model="two-stream")
    with pytest.raises(KeyError, match="no input for modality 'b'"):
        net.embed({"a": data.train.inputs["a"]})
