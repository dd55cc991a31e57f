"""Modality dropout: the drop rate, the fills, one modality per sample, p = 0 is joint training, no in-place damage."""
import pytest
import torch

import mmlib as mm
from mmlib.methods.base import TrainState
from mmlib.methods.modality_dropout import ModalityDropout


def started(data, **kwargs):
    method = ModalityDropout(**kwargs)
    state = TrainState(model=None, optimizer=None, modalities=data.modalities, num_classes=data.num_classes,
                       num_epochs=1, device=torch.device("cpu"), generator=torch.Generator().manual_seed(0),
                       batch_size=16, data=data)
    method.on_fit_start(state)
    return method, state


def lost(batch, original, value):
    """modality -> bool (B,): which inputs of the batch now hold the fill value instead of their own."""
    return {m: (x != original[m]).flatten(1).any(1) & (x == value[m]).flatten(1).all(1)
            for m, x in batch["inputs"].items()}


@pytest.mark.parametrize("fill", ["zero", "mean"])
def test_drops_one_modality_per_sample_at_rate_p_with_the_fill(make_data, fill):
    data = make_data(modalities=("a", "b", "c"), n=3000)
    method, _ = started(data, p=0.3, fill=fill)
    split = data.train
    batch = split.batch(torch.arange(len(split)))
    original = {m: x.clone() for m, x in batch["inputs"].items()}
    value = {m: torch.zeros_like(x[0]) if fill == "zero" else x.double().mean(0).float() for m, x in split.inputs.items()}
    out = method._drop(batch)
    gone = torch.stack(list(lost(out, original, value).values()))
    assert gone.sum(0).max() == 1
    assert float(gone.any(0).double().mean()) == pytest.approx(0.3, abs=0.03)
    for m, x in batch["inputs"].items():
        assert torch.equal(x, original[m])  # the loader's batch is not edited in place


def test_restricted_to_some_modalities(make_data):
    data = make_data(modalities=("a", "b"), n=200)
    method, _ = started(data, p=1.0, modalities=["b"])
    batch = data.train.batch(torch.arange(len(data.train)))
    out = method._drop(batch)
    assert torch.equal(out["inputs"]["a"], batch["inputs"]["a"])
    assert (out["inputs"]["b"] == 0).all()


def test_p_zero_trains_exactly_like_joint_training(make_data):
    data = make_data(modalities=("a", "b"), n=80)
    params = []
    for methods in (None, ModalityDropout(p=0.0)):
        mm.seed_everything(0)
        res = mm.fit(mm.build_model(data), data, methods, num_epochs=2, batch_size=16, lr=1e-2)
        params.append([p.detach().clone() for p in res.model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*params))


def test_training_with_dropout_changes_the_run_and_leaves_the_data_alone(make_data):
    data = make_data(modalities=("a", "b"), n=80)
    before = {m: x.clone() for m, x in data.train.inputs.items()}
    mm.seed_everything(0)
    res = mm.fit(mm.build_model(data), data, ModalityDropout(p=0.5), num_epochs=3, batch_size=16, lr=1e-2)
    for m, x in data.train.inputs.items():
        assert torch.equal(x, before[m])
    dropped = res.log.query("name == 'dropped'")["value"]
    assert len(dropped) == 3 and dropped.between(0.3, 0.7).all()


def test_bad_settings(make_data):
    with pytest.raises(ValueError, match=r"p must be a finite number in \[0, 1\]"):
        ModalityDropout(p=1.2)
    with pytest.raises(ValueError, match=r"unknown fill 'median'"):
        ModalityDropout(fill="median")
    data = make_data(modalities=("a", "b"))
    with pytest.raises(ValueError, match=r"modality-dropout: unknown modality 'z'"):
        mm.fit(mm.build_model(data), data, ModalityDropout(modalities=["z"]), num_epochs=1)
