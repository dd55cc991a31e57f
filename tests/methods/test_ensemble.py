"""Ensemble: the loss is the sum of the unimodal cross-entropies; the fused prediction is their average."""
import pytest
import torch
import torch.nn.functional as F

import mmlib as mm
from mmlib.methods.base import TrainState
from mmlib.methods.ensemble import Ensemble
from tests.helpers import make_tiny_data


def _state(model):
    return TrainState(model=model, optimizer=None, modalities=tuple(model.modalities), num_classes=3, num_epochs=1,
                      device=torch.device("cpu"), generator=torch.Generator().manual_seed(0))


def _forward(fusion, modalities=("a", "b", "c"), **kwargs):
    data = make_tiny_data(modalities)
    mm.seed_everything(0)
    model = mm.build_model(data, fusion=fusion, **kwargs)
    batch = data.train.batch(torch.arange(16))
    return model, batch, model(batch["inputs"])


@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_loss_is_the_sum_of_unimodal_cross_entropies_and_nothing_else(fusion):
    model, batch, out = _forward(fusion)
    losses = Ensemble().compute_loss(_state(model), out, batch)
    assert set(losses) == {"uni/a", "uni/b", "uni/c"}
    for m in ("a", "b", "c"):
        assert torch.allclose(losses[f"uni/{m}"], F.cross_entropy(out.uni_logits[m], batch["y"]))


@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_fused_logits_are_m_times_the_mean_of_the_unimodal_logits(fusion):
    model, batch, out = _forward(fusion)
    mean = torch.stack(list(out.uni_logits.values())).mean(0)
    assert torch.allclose(out.logits, 3 * mean, atol=1e-6)
    assert torch.equal(out.logits.argmax(1), mean.argmax(1))


def test_each_encoder_gets_the_gradient_of_its_own_loss_only():
    model, batch, out = _forward("sum", ("a", "b"))
    total = sum(Ensemble().compute_loss(_state(model), out, batch).values())
    params = list(model.encoders["a"].parameters()) + list(model.head.fc["a"].parameters())
    g_total = torch.autograd.grad(total, params, retain_graph=True)
    g_own = torch.autograd.grad(F.cross_entropy(out.uni_logits["a"], batch["y"]), params)
    for g1, g2 in zip(g_total, g_own):
        assert torch.allclose(g1, g2, atol=1e-7)


@pytest.mark.parametrize("fusion", ["film", "gated"])
def test_a_head_that_does_not_decompose_is_stacked_on_detached_features(fusion):
    model, batch, out = _forward(fusion, ("a", "b"))
    losses = Ensemble().compute_loss(_state(model), out, batch)
    assert set(losses) == {"uni/a", "uni/b", "stack"}
    enc = list(model.encoders["a"].parameters())
    grads = torch.autograd.grad(losses["stack"], enc, allow_unused=True)
    assert all(g is None or torch.count_nonzero(g) == 0 for g in grads)


def test_ensemble_learns_both_modalities():
    data = make_tiny_data(("a", "b"), n=120)
    mm.seed_everything(0)
    res = mm.fit(mm.build_model(data, fusion="sum"), data, "ensemble", num_epochs=10, batch_size=16, lr=1e-2)
    assert res.test["acc"] > 0.8 and res.test["acc/a"] > 0.6 and res.test["acc/b"] > 0.6
