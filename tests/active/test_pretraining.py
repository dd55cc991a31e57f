"""Stage 1 through fit: the task's losses, label-free training and validation, the gap diagnostics."""
import pytest
import torch

import mmlib as mm
from mmlib.active.contrastive import cross_modal_loss
from mmlib.active.pretraining import CrossModalPretraining, embed
from mmlib.data.base import MultimodalDataset, Split
from mmlib.methods.base import TrainState


def state_for(net, data):
    return TrainState(model=net, optimizer=torch.optim.SGD(net.parameters(), lr=0.1), modalities=net.modalities,
                      num_classes=data.num_classes, num_epochs=1, device=torch.device("cpu"),
                      generator=torch.Generator().manual_seed(0))


def test_losses_with_and_without_prototypes(make_data):
    data = make_data()
    torch.manual_seed(0)
    net = mm.build_model(data, model="two-stream")
    batch = data.train.batch(torch.arange(16))
    out = net(batch["inputs"])
    alone = CrossModalPretraining(prototype_weight=0.0).loss(state_for(net, data), out, batch)
    assert list(alone) == ["cross"]
    assert alone["cross"].item() == pytest.approx(cross_modal_loss(out.feats, 0.1).item())
    both = CrossModalPretraining(prototype_weight=0.5).loss(state_for(net, data), out, batch)
    assert set(both) == {"cross", "proto/a", "proto/b"}
    sum(both.values()).backward()
    assert net.prototypes["a"].grad.abs().sum() > 0


def test_pretraining_reads_no_label(make_data):
    """Permuted labels give bit-identical Stage-1 embeddings: the task never reads y."""
    data = make_data(n=80)
    perm = torch.randperm(len(data.train.y), generator=torch.Generator().manual_seed(1))
    shuffled = MultimodalDataset(data.name, data.modalities, data.num_classes,
                                 Split(data.train.inputs, data.train.y[perm]), data.val, data.test, data.encoders)
    runs = [mm.active.pretrain(d, seeds=[0], num_epochs=2, batch_size=16) for d in (data, shuffled)]
    e1, e2 = (embed(r.results[0].model, data.train) for r in runs)
    assert all(torch.equal(e1[m], e2[m]) for m in e1)


def test_pretrain_keeps_the_last_epoch_and_logs_diagnostics(make_data):
    data = make_data(n=80)
    runs = mm.active.pretrain(data, CrossModalPretraining(prototype_weight=1.0), seeds=[0, 1], num_epochs=3,
                              batch_size=16)
    assert list(runs.table["label"].unique()) == ["cross-modal + prototypes"]
    assert {"gap", "r1"} <= set(runs.table.columns)
    assert (runs.table["best_epoch"] == 2).all()
    curves = runs.curves
    assert {"val/gap", "val/r1"} <= set(curves.columns) and len(curves) == 6
    assert curves["train_loss"].notna().all()
    assert runs.table.loc[runs.table.seed == 0, "gap"].item() != runs.table.loc[runs.table.seed == 1, "gap"].item()


def test_evaluate_reports_the_gap_of_the_split(make_data):
    data = make_data()
    net = mm.build_model(data, model="two-stream")
    emb = embed(net, data.val)
    metrics = CrossModalPretraining().evaluate(net, data.val, data, "cpu")
    assert metrics["gap"] == pytest.approx(mm.active.gap.modality_gap(emb["a"], emb["b"]))
    assert 0.0 <= metrics["r1"] <= 1.0
    assert mm.TASKS.create("cross-modal", tau=0.2).tau == 0.2


def test_bad_task_arguments():
    with pytest.raises(ValueError, match="tau"):
        CrossModalPretraining(tau=0)
    with pytest.raises(ValueError, match="mask"):
        CrossModalPretraining(mask=1.0)
    with pytest.raises(TypeError, match="prototype_weight"):
        CrossModalPretraining(prototype_weight="1")


def test_embeddings_and_diagnostics_by_seed(make_data):
    data = make_data(n=80)
    runs = mm.active.pretrain(data, seeds=[0, 3], num_epochs=1, batch_size=16)
    emb = mm.active.embeddings_by_seed(runs, data.train)
    assert sorted(emb) == [0, 3] and emb[3]["a"].shape[0] == len(data.train)
    assert torch.equal(emb[3]["b"], embed(runs.results[1].model, data.train)["b"])
    table = mm.active.diagnostics(runs, data.val)
    assert list(table["seed"]) == [0, 3] and {"gap", "separability", "agree/cross"} <= set(table.columns)
    assert "agree/cross" not in mm.active.diagnostics(runs, data.val, labels=False)
    with pytest.raises(ValueError, match="one configuration"):
        mm.active.embeddings_by_seed(runs + mm.active.pretrain(data, CrossModalPretraining(prototype_weight=0),
                                                              seeds=[0], num_epochs=1), data.train)
