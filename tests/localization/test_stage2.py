"""Stage two: L_cat, L_loc2 and q by hand; the frozen teacher; evaluation; label-free determinism."""
import copy
import math

import numpy as np
import pytest
import torch

import mmlib as mm
from mmlib.localization import ClassAwareLocalization
from mmlib.localization.model import SoundingNet
from mmlib.localization.stage2 import category_consistency, multisource_loss, visual_distribution
from tests.localization.helpers import embeddings, relabel, small_net, tiny

SIG5 = 1 / (1 + math.exp(-5))


def test_category_consistency_is_an_element_mean_kl():
    pi = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    q = torch.tensor([[0.25, 0.75], [0.5, 0.5]])
    by_hand = (0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75) + 1.0 * math.log(1.0 / 0.5)) / 4
    assert float(category_consistency(q.log(), pi)) == pytest.approx(by_hand, rel=1e-6)
    assert float(category_consistency(pi.clamp_min(1e-12).log(), pi)) == pytest.approx(0.0, abs=1e-6)


def test_multisource_loss_by_hand():
    model = SoundingNet(129, width=1, embed_dim=2)
    # frame 0: four cells pointing along +x, +y, -x, -y; frame 1: all along +y; audio 0 = +x, audio 1 = +y
    v0 = [[[1.0, 0.0], [-1.0, 0.0]], [[0.0, 1.0], [0.0, -1.0]]]
    v1 = [[[0.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]]
    out = embeddings([v0, v1], [[1.0, 0.0], [0.0, 1.0]])
    pos = -math.log(SIG5)  # both positives peak at cos 1
    # negatives: audio 0 with frame 1 (cos 0 in all four quadrants), audio 1 with frame 0 (cos 0, 1, 0, -1)
    neg = (6 * math.log(2) - math.log(1 - SIG5) - math.log(SIG5)) / 8
    with torch.no_grad():
        assert float(multisource_loss(model, out)) == pytest.approx(0.5 * (pos + neg), rel=1e-5)


def test_visual_distribution_with_and_without_suppression():
    model = SoundingNet(129, num_clusters=2, width=1, embed_dim=2)
    model.dictionary.copy_(torch.eye(2))
    out = embeddings([[[[2.0]], [[1.0]]]], [[1.0, 0.0]])  # v = (2, 1): M = (2, 1); cos(v, a) = 2 / sqrt 5
    l = 1 / (1 + math.exp(-5 * 2 / math.sqrt(5)))
    with torch.no_grad():
        q = visual_distribution(model, out).exp()[0]
        q_plain = visual_distribution(model, out, suppress=False).exp()[0]
    assert q[0].item() == pytest.approx(1 / (1 + math.exp(-l)), rel=1e-5)
    assert q_plain[0].item() == pytest.approx(1 / (1 + math.exp(-1)), rel=1e-5)


def test_the_teacher_is_a_frozen_copy_that_gives_pi():
    data = tiny("cocktail", 40)
    student = small_net(data)
    task = ClassAwareLocalization(student)
    assert task.teacher is not student and not any(p.requires_grad for p in task.teacher.parameters())
    batch = data.train.batch(torch.arange(8))
    state = type("S", (), {"model": student})()
    before = {k: float(v.detach()) for k, v in task.loss(state, student(batch["inputs"]), batch).items()}
    with torch.no_grad():
        student.audio_classifier.weight.add_(1.0)  # the student's audio head takes no part in stage two
    after = {k: float(v.detach()) for k, v in task.loss(state, student(batch["inputs"]), batch).items()}
    assert before == after and set(before) == {"loc", "cat"}
    pi = task.audio_distribution(batch["inputs"]["audio"])
    assert pi.shape == (8, 10) and torch.allclose(pi.sum(1), torch.ones(8))
    only_loc = ClassAwareLocalization(student, use_cat=False, loc_weight=2.0).loss(state, student(batch["inputs"]),
                                                                                    batch)
    assert set(only_loc) == {"loc"} and float(only_loc["loc"].detach()) == pytest.approx(2 * after["loc"] / 0.5, rel=1e-5)


def test_evaluate():
    data = tiny("cocktail", 40)
    model = small_net(data)
    assert ClassAwareLocalization(model).evaluate(model, data.val, data, "cpu") == {}
    scores = ClassAwareLocalization(model, np.arange(10)).evaluate(model, data.val, data, "cpu")
    assert set(scores) == {"ciou@0.3", "ciou@0.5", "auc", "nsa"}


def test_bad_teacher():
    with pytest.raises(TypeError, match="stage-one SoundingNet"):
        ClassAwareLocalization(torch.nn.Linear(2, 2))


def fit_stage_two(data, teacher, seed=0):
    mm.seed_everything(seed)
    return mm.fit(copy.deepcopy(teacher), data, task=ClassAwareLocalization(teacher, np.arange(10)), num_epochs=1,
                  batch_size=8, lr=1e-3, optimizer="adam", seed=seed)


def test_training_leaves_the_teacher_alone_and_reads_no_label():
    data = tiny("cocktail", 40)
    mm.seed_everything(0)
    teacher = small_net(data)
    frozen = copy.deepcopy(teacher.state_dict())
    a = fit_stage_two(data, teacher)
    b = fit_stage_two(relabel(data, lambda y: y.flip(0)), teacher)
    assert all(torch.equal(frozen[k], v) for k, v in teacher.state_dict().items())
    for (name, p), q in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(p, q), name
    assert not torch.equal(a.model.visual[0].weight, teacher.visual[0].weight)  # the student did train
    assert set(a.history[0]) >= {"val/ciou@0.3", "val/nsa"}
