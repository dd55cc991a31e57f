"""InfoReg: Fisher-trace proxy by hand, window tests, Delta and alpha, the proximal gradient, schedules, guards."""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mmlib as mm
from mmlib.methods.base import TrainState
from mmlib.methods.inforeg import (FisherTrace, InfoReg, InfoRegStar, NoRegulationWarning, code_coefficients,
                                   information_gaps, moving_average_change, paper_coefficients, relative_change)
from mmlib.models.fusion import ConcatFusion
from mmlib.models.net import MultimodalNet, Output
from mmlib.task import classification_loss
from tests.helpers import make_tiny_data


def linear_model(seed=0):
    """Two linear encoders (6 -> 4) and a concat head: gradients small enough to write out by hand."""
    torch.manual_seed(seed)
    encoders = nn.ModuleDict({"a": nn.Linear(6, 4), "b": nn.Linear(6, 4)})
    head = ConcatFusion({"a": 4, "b": 4}, num_classes=3)
    return MultimodalNet(encoders, head)


def make_state(model, epoch=0, data=None):
    return TrainState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                      modalities=tuple(model.modalities), num_classes=3, num_epochs=5, device=torch.device("cpu"),
                      generator=torch.Generator().manual_seed(0), epoch=epoch, data=data)


def batches(n=10, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = {m: torch.randn(n, 6, generator=g) for m in ("a", "b")}
    y = torch.randint(0, 3, (n,), generator=g)
    return [{"inputs": {m: v[:n // 2] for m, v in x.items()}, "y": y[:n // 2]},
            {"inputs": {m: v[n // 2:] for m, v in x.items()}, "y": y[n // 2:]}]


def hand_squared_norms(model, batch):
    """||dL/dW_m||^2 + ||dL/db_m||^2 of the fused cross-entropy, written out (no autograd)."""
    with torch.no_grad():
        x, y = batch["inputs"], batch["y"]
        z = {m: x[m] @ model.encoders[m].weight.T + model.encoders[m].bias for m in ("a", "b")}
        w = model.head.fc.weight
        logits = torch.cat([z["a"], z["b"]], 1) @ w.T + model.head.fc.bias
        dlogits = (torch.softmax(logits, 1) - F.one_hot(y, 3).float()) / len(y)  # (B, C)
        out = {}
        for m, cols in (("a", slice(0, 4)), ("b", slice(4, 8))):
            dz = dlogits @ w[:, cols]  # (B, 4)
            out[m] = float((dz.T @ x[m]).double().square().sum() + dz.sum(0).double().square().sum())
        return out


def one_step(method, model, state, batch, monitor=None):
    """The loop's hook sequence for one batch, without the optimizer step."""
    out = model(batch["inputs"])
    if monitor is not None:
        out = Output(out.logits, monitor, out.feats)
    method.on_after_forward(state, out, batch)
    losses = method.compute_loss(state, out, batch) or classification_loss(model, out, batch["y"])
    sum(losses.values()).backward()
    method.on_after_backward(state)
    method.on_before_optimizer_step(state, state.optimizer)


# --- formulas against hand-computed values --------------------------------------------------

@pytest.mark.parametrize("method", [FisherTrace(), InfoReg(), InfoRegStar()])
def test_fisher_trace_is_the_mean_squared_gradient_norm_over_the_epochs_batches(method):
    model, data = linear_model(), batches()
    state = make_state(model)
    method.on_fit_start(state)
    method.on_train_epoch_start(state)
    for batch in data:
        model.zero_grad(set_to_none=True)
        out = model(batch["inputs"])
        method.on_after_forward(state, out, batch)
        F.cross_entropy(out.logits, batch["y"]).backward()  # the fused loss only, for every method here
        method.on_after_backward(state)
    method.on_train_epoch_end(state)
    hand = [hand_squared_norms(model, b) for b in data]
    for m in ("a", "b"):
        assert method.traces[m] == [pytest.approx((hand[0][m] + hand[1][m]) / 2, rel=1e-5)]
    logged = {r["name"]: r["value"] for r in state.records if r["name"].startswith("trace/")}
    assert logged == {"trace/a": method.traces["a"][0], "trace/b": method.traces["b"][0]}


def test_relative_change_is_eq_11():
    assert relative_change([1.0, 2.0], 2) == pytest.approx(0.5)
    assert relative_change([2.0, 1.0], 2) == pytest.approx(-1.0)
    assert relative_change([1.0, 2.0, 3.0, 2.0], 3) == pytest.approx(1 / 3)  # epochs t-2 and t-1 only
    with pytest.raises(ValueError, match="starts at epoch 2"):
        relative_change([1.0, 2.0], 1)
    with pytest.raises(ValueError, match="needs the traces"):
        relative_change([1.0], 2)


def test_moving_average_change_is_the_released_codes_statistic():
    t = [1.0, 2.0, 3.0]
    assert moving_average_change(t, 0) == 1.0
    assert moving_average_change(t, 1) == pytest.approx(1.0)  # (1 - 0) / 1 through the zero padding
    assert moving_average_change(t, 2) == pytest.approx(2 / 3)  # (2 - 0) / (1 + 2)
    assert moving_average_change(t, 3) == pytest.approx(3 / 6)
    assert moving_average_change(t, 3, span=2) == pytest.approx((3 - 1) / (2 + 3))


def test_zero_traces_close_the_window_instead_of_dividing_by_zero():
    assert relative_change([0.0, 0.0], 2) == 0.0
    assert relative_change([1.0, 0.0], 2) == 0.0
    assert moving_average_change([0.0, 0.0, 0.0], 3) == 0.0


def test_information_gaps_are_the_mean_lead_over_the_modalities_beaten():
    gaps = information_gaps(torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(gaps, torch.tensor([((1.0 - 0.5) + (2.0 - 0.5)) / 2, 1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(information_gaps(torch.tensor([1.0, 0.2])), torch.tensor([0.0, 0.8]))
    torch.testing.assert_close(information_gaps(torch.tensor([0.7, 0.7])), torch.tensor([0.0, 0.0]))


def test_paper_coefficient_is_exp_beta_tanh_delta_and_zero_without_a_lead():
    alpha = paper_coefficients(torch.tensor([1.0, 0.0, 0.25], dtype=torch.float64), beta=0.9)
    expected = [math.exp(0.9 * math.tanh(1.0)), 0.0, math.exp(0.9 * math.tanh(0.25))]
    assert alpha.tolist() == pytest.approx(expected)
    assert alpha[0].item() == pytest.approx(1.984634, abs=1e-6)  # exp(0.9 * 0.761594)
    assert paper_coefficients(torch.tensor([3.0]), beta=0.0).tolist() == [1.0]


def test_code_coefficient_regulates_only_the_top_score_with_its_constant():
    c = torch.tensor([0.95, 0.10], dtype=torch.float64)
    assert code_coefficients(torch.tensor([40.0, 30.0], dtype=torch.float64), c).tolist() == \
        pytest.approx([0.95 * math.exp(math.tanh(10.0)), 0.0])
    assert code_coefficients(torch.tensor([30.0, 30.5], dtype=torch.float64), c).tolist() == \
        pytest.approx([0.0, 0.10 * math.exp(math.tanh(0.5))])
    assert code_coefficients(torch.tensor([30.0, 30.0], dtype=torch.float64), c).tolist() == [0.0, 0.0]


# --- the window and the schedules -----------------------------------------------------------

@pytest.mark.parametrize("schedule, reopen, expected", [
    ("window", False, [False, False, True, True, False, False, False]),
    ("window", True, [False, False, True, True, False, False, True]),
    ("outside", False, [False, False, False, False, True, True, True]),
    ("outside", True, [False, False, False, False, True, True, False]),
    ("always", False, [True] * 7)])
def test_schedules_on_a_synthetic_trace_sequence(schedule, reopen, expected):
    method = InfoReg(schedule=schedule, reopen=reopen)  # K = 0.04
    model = linear_model()
    state = make_state(model)
    method.on_fit_start(state)
    method.traces = {"a": [1.0, 2.0, 3.0, 3.05, 2.0, 4.0, 1.0], "b": [1.0] * 7}
    # changes at epochs 2..6: 0.5, 1/3, 0.016 (below K), -0.525, then 0.5 again (a late reopening)
    active = []
    for epoch in range(7):
        state.epoch = epoch
        method.on_train_epoch_start(state)
        active.append(method.active["a"])
    assert active == expected
    windows = [r["value"] for r in state.records if r["name"] == "window/a"]
    assert all(math.isnan(v) for v in windows[:2]) and windows[2:] == [1.0, 1.0, 0.0, 0.0, float(reopen)]
    assert method.state_dict()["closed"] == {"a": True, "b": True}


def test_reopen_defaults_follow_the_rule():
    assert not InfoReg().reopen and InfoReg(rule="code").reopen and not InfoReg(rule="code", reopen=False).reopen


def test_code_rule_opens_at_epoch_zero_from_the_reference_trace_for_every_encoder():
    data = make_tiny_data(strengths={"a": 3.0, "b": 0.3})
    data.weak = "b"
    method = InfoRegStar(rule="code")
    model = mm.build_model(data)
    state = make_state(model, data=data)
    method.on_fit_start(state)
    assert method._reference == "a" and method.threshold == 0.05
    assert method._const.tolist() == [0.95, 0.10]
    method.on_train_epoch_start(state)
    assert method.active == {"a": True, "b": True}
    # only the reference's trace counts: b's keeps doubling, a's fell after epoch 0
    method.traces = {"a": [10.0] + [1.0] * 10, "b": [2.0 ** i for i in range(11)]}
    state.epoch = 2
    method.on_train_epoch_start(state)
    assert method.active == {"a": True, "b": True}  # (1 - 0) / 11 through the zero padding
    state.epoch = 11
    method.on_train_epoch_start(state)
    assert method.active == {"a": False, "b": False}  # (1 - 10) / 10


# --- the regulation itself ------------------------------------------------------------------

def regulated_step(method, epoch=0, confident="a"):
    """One step with encoder 'a' moved away from its anchor and a monitor that puts ``confident`` ahead."""
    model, batch = linear_model(), batches()[0]
    state = make_state(model, epoch)
    method.on_fit_start(state)
    method.on_train_epoch_start(state)
    shift = {}
    with torch.no_grad():
        for m, enc in model.encoders.items():
            shift[m] = [torch.full_like(p, 0.1 * (i + 1)) for i, p in enumerate(enc.parameters())]
            for p, s in zip(enc.parameters(), shift[m]):
                p.add_(s)
    y = batch["y"]
    monitor = {m: (5.0 if m == confident else 0.0) * F.one_hot(y, 3).float() for m in ("a", "b")}
    out = model(batch["inputs"])
    method.on_after_forward(state, Output(out.logits, monitor, out.feats), batch)
    F.cross_entropy(out.logits, y).backward()
    method.on_after_backward(state)
    before = {n: p.grad.clone() for n, p in model.named_parameters()}
    method.on_before_optimizer_step(state, state.optimizer)
    after = {n: p.grad.clone() for n, p in model.named_parameters()}
    return model, method, before, after, shift, monitor, y


def test_the_proximal_gradient_is_alpha_times_the_drift_on_the_leading_encoder_only():
    model, method, before, after, shift, monitor, y = regulated_step(InfoReg(beta=0.9, schedule="always"))
    nll = {m: F.cross_entropy(monitor[m].double(), y).item() for m in ("a", "b")}
    alpha = math.exp(0.9 * math.tanh(nll["b"] - nll["a"]))
    assert method._alpha.tolist() == pytest.approx([alpha, 0.0])
    for i, (name, _) in enumerate(model.encoders["a"].named_parameters()):
        torch.testing.assert_close(after[f"encoders.a.{name}"], before[f"encoders.a.{name}"] + alpha * shift["a"][i])
    for n in before:
        if not n.startswith("encoders.a."):
            assert torch.equal(after[n], before[n]), n  # the weak encoder and the head are never regulated


def test_the_weak_modality_is_not_regulated_when_the_other_leads():
    _, method, before, after, *_ = regulated_step(InfoReg(schedule="always"), confident="b")
    assert method._alpha.tolist()[0] == 0.0 and method._alpha.tolist()[1] > 1.0
    assert all(torch.equal(after[n], before[n]) for n in before if n.startswith("encoders.a."))
    assert any(not torch.equal(after[n], before[n]) for n in before if n.startswith("encoders.b."))


def test_the_trace_is_read_before_the_proximal_term():
    model, method, before, after, *_ = regulated_step(InfoReg(schedule="always"))
    method.on_train_epoch_end(make_state(model))
    sq = sum(before[n].double().square().sum() for n in before if n.startswith("encoders.a."))
    assert method.traces["a"] == [pytest.approx(float(sq))]
    assert sum(after[n].double().square().sum() for n in after if n.startswith("encoders.a.")) > sq * 1.01


def test_nothing_is_regulated_before_epoch_two_under_the_paper_window():
    for epoch in (0, 1):
        _, method, before, after, *_ = regulated_step(InfoReg(), epoch=epoch)
        assert method._alpha.tolist() == [0.0, 0.0]
        assert all(torch.equal(after[n], before[n]) for n in before)


def test_a_missing_gradient_gets_the_proximal_term_alone():
    model, batch = linear_model(), batches()[0]
    method = InfoReg(schedule="always")
    state = make_state(model)
    method.on_fit_start(state)
    method.on_train_epoch_start(state)
    with torch.no_grad():
        model.encoders["a"].bias.add_(1.0)
    y = batch["y"]
    monitor = {"a": 5.0 * F.one_hot(y, 3).float(), "b": torch.zeros(len(y), 3)}
    out = model(batch["inputs"])
    method.on_after_forward(state, Output(out.logits, monitor, out.feats), batch)
    method.on_before_optimizer_step(state, state.optimizer)  # no backward: every .grad is None
    torch.testing.assert_close(model.encoders["a"].bias.grad, torch.full((4,), method._alpha[0].item()))
    assert model.encoders["b"].bias.grad is None


# --- losses, fit, guards --------------------------------------------------------------------

def test_inforeg_keeps_the_tasks_loss_and_inforeg_star_adds_unimodal_losses():
    assert InfoReg.compute_loss is mm.methods.Method.compute_loss
    model, batch = linear_model(), batches()[0]
    out = model(batch["inputs"])
    losses = InfoRegStar().compute_loss(make_state(model), out, batch)
    assert set(losses) == {"fused", "uni/a", "uni/b"}
    torch.testing.assert_close(losses["uni/b"], F.cross_entropy(out.uni_logits["b"], batch["y"]))


def test_a_window_that_never_opens_warns_and_the_run_is_joint_training_exactly():
    data = make_tiny_data(strengths={"a": 3.0, "b": 0.3})

    def weights(method):
        mm.seed_everything(0)
        res = mm.fit(mm.build_model(data), data, method, num_epochs=4, batch_size=12, lr=0.05, optimizer="sgd")
        return torch.cat([p.detach().flatten() for p in res.model.parameters()]), res

    with pytest.warns(NoRegulationWarning, match="never opened"):
        closed, res = weights(InfoReg(threshold=0.999))
    baseline, _ = weights(FisherTrace())
    assert torch.equal(closed, baseline)
    alphas = res.log[res.log["name"].str.startswith("alpha/")]
    assert len(alphas) > 0 and (alphas["value"] == 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoRegulationWarning)
        regulated, res = weights(InfoReg(schedule="always"))
    assert not torch.equal(regulated, baseline)
    assert res.methods[0].regulated_steps > 0


def test_runs_repeat_and_resume_exactly(tmp_path):
    data = make_tiny_data(strengths={"a": 3.0, "b": 0.3})

    def run(num_epochs, checkpoint=None):
        mm.seed_everything(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoRegulationWarning)
            return mm.fit(mm.build_model(data), data, "inforeg:threshold=0.01", num_epochs=num_epochs,
                          batch_size=12, lr=0.05, optimizer="sgd", checkpoint=checkpoint)

    full = run(5)
    run(3, tmp_path / "c.pt")
    resumed = run(5, tmp_path / "c.pt")
    assert resumed.methods[0].traces == full.methods[0].traces
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs, match", [({"beta": -0.1}, "beta"), ({"beta": "big"}, "beta"),
                                           ({"threshold": 0.0}, r"\(0, 1\)"), ({"threshold": 1.0}, r"\(0, 1\)"),
                                           ({"threshold": True}, "threshold"), ({"schedule": "early"}, "schedule"),
                                           ({"rule": "icml"}, "rule"), ({"constants": {"a": 1.0}}, "rule='code'")])
def test_bad_arguments_are_refused_before_training(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InfoReg(**kwargs)


def test_code_rule_needs_a_constant_for_every_modality():
    method = InfoReg(rule="code", constants={"a": 0.95})
    with pytest.raises(ValueError, match="no value for modalities"):
        method.on_fit_start(make_state(linear_model()))


def test_registry_names():
    assert type(mm.METHODS.create("inforeg")) is InfoReg
    star = mm.METHODS.create("inforeg-star", rule="code")
    assert type(star) is InfoRegStar and star.rule == "code" and star.threshold == 0.05
    assert mm.METHODS.create("inforeg").threshold == 0.04 and mm.METHODS.create("inforeg").beta == 0.9
