"""The evaluation loop: labelled subsets, selection then training, one row per seed and budget."""
import pytest
import torch

import mmlib as mm
from mmlib.active.evaluate import labelled_subset, make_selector, select_and_train


def embeddings_for(data, seeds):
    g = torch.Generator().manual_seed(0)
    return {s: {m: torch.randn(len(data.train), 4, generator=g) for m in data.modalities} for s in seeds}


def test_labelled_subset_keeps_only_the_selection(make_data):
    data = make_data()
    idx = torch.tensor([5, 0, 11])
    sub = labelled_subset(data, idx)
    assert torch.equal(sub.train.y, data.train.y[idx])
    assert torch.equal(sub.train.inputs["a"], data.train.inputs["a"][idx])
    assert torch.equal(sub.train.index, torch.arange(3))
    assert sub.val is data.val and sub.test is data.test


@pytest.mark.parametrize("idx, match", [([1, 1], "duplicates"), ([0, 36], "0..35"), ([-1], "0..35"),
                                        ([], "non-empty"), ([0.5], "integer")])
def test_labelled_subset_rejects_bad_indices(make_data, idx, match):
    with pytest.raises(ValueError, match=match):
        labelled_subset(make_data(), torch.tensor(idx))


def test_select_and_train_rows(make_data):
    data = make_data()
    emb = embeddings_for(data, [0, 1])
    runs = select_and_train(data, emb, "kcenter", [3, 6], seeds=[0, 1], num_epochs=2, batch_size=8)
    t = runs.table
    assert len(t) == 4 and list(t["budget"]) == [3, 6, 3, 6] and list(t["seed"]) == [0, 0, 1, 1]
    assert (t["label"] == "kcenter").all() and t["classes"].between(1, 3).all()
    assert {"acc", "val/acc", "alignment", "select_seconds"} <= set(t.columns)
    assert t["acc"].between(0, 1).all() and (t["best_epoch"] == 1).all()  # the last epoch is kept
    assert t["val/acc"].between(0, 1).all()


def test_cold_start_task_skips_validation_and_keeps_the_last_epoch(make_data):
    data = make_data()
    task = mm.TASKS.create("cold-start")
    model = mm.build_model(data)
    assert task.select is None
    assert task.evaluate(model, data.val, data, "cpu") == {}
    assert task.evaluate(model, data.test, data, "cpu") == mm.evaluate(model, data.test, data.num_classes)
    res = mm.fit(model, data, num_epochs=3, batch_size=8, task=task)
    assert res.best_epoch == 2 and res.val == {} and "acc" in res.test
    assert all(set(row) == {"epoch", "train_loss"} for row in res.history)


def test_select_and_train_errors_before_training(make_data):
    data = make_data()
    with pytest.raises(KeyError, match="no embeddings for seed"):
        select_and_train(data, embeddings_for(data, [0]), "random", [3], seeds=[0, 1], num_epochs=1)
    with pytest.raises(ValueError, match="exceeds the pool"):
        select_and_train(data, embeddings_for(data, [0]), "random", [3, 1000], seeds=[0], num_epochs=1)
    wrong = {0: {m: torch.randn(5, 4) for m in data.modalities}}
    with pytest.raises(ValueError, match="embed data.train"):
        select_and_train(data, wrong, "random", [3], seeds=[0], num_epochs=1)


def test_make_selector_specs():
    assert make_selector("mmcsal:lam_align=1.0").lam_align == 1.0
    assert make_selector(("single-modality", {"modality": "a"})).view == "a"
    sel = make_selector("random")
    assert make_selector(sel) is sel
    with pytest.raises(TypeError, match="cannot make a selector"):
        make_selector(3)
