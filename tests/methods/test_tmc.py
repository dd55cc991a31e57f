"""TMC: the Dirichlet KL and evidential loss against hand-computed values, annealing, the loss terms, learning."""
import math

import pytest
import torch

import mmlib as mm
from mmlib.methods.tmc import TMC, evidential_loss, kl_to_uniform
from mmlib.models.evidence import combine


def test_kl_to_the_uniform_dirichlet_by_hand():
    assert torch.allclose(kl_to_uniform(torch.ones(2, 5)), torch.zeros(2), atol=1e-6)
    # Dir(2, 1) is Beta(2, 1) with density 2x: KL to the uniform = int 2x log(2x) dx = log 2 - 1/2
    assert kl_to_uniform(torch.tensor([[2.0, 1.0]])).item() == pytest.approx(math.log(2) - 0.5, abs=1e-6)


@pytest.mark.parametrize("y, lam, expected", [
    (0, 0.0, 0.5),                                  # psi(3) - psi(2) = 1/2; alpha~ = (1, 1): no KL
    (0, 1.0, 0.5),
    (1, 0.0, 1.5),                                  # psi(3) - psi(1) = 1 + 1/2
    (1, 0.4, 1.5 + 0.4 * (math.log(2) - 0.5)),      # alpha~ = (2, 1)
])
def test_evidential_loss_by_hand(y, lam, expected):
    loss = evidential_loss(torch.tensor([[2.0, 1.0]]), torch.tensor([y]), lam)
    assert loss.item() == pytest.approx(expected, abs=1e-5)


def test_more_evidence_for_the_true_class_lowers_the_loss():
    y = torch.tensor([0])
    losses = [evidential_loss(torch.tensor([[a, 1.0, 1.0]]), y, 1.0).item() for a in (1.0, 2.0, 5.0, 20.0)]
    assert losses == sorted(losses, reverse=True)
    wrong = [evidential_loss(torch.tensor([[1.0, a, 1.0]]), y, 1.0).item() for a in (1.0, 2.0, 5.0)]
    assert wrong == sorted(wrong)  # evidence for a wrong class costs


def test_kl_weight_is_annealed_over_epochs():
    tmc = TMC(anneal_epochs=10)
    assert [tmc.kl_weight(e) for e in (0, 5, 10, 25)] == [0.0, 0.5, 1.0, 1.0]
    with pytest.raises(ValueError, match="anneal_epochs must be >= 1"):
        TMC(anneal_epochs=0)


def test_loss_covers_every_opinion_and_their_combination(make_data):
    data = make_data(modalities=("a", "b"))
    mm.seed_everything(0)
    model = mm.build_model(data, fusion="evidential")
    batch = data.train.batch(torch.arange(12))
    out = model(batch["inputs"])
    state = type("S", (), {"epoch": 3})()
    losses = TMC(anneal_epochs=6).compute_loss(state, out, batch)
    assert set(losses) == {"fused", "uni/a", "uni/b"}
    alphas = model.head.alphas(out.feats)
    for m in ("a", "b"):
        assert torch.allclose(losses[f"uni/{m}"], evidential_loss(alphas[m], batch["y"], 0.5), atol=1e-5)
    fused = combine(alphas["a"], alphas["b"])
    assert torch.allclose(losses["fused"], evidential_loss(fused, batch["y"], 0.5), atol=1e-5)


def test_tmc_learns_and_its_uncertainty_rises_on_a_blanked_modality(make_data):
    data = make_data(modalities=("a", "b"), n=150)
    mm.seed_everything(0)
    res = mm.fit(mm.build_model(data, fusion="evidential"), data, "tmc", num_epochs=15, batch_size=16, lr=1e-2)
    assert res.test["acc"] > 0.8
    clean = mm.robustness.head_diagnostics(res.model, data.test)
    blank = mm.corrupt.incomplete(data, 1.0, modalities=["b"], fill="zero", splits=["test"])
    after = mm.robustness.head_diagnostics(res.model, blank.test)
    assert after["u/b"].mean() > clean["u/b"].mean()
    assert (after["u/a"] == clean["u/a"]).all()
