"""Stage one: L_loc1 by hand (one and all negatives), the task's metrics, label-free determinism."""
import math

import pytest
import torch

import mmlib as mm
from mmlib.localization import Correspondence, ObjectDictionary
from mmlib.localization.model import SoundingNet
from mmlib.localization.stage1 import correspondence_loss, pair_peaks
from tests.localization.helpers import embeddings, relabel, small_net, tiny

S = 1 / (1 + math.exp(-5))  # sigmoid(5 * cos) at cos = 1; at cos = 0 it is 0.5


def loss(*args):
    with torch.no_grad():
        return float(correspondence_loss(*args))


def bce(p, y):
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def two_scenes():
    # frames: v0 = (1, 0), v1 = (0, 1), one cell each; both audios point along (1, 0)
    return embeddings([[[[1.0]], [[0.0]]], [[[0.0]], [[1.0]]]], [[1.0, 0.0], [1.0, 0.0]])


def test_one_negative_by_hand():
    model = SoundingNet(129, width=1, embed_dim=2)
    # positives: a0 with v0 (cos 1), a1 with v1 (cos 0); negatives: a0 with v1 (cos 0), a1 with v0 (cos 1)
    expected = (bce(S, 1) + bce(0.5, 1) + bce(0.5, 0) + bce(S, 0)) / 4
    assert loss(model, two_scenes(), "one") == pytest.approx(expected, rel=1e-5)


def test_all_negatives_by_hand():
    model = SoundingNet(129, width=1, embed_dim=2)
    out = embeddings([[[[1.0]], [[0.0]]], [[[0.0]], [[1.0]]], [[[-1.0]], [[0.0]]]],
                     [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    # cos[audio j, frame i]: a0 = (1, 0), a1 = a2 = (0, 1); v0 = (1, 0), v1 = (0, 1), v2 = (-1, 0)
    cos = [[1, 0, -1], [0, 1, 0], [0, 1, 0]]
    p = [[1 / (1 + math.exp(-5 * c)) for c in row] for row in cos]
    assert torch.allclose(pair_peaks(model, out).detach(), torch.tensor(p))
    pos = (bce(p[0][0], 1) + bce(p[1][1], 1) + bce(p[2][2], 1)) / 3
    neg = sum(bce(p[j][i], 0) for j in range(3) for i in range(3) if i != j) / 6
    assert loss(model, out, "all") == pytest.approx(0.5 * (pos + neg), rel=1e-5)


def test_the_peak_cell_decides():
    model = SoundingNet(129, width=1, embed_dim=2)
    # one frame of two cells, one aligned with the audio: p is the aligned cell's value
    out = embeddings([[[[1.0, 0.0]], [[0.0, 1.0]]]], [[1.0, 0.0]])
    assert loss(model, out) == pytest.approx(bce(S, 1), rel=1e-5)  # one scene: positive only


def test_bad_negatives():
    with pytest.raises(ValueError, match="negatives must be one of"):
        Correspondence(negatives="some")


def test_evaluate_gives_the_solo_metrics():
    data = tiny("solo")
    scores = Correspondence().evaluate(small_net(data).eval(), data.val, data, "cpu")
    assert set(scores) == {"iou@0.5", "auc", "miou", "pair_acc"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())


def fit_stage_one(data, seed=0):
    mm.seed_everything(seed)
    return mm.fit(small_net(data), data, [ObjectDictionary(warmup_epochs=0, n_init=1)], task=Correspondence(),
                  num_epochs=2, batch_size=16, lr=1e-3, optimizer="adam", seed=seed)


def test_training_is_deterministic_and_reads_no_label():
    data = tiny("solo")
    a, b = fit_stage_one(data), fit_stage_one(data)
    shuffled = fit_stage_one(relabel(data, lambda y: y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))]))
    for ref in (b, shuffled):
        for (name, p), q in zip(a.model.state_dict().items(), ref.model.state_dict().values()):
            assert torch.equal(p, q), name
    # only the logged diagnostic (purity against the labels) sees the change
    purity = lambda r: r.log.query("name == 'dictionary/purity'")["value"].tolist()  # noqa: E731
    assert purity(a) == purity(b) and purity(a) != purity(shuffled)
    assert set(a.history[-1]) >= {"val/iou@0.5", "val/auc", "val/pair_acc"}
