"""Baselines: joint, joint + unimodal losses, unimodal training."""
import pytest
import torch
import torch.nn.functional as F

import mmlib as mm


def _out(model, data):
    batch = data.train.batch(torch.arange(8))
    return model(batch["inputs"]), batch


def test_joint_uni_adds_one_loss_per_modality(make_data):
    data = make_data(modalities=("a", "b", "c"))
    model = mm.build_model(data)
    out, batch = _out(model, data)
    losses = mm.METHODS.create("joint-uni", weight=0.5).compute_loss(None, out, batch)
    assert set(losses) == {"fused", "uni/a", "uni/b", "uni/c"}
    assert torch.allclose(losses["uni/b"], 0.5 * F.cross_entropy(out.uni_logits["b"], batch["y"]))


def test_unimodal_trains_only_its_encoder(make_data):
    data = make_data()
    mm.seed_everything(0)
    model = mm.build_model(data)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mm.fit(model, data, [mm.methods.Unimodal("a")], num_epochs=1, batch_size=16, weight_decay=0.0)
    # fit restores the best epoch; with one epoch that is the trained model
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert any(k.startswith("encoders.a.") for k in changed)
    assert not any(k.startswith("encoders.b.") for k in changed)


def test_unimodal_unknown_modality(make_data):
    data = make_data()
    with pytest.raises(ValueError, match="unknown modality 'z'"):
        mm.fit(mm.build_model(data), data, [mm.methods.Unimodal("z")], num_epochs=1)
