"""Method base class: no-op hooks, exclusivity, parameter selection by module."""
import pytest
import torch

import mmlib as mm
from mmlib.methods.base import EXCLUSIVE_HOOKS, Method, exclusive_owner, modality_params, overrides


def test_every_hook_is_a_no_op(make_data):
    m = Method()
    feats = {"a": torch.ones(2, 3)}
    assert m.on_features(None, feats) is feats
    assert m.compute_loss(None, None, None) is None
    assert m.train_loader(None, None) is None
    assert m.state_dict() == {}
    assert not any(overrides(m, h) for h in EXCLUSIVE_HOOKS)


def test_default_backward_sums_losses():
    w = torch.ones(2, requires_grad=True)
    Method().backward(None, {"x": (2 * w).sum(), "y": (3 * w).sum()})
    assert torch.equal(w.grad, torch.full((2,), 5.0))


def test_exclusive_owner():
    joint, uni = mm.METHODS.create("joint"), mm.METHODS.create("joint-uni")
    assert exclusive_owner([Method(), joint], "compute_loss") is joint
    assert exclusive_owner([Method()], "compute_loss") is None
    with pytest.raises(ValueError, match="only one method may own"):
        exclusive_owner([joint, uni], "compute_loss")


def test_modality_params_are_selected_by_module(make_data):
    model = mm.build_model(make_data())
    ids = {id(p) for p in modality_params(model, "a")}
    assert ids == {id(p) for p in model.encoders["a"].parameters()}
    assert not ids & {id(p) for p in model.head.parameters()}


def test_state_all_reduce_is_identity_without_ddp(make_data):
    model = mm.build_model(make_data())
    state = mm.TrainState(model, torch.optim.SGD(model.parameters(), 0.1), model.modalities, 3, 1,
                          torch.device("cpu"), torch.Generator())
    t = torch.tensor([1.0, 2.0])
    assert state.world_size == 1 and torch.equal(state.all_reduce(t), torch.tensor([1.0, 2.0]))
    state.log("x", torch.tensor(2.5))
    assert state.records == [{"epoch": 0, "step": 0, "name": "x", "value": 2.5}]
