"""OPM: drop probability, masking and 1/(1 - theta) rescaling, execution, window, timing of q."""
import math

import pytest
import torch
import torch.nn.functional as F

import mmlib as mm
from mmlib.methods.base import TrainState
from mmlib.methods.opm import OPM, opm_drop_probability
from mmlib.models.net import Output
from tests.helpers import make_tiny_data


def tiny_data(modalities=("a", "b")):
    """The first modality is strongly informative (dominant), the others weakly."""
    return make_tiny_data(modalities, strengths={m: 3.0 if i == 0 else 0.3 for i, m in enumerate(modalities)})


def started(method, modalities=("a", "b"), epoch=0, q=None):
    """A method after on_fit_start and one on_train_batch_start, with q set by hand."""
    model = torch.nn.Linear(1, 1)
    state = TrainState(model=model, optimizer=None, modalities=modalities, num_classes=3, num_epochs=5,
                       device=torch.device("cpu"), generator=torch.Generator().manual_seed(0), epoch=epoch)
    method.on_fit_start(state)
    method.on_train_batch_start(state, {})
    if q is not None:
        method._q = dict(q)
    return state


@pytest.mark.parametrize("rho, q", [(1 + 1e-9, 0.5), (1.5, 0.5 * (1 + 0.5 * math.tanh(0.5))),
                                    (2.0, 0.69), (3.0, 0.741), (1e9, 0.75)])
def test_drop_probability_matches_the_spec(rho, q):
    assert opm_drop_probability(rho, 0.5, 0.5) == pytest.approx(q, abs=5e-3)


def test_drop_probability_edges():
    assert opm_drop_probability(1.0, 0.5, 0.5) == 0.0  # rho = 1 is not dominant
    assert opm_drop_probability(0.0, 0.5, 0.5) == 0.0  # zero score
    assert opm_drop_probability(0.3, 0.9, 2.0) == 0.0
    assert opm_drop_probability(5.0, 0.9, 2.0) == 1.0  # clipped
    with pytest.raises(ValueError, match="p_exe"):
        OPM(p_exe=1.5)


def test_whole_features_are_dropped_and_everything_is_rescaled_in_forward_and_backward():
    method = OPM(p_exe=1.0)
    state = started(method, q={"a": 0.5, "b": 0.0})
    feats = {"a": torch.randn(400, 4, requires_grad=True), "b": torch.randn(400, 12, requires_grad=True)}
    out = method.on_features(state, feats)
    scale = 1 / (1 - 4 * 0.5 / 16)  # theta = feature-size-weighted mean of q = 0.125
    kept = out["a"].ne(0).any(1)
    assert 0.4 < kept.float().mean() < 0.6
    assert out["a"][~kept].abs().sum() == 0  # whole features, not single entries
    torch.testing.assert_close(out["a"][kept], feats["a"][kept] * scale)
    torch.testing.assert_close(out["b"], feats["b"] * scale)
    (out["a"].sum() + out["b"].sum()).backward()
    torch.testing.assert_close(feats["a"].grad, kept[:, None].float().expand(-1, 4) * scale)
    torch.testing.assert_close(feats["b"].grad, torch.full((400, 12), scale))


def test_no_dropping_outside_the_window_or_when_not_executed():
    feats = {"a": torch.randn(8, 4), "b": torch.randn(8, 4)}
    q = {"a": 0.7, "b": 0.0}
    for method, epoch in ((OPM(p_exe=1.0, start_epoch=2), 1), (OPM(p_exe=1.0, end_epoch=2), 3), (OPM(p_exe=0.0), 0)):
        state = started(method, epoch=epoch, q=q)
        assert method.on_features(state, feats) is feats
    method = OPM(p_exe=1.0, start_epoch=2, end_epoch=2)
    state = started(method, epoch=2, q=q)
    assert method.on_features(state, feats) is not feats


def test_no_dropping_in_eval_mode():
    data = tiny_data()
    torch.manual_seed(0)
    model = mm.build_model(data)
    method = OPM(p_exe=1.0)
    state = started(method, q={"a": 0.7, "b": 0.0})
    state.model = model
    hook = lambda f: method.on_features(state, f)  # noqa: E731
    model.eval()
    assert torch.equal(model(data.test.inputs, feature_hook=hook).logits, model(data.test.inputs).logits)
    model.train()
    assert not torch.equal(model(data.test.inputs, feature_hook=hook).logits, model(data.test.inputs).logits)


def test_execution_rate_is_p_exe_and_reproducible():
    def draws(p_exe):
        m = OPM(p_exe=p_exe)
        state = started(m)
        out = []
        for _ in range(2000):
            m.on_train_batch_start(state, {})
            out.append(m._active)
        return out

    assert 0.67 < sum(draws(0.7)) / 2000 < 0.73
    assert draws(0.7) == draws(0.7)


def test_q_comes_from_the_previous_step():
    m = OPM(p_exe=1.0)
    state = started(m)
    assert m._q == {"a": 0.0, "b": 0.0}  # the first step drops nothing
    y = torch.arange(6) % 3
    monitor = {"a": 5.0 * F.one_hot(y, 3).float(), "b": torch.zeros(6, 3)}
    m.on_after_forward(state, Output(torch.zeros(6, 3), monitor, {}), {"y": y})
    rho = 3 / (1 + 2 * math.exp(-5))
    assert m._q["a"] == pytest.approx(opm_drop_probability(rho, 0.5, 0.5)) and m._q["b"] == 0.0
    logged = {r["name"]: r["value"] for r in state.records}
    assert logged["q/a"] == pytest.approx(m._q["a"]) and logged["rho/a"] == pytest.approx(rho)


def test_three_modalities_never_lose_every_feature():
    m = OPM(q_base=0.9, lam=1.0, p_exe=1.0)
    state = started(m, modalities=("a", "b", "c"))
    y = torch.arange(9) % 3
    monitor = {"a": 5.0 * F.one_hot(y, 3).float(), "b": 4.0 * F.one_hot(y, 3).float(), "c": torch.zeros(9, 3)}
    m.on_after_forward(state, Output(torch.zeros(9, 3), monitor, {}), {"y": y})
    assert m._q["a"] > 0 and m._q["b"] > 0 and m._q["c"] == 0.0
    out = m.on_features(state, {k: torch.ones(500, 2) for k in "abc"})
    assert torch.stack([v.ne(0).any(1) for v in out.values()]).any(0).all()


@pytest.mark.parametrize("fusion", ["concat", "sum", "film", "gated"])
@pytest.mark.parametrize("modalities", [("a", "b"), ("a", "b", "c")])
def test_fit_runs_with_every_head_and_three_modalities(fusion, modalities):
    data = tiny_data(modalities)
    torch.manual_seed(0)
    res = mm.fit(mm.build_model(data, fusion=fusion), data, OPM(p_exe=1.0), num_epochs=2, batch_size=20)
    q = res.log[res.log["name"].str.startswith("q/")]
    steps = 2 * -(-len(data.train) // 20)
    assert len(q) == steps * len(modalities) and q["value"].between(0, 0.75).all()
    assert all(torch.isfinite(p).all() for p in res.model.parameters())


def test_opm_with_ogm_ge_runs_repeat_exactly():
    data = tiny_data()

    def run():
        torch.manual_seed(0)
        return mm.fit(mm.build_model(data), data, [OPM(p_exe=1.0), "ogm-ge"], num_epochs=2, batch_size=20)

    a, b = run(), run()
    assert a.test == b.test and a.records == b.records
    assert mm.evaluate(a.model, data.test) == a.test


def test_state_dict_round_trip():
    m = OPM()
    started(m, q={"a": 0.6, "b": 0.0})
    saved = m.state_dict()
    m2 = OPM()
    m2.on_fit_start(started(OPM()))  # fit: on_fit_start, then load_state_dict; the saved streams win
    m2.load_state_dict(saved)
    assert m2._q == {"a": 0.6, "b": 0.0}
    assert torch.equal(m2._gens["exe"].get_state(), m._gens["exe"].get_state())


@pytest.mark.parametrize("q", [0.2, 0.7])
def test_the_realised_drop_rate_is_q_not_one_minus_q(q):
    """Each sample's dominant feature is dropped with probability q (within 4 standard errors)."""
    m = OPM(p_exe=1.0)
    state = started(m, q={"a": q, "b": 0.0})
    state.model.train()
    n = 20_000
    feats = {"a": torch.ones(n, 4), "b": torch.ones(n, 4)}
    out = m.on_features(state, feats)
    dropped = (out["a"] == 0).all(dim=1).float().mean().item()
    se = (q * (1 - q) / n) ** 0.5
    assert abs(dropped - q) < 4 * se, (dropped, q)
    assert (out["b"] != 0).all()  # q = 0: never dropped
