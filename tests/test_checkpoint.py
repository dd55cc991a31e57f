"""Checkpoints: a file resumes only its own run; fewer epochs continue, more are refused; bad files are named."""
import pytest
import torch

import mmlib as mm
from mmlib.checkpoint import CheckpointError, data_fingerprint, method_config
from mmlib.methods.base import Method


def _fit(data, methods=("joint-uni",), **kw):
    mm.seed_everything(kw.get("seed", 0))
    return mm.fit(mm.build_model(data), data, list(methods),
                  **{"num_epochs": 2, "batch_size": 16, "lr": 1e-2, "optimizer": "sgd", **kw})


def test_finished_checkpoint_with_fewer_epochs_continues_like_an_uninterrupted_run(make_data, tmp_path):
    data, ckpt = make_data(), tmp_path / "run.pt"
    full = _fit(data, num_epochs=4)
    _fit(data, num_epochs=2, checkpoint=ckpt)
    resumed = _fit(data, num_epochs=4, checkpoint=ckpt)
    assert len(resumed.history) == 4
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    same = _fit(data, num_epochs=4, checkpoint=ckpt)  # finished with exactly the epochs asked
    assert same.history == resumed.history


def test_more_epochs_done_than_asked_is_an_error(make_data, tmp_path):
    data, ckpt = make_data(), tmp_path / "run.pt"
    _fit(data, num_epochs=3, checkpoint=ckpt)
    with pytest.raises(CheckpointError, match=r"has 3 epochs done, more than num_epochs=2"):
        _fit(data, num_epochs=2, checkpoint=ckpt)


@pytest.mark.parametrize("change, field", [({"seed": 1}, "seed"), ({"lr": 0.02}, "optimizer"),
                                            ({"optimizer": "adamw"}, "optimizer"),
                                            ({"methods": ("ogm-ge",)}, "methods"),
                                            ({"methods": ("joint-uni:weight=0.5",)}, "methods")])
def test_another_run_is_refused_naming_the_first_field_that_differs(make_data, tmp_path, change, field):
    data, ckpt = make_data(), tmp_path / "run.pt"
    _fit(data, checkpoint=ckpt)
    before = ckpt.read_bytes()
    with pytest.raises(CheckpointError, match=rf"run.pt' belongs to another run: its {field} is"):
        _fit(data, checkpoint=ckpt, **change)
    assert ckpt.read_bytes() == before  # nothing written


def test_other_data_or_model_is_refused(make_data, tmp_path):
    ckpt = tmp_path / "run.pt"
    _fit(make_data(seed=0), checkpoint=ckpt)
    with pytest.raises(CheckpointError, match="its data is"):
        _fit(make_data(seed=1), checkpoint=ckpt)
    data = make_data()
    with pytest.raises(CheckpointError, match="its model is"):
        mm.seed_everything(0)
        mm.fit(mm.build_model(data, fusion="sum"), data, ["joint-uni"], num_epochs=2, batch_size=16, lr=1e-2,
               optimizer="sgd", checkpoint=ckpt)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_unreadable_files_are_named(make_data, tmp_path, content):
    ckpt = tmp_path / "broken.pt"
    if content is None:  # a truncated real checkpoint
        _fit(make_data(), checkpoint=ckpt)
        ckpt.write_bytes(ckpt.read_bytes()[:200])
    else:
        ckpt.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint '.*broken.pt'.*delete it"):
        _fit(make_data(), checkpoint=ckpt)


def test_a_torch_file_that_is_not_a_checkpoint_is_named(make_data, tmp_path):
    ckpt = tmp_path / "weights.pt"
    torch.save({"model": {}}, ckpt)
    with pytest.raises(CheckpointError, match="weights.pt' is not an mmlib checkpoint"):
        _fit(make_data(), checkpoint=ckpt)


def test_method_config_is_the_constructor_arguments_not_the_state():
    m = mm.METHODS.create("mmpareto", gamma=2.0)
    before = method_config(m)
    m.c = {"a": 0.3}  # state changes during training
    assert method_config(m) == before and "gamma=2.0" in before and before.startswith("mmpareto(")


def test_data_fingerprint_sees_any_value(make_data):
    a, b = make_data(), make_data()
    assert data_fingerprint(a) == data_fingerprint(b)
    b.val.inputs["a"][3, 1] += 1e-6
    assert data_fingerprint(a) != data_fingerprint(b)


def test_on_fit_start_runs_on_resume_before_load_state_dict(make_data, tmp_path):
    calls = []

    class Recorder(Method):
        def on_fit_start(self, state):
            calls.append(("start", state.resumed))

        def load_state_dict(self, saved):
            calls.append(("load", saved))

        def state_dict(self):
            return {"n": 1}

    data, ckpt = make_data(), tmp_path / "run.pt"
    _fit(data, [Recorder()], num_epochs=1, checkpoint=ckpt)
    _fit(data, [Recorder()], num_epochs=2, checkpoint=ckpt)
    assert calls == [("start", False), ("start", False), ("load", {"n": 1})]


def test_train_state_carries_data_task_rank_and_resume_flag(make_data, tmp_path):
    seen = {}

    class Peek(Method):
        def on_train_epoch_start(self, state):
            seen.update(data=state.data, task=state.task, rank=state.rank, world=state.world_size,
                        resumed=state.resumed)

    data = make_data()
    _fit(data, [Peek()], num_epochs=1)
    assert seen["data"] is data and isinstance(seen["task"], mm.task.Classification)
    assert (seen["rank"], seen["world"], seen["resumed"]) == (0, 1, False)
