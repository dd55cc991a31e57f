"""fit(): hook order, validation-based selection, checkpoint/resume, argument errors."""
import pytest
import torch

import mmlib as mm
from mmlib.methods.base import Method
from mmlib.train import resolve_methods


def _fit(data, methods=None, **kw):
    mm.seed_everything(0)
    model = mm.build_model(data)
    return mm.fit(model, data, methods, **{"num_epochs": 3, "batch_size": 16, "lr": 1e-2, **kw})


def test_selects_best_validation_epoch_and_reports_test_for_it(make_data):
    data = make_data()
    res = _fit(data, num_epochs=5)
    val_acc = [h["val/acc"] for h in res.history]
    assert res.best_epoch == max(range(5), key=lambda e: (val_acc[e], -e))
    assert res.val["acc"] == val_acc[res.best_epoch]
    assert res.test == mm.evaluate(res.model, data.test, data.num_classes)
    assert len(res.history) == 5 and res.seconds > 0


def test_select_metric_of_a_method_is_used(make_data):
    res = _fit(make_data(), [mm.methods.Unimodal("b")], num_epochs=4)
    scores = [h["val/acc/b"] for h in res.history]
    assert scores[res.best_epoch] == max(scores)


def test_joint_training_learns(make_data):
    res = _fit(make_data(n=90), num_epochs=8)
    assert res.test["acc"] > 0.6  # three classes: chance is 1/3


def test_lr_step_schedule(make_data):
    res = _fit(make_data(), num_epochs=3, lr_step=1, lr_gamma=0.5, optimizer="sgd")
    assert res.best_epoch in range(3)


class Spy(Method):
    def __init__(self, calls):
        self.calls = calls

    def on_fit_start(self, state):
        self.calls.append("fit_start")

    def on_train_epoch_start(self, state):
        self.calls.append("epoch_start")

    def on_train_batch_start(self, state, batch):
        self.calls.append("batch_start")

    def on_features(self, state, feats):
        self.calls.append("features")
        return feats

    def on_after_forward(self, state, out, batch):
        self.calls.append("after_forward")

    def on_after_backward(self, state):
        assert any(p.grad is not None for p in state.model.parameters())
        self.calls.append("after_backward")

    def on_before_optimizer_step(self, state, optimizer):
        self.calls.append("before_step")

    def on_train_epoch_end(self, state):
        self.calls.append("epoch_end")

    def on_fit_end(self, state):
        self.calls.append("fit_end")


def test_hook_order_and_no_hooks_at_evaluation(make_data):
    calls = []
    data = make_data(n=30)
    _fit(data, [Spy(calls)], num_epochs=1, batch_size=100)
    assert calls == ["fit_start", "epoch_start", "batch_start", "features", "after_forward", "after_backward",
                     "before_step", "epoch_end", "fit_end"]


def test_two_owners_of_an_exclusive_hook_are_an_error():
    with pytest.raises(ValueError, match="JointUnimodal and Joint both define compute_loss"):
        resolve_methods(["joint-uni", "joint"])


def test_methods_by_name_and_bad_method_errors():
    assert [m.registry_name for m in resolve_methods("joint")] == ["joint"]
    with pytest.raises(mm.UnknownNameError, match="Did you mean 'joint'"):
        resolve_methods(["jiont"])
    with pytest.raises(TypeError, match="cannot make a method from 42"):
        resolve_methods([42])


@pytest.mark.parametrize("kw,msg", [({"num_epochs": 0}, "num_epochs must be >= 1"),
                                    ({"optimizer": "lbfgs"}, "unknown optimizer 'lbfgs'"),
                                    ({"select": "accuracy"}, "select='accuracy' is not a validation metric")])
def test_bad_arguments(make_data, kw, msg):
    with pytest.raises(ValueError, match=msg):
        _fit(make_data(), **kw)


def test_log_records_are_kept(make_data):
    class Logger(Method):
        def on_after_forward(self, state, out, batch):
            state.log("batch", len(batch["y"]))

    res = _fit(make_data(n=30), [Logger()], num_epochs=2, batch_size=100)
    assert list(res.log["name"]) == ["batch", "batch"]
    assert list(res.log["epoch"]) == [0, 1]


# --- data parallelism: two gloo processes on CPU -------------------------------------------------

def _ddp_worker(rank, world, port, outdir):
    import os
    import warnings

    import torch.distributed as dist

    from tests.helpers import make_tiny_data

    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        data = make_tiny_data(n=80, kind="cnn")  # conv encoders with BatchNorm
        torch.manual_seed(rank)  # different initial weights: DDP must broadcast rank 0's
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = mm.fit(mm.build_model(data), data, "joint-uni", num_epochs=3, batch_size=8, lr=0.05,
                         optimizer="sgd", seed=0)
        out = {"history": res.history, "best": res.best_epoch, "test": res.test,
               "buffers": [b.clone() for b in res.model.buffers()],
               "warnings": [str(w.message) for w in caught]}
        torch.save(out, os.path.join(outdir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_ranks(tmp_path_factory):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outdir = tmp_path_factory.mktemp("ddp")
    mp.spawn(_ddp_worker, args=(2, port, str(outdir)), nprocs=2, join=True)
    return [torch.load(outdir / f"rank{r}.pt", weights_only=False) for r in range(2)]


def test_ddp_ranks_with_batchnorm_evaluate_select_and_report_alike(ddp_ranks):
    r0, r1 = ddp_ranks
    for b0, b1 in zip(r0["buffers"], r1["buffers"]):
        assert torch.equal(b0, b1)  # running statistics synchronised before evaluation
    assert r0["history"] == r1["history"]
    assert r0["best"] == r1["best"] and r0["test"] == r1["test"]


def test_ddp_without_unused_parameters_does_not_warn(ddp_ranks):
    for rank in ddp_ranks:
        assert not [w for w in rank["warnings"] if "find_unused_parameters" in w], rank["warnings"]


def test_torchrun_recipe_in_the_readme_runs(tmp_path):
    """The README's torchrun recipe, as written: two processes, one line of metrics from rank 0."""
    import re
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    script = next(b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "init_process_group" in b)
    command = re.search(r"^torchrun (.*)$", readme, flags=re.M).group(1).split()
    (tmp_path / "train_ddp.py").write_text(script)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    proc = subprocess.run([torchrun, *command], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("rank 0")]
    assert len(lines) == 1 and "acc" in lines[0]
