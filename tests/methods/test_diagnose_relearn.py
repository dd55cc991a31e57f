"""Diagnosing & Re-learning: schedule, alpha, the exact interpolation, what is and is not reset, resume, errors."""
import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import mmlib as mm
from mmlib.methods import diagnose_relearn
from mmlib.methods.base import Method
from mmlib.methods.diagnose_relearn import (PurityMonitor, ReLearning, scale_momentum, scaled_schedule, schedule,
                                           snapshot, soft_reset)
from tests.helpers import make_tiny_data

TRAIN = {"batch_size": 16, "lr": 0.05, "optimizer": "sgd", "momentum": 0.9}


def tiny(modalities=("a", "b"), kind="cnn"):
    return make_tiny_data(modalities, n=90, kind=kind)


class Spy(Method):
    """Copies the model (and optimizer momentum) at the start and end of every epoch."""

    def __init__(self):
        self.start, self.end, self.momentum = {}, {}, {}

    def on_fit_start(self, state):
        self.init = {k: v.clone() for k, v in state.model.state_dict().items()}

    def on_train_epoch_start(self, state):
        self.start[state.epoch] = {k: v.clone() for k, v in state.model.state_dict().items()}
        self.momentum[state.epoch] = {n: state.optimizer.state[p]["momentum_buffer"].clone()
                                      for n, p in state.model.named_parameters() if p in state.optimizer.state}

    def on_train_epoch_end(self, state):
        self.end[state.epoch] = {k: v.clone() for k, v in state.model.state_dict().items()}


def fit(data, methods, num_epochs=4, seed=0, **kw):
    mm.seed_everything(seed)
    return mm.fit(mm.build_model(data), data, methods, num_epochs=num_epochs, seed=seed, **{**TRAIN, **kw})


def fake_diagnosis(monkeypatch, values):
    """Make the diagnosis return fixed purities: modality -> (P_D, P_V)."""
    def learning_state(model, data, n_init, seed, device, train_samples):
        return {m: {"purity_train": t, "purity_val": v, "gap": abs(t - v)} for m, (t, v) in values.items()}
    monkeypatch.setattr(diagnose_relearn, "learning_state", learning_state)


# --- schedule ------------------------------------------------------------------------------

@pytest.mark.parametrize("num_epochs, period, reinits, epochs", [
    (90, 20, 3, [20, 40, 60]),      # the official CREMA-D script: after epochs 20, 40, 60, never 80
    (90, 20, None, [20, 40, 60, 80]),
    (20, 4, 3, [4, 8, 12]),
    (20, 5, None, [5, 10, 15]),     # epoch 19 is the last: nothing after it
    (21, 5, None, [5, 10, 15]),     # epoch 20 is the last
    (22, 5, None, [5, 10, 15, 20]),
    (3, 1, None, [1]),
    (2, 1, None, []),
])
def test_schedule(num_epochs, period, reinits, epochs):
    assert schedule(num_epochs, period, reinits) == epochs


def test_scaled_schedule_keeps_the_official_proportions_and_caps_reinits():
    assert scaled_schedule(90) == {"period": 20, "reinits": 3}
    assert scaled_schedule(20) == {"period": 4, "reinits": 3}
    assert scaled_schedule(30) == {"period": 7, "reinits": 3}
    assert scaled_schedule(30, period=10) == {"period": 10, "reinits": 2}  # epochs 10 and 20; 30 is past the end
    assert scaled_schedule(2) == {"period": 1, "reinits": None}  # nothing fits: no re-initialisation at all
    ReLearning(**scaled_schedule(2))  # valid arguments even then


# --- the reset itself ----------------------------------------------------------------------

def test_soft_reset_interpolates_exactly_and_leaves_buffers_by_default():
    torch.manual_seed(0)
    enc = mm.models.ConvEncoder(in_channels=1, width=4, out_dim=4)
    init = snapshot(enc)
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(torch.randn_like(p))
        for m in enc.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.add_(1.0)
                m.num_batches_tracked += 7
    current = snapshot(enc)
    buffers = {k: v.clone() for k, v in enc.named_buffers()}
    soft_reset(enc, init, 0.3)
    for name, p in enc.named_parameters():
        expected = 0.3 * init[name].double() + 0.7 * current[name].double()
        torch.testing.assert_close(p.double(), expected, rtol=0, atol=4 * torch.finfo(torch.float32).eps)
    for name, b in enc.named_buffers():
        assert torch.equal(b, buffers[name])


@pytest.mark.parametrize("buffers", [False, True])
def test_alpha_zero_and_one_are_bit_exact(buffers):
    torch.manual_seed(0)
    enc = mm.models.ConvEncoder(in_channels=1, width=4, out_dim=4)
    init = snapshot(enc)
    with torch.no_grad():
        for t in [*enc.parameters(), *(b for b in enc.buffers() if b.is_floating_point())]:
            t.add_(torch.rand_like(t) + 0.5)
    current = {k: v.clone() for k, v in enc.state_dict().items()}
    soft_reset(enc, init, 0.0, buffers)
    assert all(torch.equal(v, current[k]) for k, v in enc.state_dict().items())
    soft_reset(enc, init, 1.0, buffers)
    for k, v in enc.state_dict().items():
        if k.endswith("num_batches_tracked"):
            assert torch.equal(v, current[k])
        elif k in dict(enc.named_parameters()) or buffers:
            assert torch.equal(v, init[k]), k
        else:
            assert torch.equal(v, current[k]), k


def test_scale_momentum_scales_first_moments_only():
    p = torch.nn.Parameter(torch.ones(3))
    sgd = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    adam = torch.optim.Adam([p], lr=0.1)
    for opt in (sgd, adam):
        p.grad = torch.tensor([1.0, -2.0, 4.0])
        opt.step()
    m, ea, eas = (sgd.state[p]["momentum_buffer"].clone(), adam.state[p]["exp_avg"].clone(),
                  adam.state[p]["exp_avg_sq"].clone())
    scale_momentum(sgd, [p], 0.25)
    scale_momentum(adam, [p], 0.25)
    assert torch.equal(sgd.state[p]["momentum_buffer"], m * 0.75)
    assert torch.equal(adam.state[p]["exp_avg"], ea * 0.75)
    assert torch.equal(adam.state[p]["exp_avg_sq"], eas)


# --- alpha from the diagnosis ----------------------------------------------------------------

def test_alpha_is_tanh_lambda_gap_per_modality_and_logged(monkeypatch):
    fake_diagnosis(monkeypatch, {"a": (0.9, 0.6), "b": (0.5, 0.45)})
    method = ReLearning(lam=2.0, period=1, reinits=2)
    res = fit(tiny(), [method])
    log = res.log.set_index(["epoch", "name"])["value"]
    for epoch in (1, 2):
        assert log[(epoch, "alpha/a")] == pytest.approx(math.tanh(2.0 * 0.3), abs=1e-12)
        assert log[(epoch, "alpha/b")] == pytest.approx(math.tanh(2.0 * 0.05), abs=1e-12)
        assert log[(epoch, "gap/a")] == pytest.approx(0.3)
        assert log[(epoch, "purity_val/b")] == 0.45
    assert sorted(set(res.log["epoch"])) == [1, 2]  # reinits=2 of the three allowed
    assert [(h["epoch"], h["modality"]) for h in method.history] == [(1, "a"), (1, "b"), (2, "a"), (2, "b")]


# --- what fit does with it -----------------------------------------------------------------

def test_hard_reset_restores_the_encoders_init_after_validation_and_keeps_the_rest(monkeypatch):
    fake_diagnosis(monkeypatch, {"a": (0.9, 0.5), "b": (0.9, 0.5)})
    spy = Spy()
    res = fit(tiny(), [ReLearning(period=2, reinits=1, alpha=1.0), spy], num_epochs=4)
    after, before = spy.start[3], spy.end[2]  # diagnosed after epoch 2, reset at the start of epoch 3
    encoder_params = {n for n, _ in res.model.named_parameters() if n.startswith("encoders.")}
    for k, v in after.items():
        assert not torch.equal(before[k], spy.init[k]), k  # training moved everything, so the checks can fail
        if k in encoder_params:
            assert torch.equal(v, spy.init[k]), k
        else:  # head, BatchNorm running statistics and counters: as training left them
            assert torch.equal(v, before[k]), k
    for epoch in (1, 2):  # no reset before the scheduled one
        assert all(torch.equal(spy.start[epoch][k], spy.end[epoch - 1][k]) for k in before)
    momentum = spy.momentum[3]
    assert momentum and all(m.abs().sum() > 0 for m in momentum.values())  # optimizer state untouched


def test_validation_of_the_diagnosed_epoch_sees_the_model_before_the_reset(monkeypatch):
    fake_diagnosis(monkeypatch, {"a": (0.9, 0.5), "b": (0.9, 0.5)})
    res = fit(tiny(), [ReLearning(period=2, reinits=1, alpha=1.0)], num_epochs=4)
    ref = fit(tiny(), [], num_epochs=3)
    assert [h["val/acc"] for h in res.history[:3]] == [h["val/acc"] for h in ref.history]


@pytest.mark.parametrize("option", ["blend_buffers", "blend_head", "blend_momentum"])
def test_options_reset_what_they_name(monkeypatch, option):
    fake_diagnosis(monkeypatch, {"a": (0.9, 0.5), "b": (0.9, 0.5)})
    spy = Spy()
    fit(tiny(), [ReLearning(period=2, reinits=1, alpha=1.0, **{option: True}), spy], num_epochs=4)
    after = spy.start[3]
    running = [k for k in after if k.startswith("encoders.") and ("running_" in k)]
    head = [k for k in after if k.startswith("head.")]
    if option == "blend_buffers":
        assert running and all(torch.equal(after[k], spy.init[k]) for k in running)
        assert all(torch.equal(after[k], spy.end[2][k]) for k in head)
    elif option == "blend_head":
        assert head and all(torch.equal(after[k], spy.init[k]) for k in head)
        assert all(torch.equal(after[k], spy.end[2][k]) for k in running)
    else:
        moment = spy.momentum[3]
        assert all(moment[k].abs().sum() == 0 for k in moment if k.startswith("encoders."))
        assert all(moment[k].abs().sum() > 0 for k in moment if k.startswith("head."))


def test_a_soft_reset_moves_every_encoder_by_its_own_alpha(monkeypatch):
    fake_diagnosis(monkeypatch, {"a": (0.9, 0.5), "b": (0.6, 0.6)})  # b: gap 0, alpha 0
    spy = Spy()
    fit(tiny(), [ReLearning(lam=3.0, period=2, reinits=1), spy], num_epochs=4)
    alpha_a = math.tanh(3.0 * 0.4)
    for k, v in spy.start[3].items():
        if k.startswith("encoders.b."):
            assert torch.equal(v, spy.end[2][k]), k
        elif k.startswith("encoders.a.") and "running" not in k and "num_batches" not in k:
            expected = alpha_a * spy.init[k].double() + (1 - alpha_a) * spy.end[2][k].double()
            torch.testing.assert_close(v.double(), expected, rtol=0, atol=1e-6)


def test_worse_targets_reset_only_the_modality_with_the_lowest_validation_purity(monkeypatch):
    fake_diagnosis(monkeypatch, {"a": (0.9, 0.7), "b": (0.8, 0.5)})  # a has the larger gap, b is worse
    spy = Spy()
    res = fit(tiny(), [ReLearning(lam=3.0, period=2, reinits=1, targets="worse"), spy], num_epochs=4)
    log = res.log.set_index(["epoch", "name"])["value"]
    assert log[(2, "alpha/a")] == 0.0
    assert log[(2, "alpha/b")] == pytest.approx(math.tanh(3.0 * 0.3), abs=1e-12)
    moved = [k for k in spy.start[3] if k.startswith("encoders.b.") and k.endswith("weight")]
    assert moved and all(not torch.equal(spy.start[3][k], spy.end[2][k]) for k in moved)
    assert all(torch.equal(v, spy.end[2][k]) for k, v in spy.start[3].items() if k.startswith("encoders.a."))


def test_real_diagnosis_in_fit_is_reproducible_and_composes_with_ogm_ge():
    data = tiny(("a", "b", "c"), kind="mlp")
    runs = [fit(data, [ReLearning(period=1, reinits=2), "ogm-ge"]) for _ in range(2)]
    assert runs[0].records == runs[1].records
    names = {r["name"].split("/")[0] for r in runs[0].records}
    assert {"purity_train", "purity_val", "gap", "alpha", "rho", "k"} <= names
    alphas = [r["value"] for r in runs[0].records if r["name"].startswith("alpha/")]
    assert len(alphas) == 6 and all(0 <= a < 1 for a in alphas)


def test_resume_restores_the_initial_weights_and_a_pending_reset(monkeypatch, tmp_path):
    fake_diagnosis(monkeypatch, {"a": (0.9, 0.5), "b": (0.8, 0.7)})

    class Crash(Method):
        armed = False

        def on_train_epoch_start(self, state):
            if Crash.armed and state.epoch == 3:
                raise KeyboardInterrupt

    data, ckpt = tiny(), tmp_path / "run.pt"
    full = fit(data, [Crash(), ReLearning(period=2, reinits=None)], num_epochs=5)
    Crash.armed = True
    with pytest.raises(KeyboardInterrupt):  # stops after epoch 2's diagnosis, before its reset
        fit(data, [Crash(), ReLearning(period=2, reinits=None)], num_epochs=5, checkpoint=ckpt)
    Crash.armed = False
    # another seed builds other initial weights: only the checkpoint can give back theta_init
    mm.seed_everything(123)
    resumed = mm.fit(mm.build_model(data), data, [Crash(), ReLearning(period=2, reinits=None)], num_epochs=5,
                     seed=0, checkpoint=ckpt, **TRAIN)
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed.records == full.records


def test_purity_monitor_records_without_changing_training():
    data = tiny(kind="mlp")
    res, ref = fit(data, [PurityMonitor(every=2)]), fit(data, [])
    assert res.history == ref.history
    assert sorted(set(res.log["epoch"])) == [1, 3]
    assert set(res.log["name"]) == {f"{k}/{m}" for k in ("purity_train", "purity_val", "gap") for m in "ab"}


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    ({"lam": 0}, ValueError, "lam"), ({"lam": -1.0}, ValueError, "lam"), ({"lam": "3"}, TypeError, "lam"),
    ({"period": 0}, ValueError, "period"), ({"period": 2.5}, TypeError, "period"),
    ({"reinits": 0}, ValueError, "reinits"), ({"alpha": 1.5}, ValueError, "alpha"),
    ({"n_init": 0}, ValueError, "n_init"), ({"blend_head": "yes"}, TypeError, "blend_head"),
    ({"targets": "best"}, ValueError, "targets"), ({"train_samples": "all"}, ValueError, "train_samples"),
    ({"train_samples": 0}, ValueError, "train_samples"),
])
def test_bad_hyper_parameters_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        mm.METHODS.create("relearning", **kwargs)


def test_more_reinits_than_the_schedule_allows_fails_before_training():
    with pytest.raises(ValueError, match=r"reinits=3 with period=5, but num_epochs=12 allows 2 .*\[5, 10\]"):
        fit(tiny(kind="mlp"), ["relearning:period=5,reinits=3"], num_epochs=12)
    with pytest.raises(ValueError, match="allows 0"):
        fit(tiny(kind="mlp"), ["relearning"], num_epochs=20)  # the paper's period 20 needs longer runs


@pytest.mark.parametrize("method", [ReLearning(period=1, reinits=None), PurityMonitor()])
def test_a_dataset_without_validation_split_is_refused(method):
    data = tiny(kind="mlp")
    data.val = data.val.subset(torch.arange(2))  # fewer samples than classes: nothing to cluster
    with pytest.raises(ValueError, match="validation split"):
        fit(data, [method])
    data.val = None
    with pytest.raises(ValueError, match="'val' split has none"):
        ReLearning(period=1, reinits=None).on_fit_start(mm.methods.TrainState(
            model=mm.build_model(tiny(kind="mlp")), optimizer=None, modalities=("a", "b"), num_classes=3,
            num_epochs=3, device=torch.device("cpu"), generator=torch.Generator(), data=data))


# --- data parallel ---------------------------------------------------------------------------

def _worker(rank, world, port, outdir):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        data = tiny()
        torch.manual_seed(rank)  # different initial weights: DDP must broadcast rank 0's
        res = mm.fit(mm.build_model(data), data, ReLearning(lam=10.0, period=1, reinits=None), num_epochs=3,
                     seed=0, **TRAIN)
        torch.save({"params": [p.detach().clone() for p in res.model.parameters()], "records": res.records},
                   os.path.join(outdir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_ranks_agree_on_alpha_and_keep_identical_parameters(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    assert all(torch.equal(a, b) for a, b in zip(r0["params"], r1["params"]))
    assert r0["records"] == r1["records"]
    assert any(r["name"].startswith("alpha/") and r["value"] > 0 for r in r0["records"])
