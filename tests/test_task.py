"""Tasks: the classification task's loss, evaluation and selection, and a task with no selection."""
import pytest
import torch
import torch.nn.functional as F

import mmlib as mm
from mmlib.task import Classification, Task, classification_loss


def _out(model, data):
    batch = data.train.batch(torch.arange(8))
    return model(batch["inputs"]), batch


def test_joint_loss_is_fused_cross_entropy_for_decomposing_heads(make_data):
    data = make_data()
    model = mm.build_model(data, fusion="concat")
    out, batch = _out(model, data)
    losses = classification_loss(model, out, batch["y"])
    assert list(losses) == ["fused"]
    assert torch.allclose(losses["fused"], F.cross_entropy(out.logits, batch["y"]))


@pytest.mark.parametrize("fusion", ["film", "gated"])
def test_probe_heads_learn_on_detached_features(make_data, fusion):
    data = make_data()
    model = mm.build_model(data, fusion=fusion)
    out, batch = _out(model, data)
    losses = classification_loss(model, out, batch["y"])
    assert set(losses) == {"fused", "probe/a", "probe/b"}
    grads_all = torch.autograd.grad(sum(losses.values()), list(model.encoders.parameters()), retain_graph=True)
    grads_fused = torch.autograd.grad(losses["fused"], list(model.encoders.parameters()), retain_graph=True)
    for g1, g2 in zip(grads_all, grads_fused):
        assert torch.allclose(g1, g2)  # probe terms do not reach the encoders
    probe_grad = torch.autograd.grad(losses["probe/a"], model.head.uni["a"].weight)[0]
    assert probe_grad.abs().sum() > 0


def test_classification_evaluates_like_evaluate_and_selects_accuracy(make_data):
    data = make_data()
    model = mm.build_model(data)
    task = Classification()
    assert task.select == "acc"
    assert task.evaluate(model, data.val, data, "cpu") == mm.evaluate(model, data.val, data.num_classes)
    assert mm.TASKS.create("classification", select="f1").select == "f1"


def test_fit_uses_the_task_loss_and_keeps_the_last_epoch_without_selection(make_data):
    """A task without labels-based selection: its own loss, nothing to select, the last epoch kept."""
    calls = []

    class Reconstruct(Task):
        select = None

        def loss(self, state, out, batch):
            calls.append(state.epoch)
            return {"feat": sum(z.pow(2).mean() for z in out.feats.values())}

        def evaluate(self, model, split, data, device):
            return {}

    data = make_data()
    mm.seed_everything(0)
    res = mm.fit(mm.build_model(data), data, task=Reconstruct(), num_epochs=3, batch_size=16)
    assert res.best_epoch == 2 and res.test == {} and res.val == {}
    assert sorted(set(calls)) == [0, 1, 2]
    assert [set(h) for h in res.history] == [{"epoch", "train_loss"}] * 3


def test_unknown_select_metric_is_an_error(make_data):
    data = make_data()
    with pytest.raises(ValueError, match="select='nope' is not a validation metric"):
        mm.fit(mm.build_model(data), data, task=Classification(select="nope"), num_epochs=1)
