"""Ensemble with late fusion (mean of the branches' probabilities): each branch learns from its own loss only."""
import torch
import torch.nn.functional as F

import mmlib as mm
from mmlib.methods.base import TrainState
from mmlib.methods.ensemble import Ensemble


def _state(model):
    return TrainState(model=model, optimizer=None, modalities=tuple(model.modalities), num_classes=3, num_epochs=1,
                      device=torch.device("cpu"), generator=torch.Generator().manual_seed(0))


def test_late_loss_is_the_sum_of_the_branch_cross_entropies(make_data):
    data = make_data(modalities=("a", "b", "c"))
    mm.seed_everything(0)
    model = mm.build_model(data, fusion="late")
    batch = data.train.batch(torch.arange(10))
    out = model(batch["inputs"])
    losses = Ensemble().compute_loss(_state(model), out, batch)
    assert set(losses) == {"uni/a", "uni/b", "uni/c"}
    for m in ("a", "b", "c"):
        assert torch.allclose(losses[f"uni/{m}"], F.cross_entropy(model.head.fc[m](out.feats[m]), batch["y"]))


def test_late_each_encoder_gets_the_gradient_of_its_own_loss_only(make_data):
    data = make_data(modalities=("a", "b"))
    mm.seed_everything(0)
    model = mm.build_model(data, fusion="late")
    batch = data.train.batch(torch.arange(16))
    out = model(batch["inputs"])
    total = sum(Ensemble().compute_loss(_state(model), out, batch).values())
    params = list(model.encoders["a"].parameters())
    g_total = torch.autograd.grad(total, params, retain_graph=True)
    g_own = torch.autograd.grad(F.cross_entropy(out.uni_logits["a"], batch["y"]), params)
    for g1, g2 in zip(g_total, g_own):
        assert torch.allclose(g1, g2, atol=1e-7)


def test_late_ensemble_learns(make_data):
    data = make_data(modalities=("a", "b"), n=120)
    mm.seed_everything(0)
    res = mm.fit(mm.build_model(data, fusion="late"), data, "ensemble", num_epochs=10, batch_size=16, lr=1e-2)
    assert res.test["acc"] > 0.8 and res.test["acc/a"] > 0.6 and res.test["acc/b"] > 0.6
