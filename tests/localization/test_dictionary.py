"""The object dictionary: masks, object features and k-means by hand, the epoch hook, pseudo-label losses."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmlib.localization import Correspondence, ObjectDictionary
from mmlib.localization.dictionary import (cluster, dictionary_quality, dilate4, object_feature, object_features,
                                           predicted_clusters, sounding_mask)
from mmlib.localization.model import LocOutput, SoundingNet
from mmlib.methods.base import TrainState
from tests.localization.helpers import small_net, tiny


def test_dilate4_by_hand():
    m = torch.zeros(1, 3, 4, dtype=torch.bool)
    m[0, 1, 1] = True
    expected = torch.tensor([[0, 1, 0, 0], [1, 1, 1, 0], [0, 1, 0, 0]], dtype=torch.bool)
    assert torch.equal(dilate4(m)[0], expected)


def test_sounding_mask_is_strict_and_keeps_the_peak():
    l = torch.tensor([[[0.2, 0.5], [0.6, 0.1]]])
    assert sounding_mask(l, 0.5, False)[0].tolist() == [[False, False], [True, False]]
    assert sounding_mask(l, 0.9, False)[0].tolist() == [[False, False], [True, False]]  # the peak stays
    assert sounding_mask(l, 0.15, True)[0].all()


def test_object_feature_is_a_mean_over_all_cells():
    model = SoundingNet(129, width=1, embed_dim=2)
    # 2 x 2 cells; only the top-left embedding points along the audio, so the mask is that cell
    v = torch.tensor([[[[1.0, -1.0], [-1.0, -1.0]], [[2.0, 0.0], [0.0, 0.0]]]])  # (1, 2, 2, 2)
    out = LocOutput(v * 10, None, v, torch.tensor([[1.0, 2.0]]), None, None)
    # l at the top-left is sigmoid(5) > 0.5; elsewhere cos(v, a) < 0
    assert torch.allclose(object_feature(model, out, 0.5, False), torch.tensor([[1.0, 2.0]]) / 4)
    assert torch.allclose(object_feature(model, out, 0.5, False, space="backbone"), torch.tensor([[10.0, 20.0]]) / 4)


def test_cluster_groups_by_direction_and_keeps_relative_norms():
    g = torch.Generator().manual_seed(0)
    a = torch.tensor([1.0, 0.0, 0.0]) * (1 + torch.rand(20, 1, generator=g))  # along x, norms in [1, 2]
    b = torch.tensor([0.0, 3.0, 3.0]) * (1 + torch.rand(20, 1, generator=g))
    feats = torch.cat([a, b]) + 0.01 * torch.randn(40, 3, generator=g)
    labels, d = cluster(feats, 2, seed=0, n_init=2, norm=10.0)
    assert len(set(labels[:20])) == 1 and len(set(labels[20:])) == 1 and labels[0] != labels[20]
    means = torch.stack([feats[torch.from_numpy(labels == k)].mean(0) for k in range(2)])
    scale = 10.0 / means.norm(dim=1).pow(2).mean().sqrt()
    assert torch.allclose(d, means * scale, atol=1e-5)
    assert float(d.norm(dim=1).pow(2).mean().sqrt()) == pytest.approx(10.0)


def make_state(model, data, epoch):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    state = TrainState(model=model, optimizer=opt, modalities=model.modalities, num_classes=10, num_epochs=3,
                       device=torch.device("cpu"), generator=torch.Generator().manual_seed(5), epoch=epoch,
                       data=data, task=Correspondence())
    return state


def one_step(model, state, method, batch):
    out = model(batch["inputs"])
    losses = method.compute_loss(state, out, batch)
    sum(losses.values()).backward()
    state.optimizer.step()
    state.optimizer.zero_grad()
    return losses


def test_the_epoch_hook_writes_the_dictionary_and_resets_the_heads():
    data = tiny("solo")
    model = small_net(data)
    method = ObjectDictionary(warmup_epochs=1, n_init=1)
    state = make_state(model, data, epoch=0)
    method.on_fit_start(state)
    batch = data.train.batch(torch.arange(16))
    method.on_train_epoch_start(state)  # warm-up: nothing happens
    assert model.dictionary.abs().sum() == 0 and method._pseudo is None and not state.records
    assert set(one_step(model, state, method, batch)) == {"loc"}

    state.epoch = 1
    trunk = model.visual[0].weight
    method.on_train_epoch_start(state)
    assert float(model.dictionary.norm(dim=1).pow(2).mean().sqrt()) == pytest.approx(10.0, rel=1e-5)
    assert len(method._pseudo) == len(data.train) and float(model.audio_classifier.bias.detach().abs().sum()) == 0.0
    heads = [p for h in (model.visual_classifier, model.audio_classifier) for p in h.parameters()]
    assert all(p not in state.optimizer.state for p in heads) and trunk in state.optimizer.state
    assert [r["name"] for r in state.records] == ["dictionary/purity", "dictionary/nmi"]

    out = model(batch["inputs"])
    losses = method.compute_loss(state, out, batch)
    target = method._pseudo[batch["index"]]
    assert set(losses) == {"loc", "cls/audio", "cls/visual"}
    assert torch.allclose(losses["cls/audio"], F.cross_entropy(out.audio_logits, target))
    assert torch.allclose(losses["cls/visual"], F.cross_entropy(out.visual_logits, target))

    saved = method.state_dict()
    clone = ObjectDictionary()
    clone.load_state_dict(saved)
    assert torch.equal(clone._pseudo, method._pseudo) and clone._seed == method._seed == 5


def test_features_and_predictions_cover_the_split():
    data = tiny("solo")
    model = small_net(data).train()
    assert object_features(model, data.val).shape == (len(data.val), 6)
    assert object_features(model, data.val, space="backbone").shape == (len(data.val), 8)
    pred = predicted_clusters(model, data.val)
    assert pred["audio"].shape == pred["visual"].shape == (len(data.val),)
    assert model.training  # the mode is restored
    q = dictionary_quality(model, data.val, data.val.y.numpy(), "backbone", 0.05, True)
    assert 0.0 < q["purity"] <= 1.0 and 0.0 <= q["nmi"] <= 1.0


@pytest.mark.parametrize("kwargs, error", [({"threshold": 1.0}, ValueError), ({"dilate": 1}, TypeError),
                                           ({"warmup_epochs": -1}, ValueError), ({"norm": 0.0}, ValueError)])
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        ObjectDictionary(**kwargs)


def test_cluster_is_seeded():
    feats = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    a, da = cluster(feats, 3, seed=1, n_init=1)
    b, db = cluster(feats, 3, seed=1, n_init=1)
    assert np.array_equal(a, b) and torch.equal(da, db)
