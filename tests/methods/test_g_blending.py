"""G-Blending: Delta G, Delta O and the blend weights against hand-computed values; when and how it re-weights."""
import pytest
import torch
import torch.nn.functional as F

import mmlib as mm
from mmlib.methods.base import TrainState
from mmlib.methods.g_blending import GBlending, blend_weights, generalisation_and_overfitting, head_losses
from tests.helpers import make_tiny_data

# two checkpoints of three heads; losses chosen so that every quantity is easy to check by hand
BEFORE = {"train": {"fused": 2.0, "a": 2.2, "b": 2.3}, "val": {"fused": 2.1, "a": 2.3, "b": 2.3}}
AFTER = {"train": {"fused": 1.0, "a": 1.5, "b": 2.0}, "val": {"fused": 1.5, "a": 1.7, "b": 2.25}}
# Delta G = val drop: 0.6, 0.6, 0.05. O before: 0.1, 0.1, 0.0; O after: 0.5, 0.2, 0.25 -> Delta O: 0.4, 0.1, 0.25
# r = Delta G / Delta O^2: 0.6 / 0.16 = 3.75, 0.6 / 0.01 = 60, 0.05 / 0.0625 = 0.8; sum 64.55
RATIO = {"fused": 3.75, "a": 60.0, "b": 0.8}


def test_generalisation_and_overfitting_by_hand():
    gain, over = generalisation_and_overfitting(BEFORE, AFTER)
    assert gain == pytest.approx({"fused": 0.6, "a": 0.6, "b": 0.05})
    assert over == pytest.approx({"fused": 0.4, "a": 0.1, "b": 0.25})


def test_blend_weights_by_hand_sum_to_the_number_of_heads():
    w = blend_weights(*generalisation_and_overfitting(BEFORE, AFTER))
    assert w == pytest.approx({k: 3 * r / 64.55 for k, r in RATIO.items()})
    assert w["a"] == pytest.approx(2.788536), w  # 180 / 64.55
    assert sum(w.values()) == pytest.approx(3.0)


def test_blend_weights_with_the_papers_normalisation():
    w = blend_weights(*generalisation_and_overfitting(BEFORE, AFTER), total=1.0)
    assert w == pytest.approx({"fused": 0.058095, "a": 0.929512, "b": 0.012393}, abs=1e-6)


def test_a_head_whose_validation_loss_rose_gets_no_weight():
    w = blend_weights({"fused": 0.5, "a": -0.1, "b": 0.0}, {"fused": 0.5, "a": 0.1, "b": 0.2})
    assert w == {"fused": 3.0, "a": 0.0, "b": 0.0}


def test_no_generalisation_at_all_gives_none():
    assert blend_weights({"fused": 0.0, "a": -0.2}, {"fused": 0.1, "a": 0.1}) is None


def test_zero_overfitting_is_finite_and_takes_the_weight():
    w = blend_weights({"fused": 0.1, "a": 0.1}, {"fused": 0.0, "a": 0.1})
    assert all(torch.isfinite(torch.tensor(list(w.values()))))
    assert w["fused"] == pytest.approx(2.0) and w["a"] == pytest.approx(0.0, abs=1e-9)


def test_head_losses_are_the_mean_cross_entropy_of_each_head():
    data = make_tiny_data()
    mm.seed_everything(0)
    model = mm.build_model(data)
    got = head_losses(model, data.val)
    model.eval()
    with torch.no_grad():
        out = model(data.val.inputs)
    y = data.val.y
    assert got["fused"] == pytest.approx(float(F.cross_entropy(out.logits, y)), rel=1e-5)
    for m in ("a", "b"):
        assert got[m] == pytest.approx(float(F.cross_entropy(out.uni_logits[m], y)), rel=1e-5)


def _state(model, data, epoch=0, num_epochs=9):
    return TrainState(model=model, optimizer=None, modalities=tuple(model.modalities), num_classes=3,
                      num_epochs=num_epochs, device=torch.device("cpu"), generator=torch.Generator().manual_seed(0),
                      epoch=epoch, data=data)


def test_loss_is_the_weighted_sum_and_starts_as_joint_uni():
    data = make_tiny_data()
    mm.seed_everything(0)
    model = mm.build_model(data)
    method = GBlending()
    method.on_fit_start(_state(model, data))
    batch = data.train.batch(torch.arange(12))
    out = model(batch["inputs"])
    uniform = method.compute_loss(None, out, batch)
    reference = mm.METHODS.create("joint-uni").compute_loss(None, out, batch)
    assert set(uniform) == set(reference) == {"fused", "uni/a", "uni/b"}
    assert all(torch.allclose(uniform[k], reference[k]) for k in uniform)
    method.weights = {"fused": 0.5, "a": 2.0, "b": 0.25}
    weighted = method.compute_loss(None, out, batch)
    assert torch.allclose(weighted["fused"], 0.5 * reference["fused"])
    assert torch.allclose(weighted["uni/a"], 2.0 * reference["uni/a"])
    assert torch.allclose(weighted["uni/b"], 0.25 * reference["uni/b"])


def test_reestimates_every_super_epoch_from_the_measured_losses_and_not_after_the_last(monkeypatch):
    data = make_tiny_data()
    model = mm.build_model(data)
    method = GBlending(super_epoch=3)
    checkpoints = iter([BEFORE, AFTER])
    monkeypatch.setattr(method, "_measure", lambda state: next(checkpoints))
    state = _state(model, data, num_epochs=6)
    method.on_fit_start(state)  # measures BEFORE
    for epoch in (0, 1):
        state.epoch = epoch
        method.on_train_epoch_end(state)
        assert method.weights == {"fused": 1.0, "a": 1.0, "b": 1.0}
    state.epoch = 2  # the third epoch ends: measure AFTER, blend
    method.on_train_epoch_end(state)
    assert method.weights == pytest.approx({k: 3 * r / 64.55 for k, r in RATIO.items()})
    state.epoch = 5  # the last epoch: nothing left to weight (the iterator would raise if measured)
    method.on_train_epoch_end(state)
    assert {r["name"] for r in state.records} >= {"w/fused", "gain/a", "over/b"}


def test_keeps_the_previous_weights_when_nothing_generalised(monkeypatch):
    data = make_tiny_data()
    method = GBlending(super_epoch=1)
    checkpoints = iter([AFTER, BEFORE])  # every validation loss rises
    monkeypatch.setattr(method, "_measure", lambda state: next(checkpoints))
    state = _state(mm.build_model(data), data, num_epochs=3)
    method.on_fit_start(state)
    method.weights = {"fused": 2.0, "a": 0.5, "b": 0.5}
    method.on_train_epoch_end(state)
    assert method.weights == {"fused": 2.0, "a": 0.5, "b": 0.5}


def test_in_fit_it_reweights_at_the_super_epoch_boundaries_only():
    data = make_tiny_data(n=60)
    mm.seed_everything(0)
    res = mm.fit(mm.build_model(data), data, GBlending(super_epoch=2), num_epochs=5, batch_size=16, lr=0.05)
    log = res.log
    assert sorted(log.loc[log["name"] == "w/fused", "epoch"]) == [1, 3]
    w = log[log["name"].str.startswith("w/")].groupby("epoch")["value"].sum()
    assert w.tolist() == pytest.approx([3.0, 3.0])


def test_bad_super_epoch_is_refused():
    with pytest.raises(ValueError, match="super_epoch"):
        GBlending(super_epoch=0)
    with pytest.raises(TypeError, match="super_epoch"):
        GBlending(super_epoch=2.5)
