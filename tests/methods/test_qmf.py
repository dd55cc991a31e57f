"""QMF: the ranking regulariser by hand, the history of correct predictions, the loss terms, state."""
import pytest
import torch
import torch.nn.functional as F

import mmlib as mm
from mmlib.methods.base import TrainState
from mmlib.methods.qmf import QMF, rank_loss


def test_rank_loss_by_hand():
    # h_0 > h_1 by 1: the pair costs max(0, 1 - (c_0 - c_1))
    assert rank_loss(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 0.0])).item() == pytest.approx(2.0)
    assert rank_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.0])).item() == 0.0
    assert rank_loss(torch.tensor([0.5, 0.0]), torch.tensor([1.0, 0.0])).item() == pytest.approx(0.5)
    # three samples: pairs (0, 1) dh 0.5, (0, 2) dh 1, (1, 2) dh 0.5; c all 0 -> mean of (0.5, 1, 0.5)
    assert rank_loss(torch.zeros(3), torch.tensor([1.0, 0.5, 0.0])).item() == pytest.approx(2 / 3)


def test_rank_loss_ignores_ties_and_pushes_confidence_the_right_way():
    c = torch.zeros(2, requires_grad=True)
    loss = rank_loss(c, torch.tensor([0.3, 0.3]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(c.grad, torch.zeros(2))
    c = torch.zeros(2, requires_grad=True)
    rank_loss(c, torch.tensor([1.0, 0.0])).backward()
    assert c.grad[0] < 0 < c.grad[1]  # descent raises the confidence of the sample with the better history


def started(data, lam=0.1):
    method = QMF(lam=lam)
    state = TrainState(model=None, optimizer=None, modalities=data.modalities, num_classes=data.num_classes,
                       num_epochs=2, device=torch.device("cpu"), generator=torch.Generator().manual_seed(0),
                       data=data)
    method.on_fit_start(state)
    return method, state


def test_loss_terms_and_history(make_data):
    data = make_data(modalities=("a", "b"), n=60)
    mm.seed_everything(0)
    model = mm.build_model(data, fusion="qmf")
    method, state = started(data)
    batch = data.train.batch(torch.arange(8))
    out = model(batch["inputs"])
    losses = method.compute_loss(state, out, batch)
    assert set(losses) == {"fused", "uni/a", "uni/b", "rank/a", "rank/b"}
    assert torch.allclose(losses["fused"], F.cross_entropy(out.logits, batch["y"]))
    assert losses["rank/a"].item() == 0.0  # no history in the first epoch
    assert torch.equal(method.history(torch.arange(8)), torch.zeros(8, 2))  # folded in at epoch end only
    method.on_train_epoch_end(state)
    right = {m: (out.uni_logits[m].argmax(1) == batch["y"]).double() for m in ("a", "b")}
    assert torch.equal(method.history(torch.arange(8)), torch.stack([right["a"], right["b"]], 1))
    assert torch.equal(method.history(torch.arange(8, 12)), torch.zeros(4, 2))  # never seen
    out = model(batch["inputs"])
    losses = method.compute_loss(state, out, batch)
    hist = torch.stack([right["a"], right["b"]], 1).float()
    expected = 0.1 * rank_loss(torch.logsumexp(out.uni_logits["a"], 1), hist[:, 0])
    assert torch.allclose(losses["rank/a"], expected)
    method.on_train_epoch_end(state)
    assert torch.equal(method._seen[:8], torch.full((8,), 2.0, dtype=torch.float64))


def test_no_ranking_term_without_lam_and_bad_lam(make_data):
    data = make_data(modalities=("a", "b"))
    model = mm.build_model(data, fusion="qmf")
    method, state = started(data, lam=0.0)
    batch = data.train.batch(torch.arange(8))
    assert set(method.compute_loss(state, model(batch["inputs"]), batch)) == {"fused", "uni/a", "uni/b"}
    with pytest.raises(ValueError, match="lam must be a finite number >= 0"):
        QMF(lam=-1.0)


def test_state_round_trip_and_learning(make_data):
    data = make_data(modalities=("a", "b"), n=120)
    mm.seed_everything(0)
    method = QMF()
    res = mm.fit(mm.build_model(data, fusion="qmf"), data, method, num_epochs=8, batch_size=16, lr=1e-2)
    assert res.test["acc"] > 0.8
    state = method.state_dict()
    assert torch.equal(state["seen"], torch.full((len(data.train),), 8.0, dtype=torch.float64))
    clone, _ = started(data)
    clone.load_state_dict(state)
    assert torch.equal(clone.history(torch.arange(5)), method.history(torch.arange(5)))
