"""OGM and OGM-GE: coefficient, which tensors change, GE noise, window, determinism."""
import math

import pytest
import torch
import torch.nn.functional as F

import mmlib as mm
from mmlib.task import classification_loss
from mmlib.methods.base import TrainState
from mmlib.methods.ogm_ge import OGM, OGMGE, encoder_tensors, ogm_coefficient
from mmlib.models.encoders import ConvEncoder
from tests.helpers import make_tiny_data


def tiny_data(modalities=("a", "b")):
    """The first modality is strongly informative (dominant), the others weakly."""
    return make_tiny_data(modalities, strengths={m: 3.0 if i == 0 else 0.3 for i, m in enumerate(modalities)})


def make_state(model, epoch=0, seed=0):
    return TrainState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                      modalities=tuple(model.modalities), num_classes=3, num_epochs=5, device=torch.device("cpu"),
                      generator=torch.Generator().manual_seed(seed), epoch=epoch)


def backward_once(method, fusion="concat", epoch=0):
    """One forward/backward on tiny data; returns model, original grads, and grads after the hook."""
    torch.manual_seed(0)
    data = tiny_data()
    model = mm.build_model(data, fusion=fusion)
    state = make_state(model, epoch)
    method.on_fit_start(state)
    batch = data.train.batch(torch.arange(len(data.train)))
    out = model(batch["inputs"])
    # the monitor sees "a" confident and "b" uniform over 3 classes: rho_a = 3 / (1 + 2 e^-5)
    monitor = {"a": 5.0 * F.one_hot(batch["y"], 3).float(), "b": torch.zeros(len(batch["y"]), 3)}
    method.on_after_forward(state, mm.models.net.Output(out.logits, monitor, out.feats), batch)
    sum(classification_loss(model, out, batch["y"]).values()).backward()
    before = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    method.on_before_optimizer_step(state, state.optimizer)
    after = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return model, state, before, after


@pytest.mark.parametrize("alpha, rho, k", [(0.1, 1.5, 0.851), (0.1, 2, 0.803), (0.1, 3, 0.709),
                                           (0.3, 1.5, 0.578), (0.3, 2, 0.463), (0.3, 3, 0.284),
                                           (0.8, 1.5, 0.166), (0.8, 2, 0.078), (0.8, 3, 0.016),
                                           (2.6, 1.5, 0.001)])
def test_code_rule_matches_the_spec_table(alpha, rho, k):
    assert ogm_coefficient(rho, alpha) == pytest.approx(k, abs=6e-4)


def test_code_rule_jumps_at_rho_one_and_paper_rule_does_not():
    for rule in ("code", "paper"):
        assert ogm_coefficient(1.0, 0.8, rule) == 1.0
        assert ogm_coefficient(0.4, 0.8, rule) == 1.0
        assert ogm_coefficient(0.0, 0.8, rule) == 1.0
    assert ogm_coefficient(1 + 1e-9, 0.8, "code") == pytest.approx(1 - math.tanh(0.8))
    assert ogm_coefficient(1 + 1e-9, 0.8, "paper") == pytest.approx(1.0)
    assert ogm_coefficient(2.0, 0.8, "paper") == pytest.approx(1 - math.tanh(0.8))
    assert ogm_coefficient(1e8, 0.8) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="rule"):
        ogm_coefficient(2.0, 0.8, "bogus")


def test_weights_selection_is_by_module_and_skips_bn_and_biases():
    enc = ConvEncoder(in_channels=1, width=4, out_dim=8)
    chosen = {id(p) for p in encoder_tensors(enc)}
    expected = {id(m.weight) for m in enc.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
    assert chosen == expected
    assert {id(p) for p in encoder_tensors(enc, "all")} == {id(p) for p in enc.parameters()}
    with pytest.raises(ValueError, match="modulate"):
        encoder_tensors(enc, "convs")


def test_only_the_dominant_encoders_weights_are_scaled():
    method = OGM(alpha=0.5)
    model, state, before, after = backward_once(method)
    k = method._k
    assert k["a"] == pytest.approx(ogm_coefficient(3 / (1 + 2 * math.exp(-5)), 0.5)) and k["b"] == 1.0
    scaled = {n for n, p in model.named_parameters() if any(p is q for q in encoder_tensors(model.encoders["a"]))}
    assert scaled  # without any DataParallel wrapper, something is modulated
    for n in before:
        expected = before[n] * k["a"] if n in scaled else before[n]
        torch.testing.assert_close(after[n], expected, rtol=0, atol=0)


def test_modulate_all_includes_biases_but_never_the_head():
    method = OGM(alpha=0.5, modulate="all")
    model, _, before, after = backward_once(method)
    for n in before:
        if n.startswith("encoders.a."):
            torch.testing.assert_close(after[n], before[n] * method._k["a"])
        else:
            assert torch.equal(after[n], before[n])


def test_ge_noise_uses_the_std_of_the_unmodulated_gradient():
    method = OGMGE(alpha=0.5)
    torch.manual_seed(0)
    model = torch.nn.Module()
    model.encoders = torch.nn.ModuleDict({"a": torch.nn.Linear(300, 300), "b": torch.nn.Linear(300, 300)})
    model.modalities = ("a", "b")
    state = make_state(model)
    method.on_fit_start(state)
    grads = {"a": torch.randn(300, 300) * 2.0, "b": torch.randn(300, 300) * 0.5}
    for m, enc in model.encoders.items():
        enc.weight.grad, enc.bias.grad = grads[m].clone(), torch.ones(300)
    method._k = {"a": 0.25, "b": 1.0}
    method.on_before_optimizer_step(state, state.optimizer)
    for m, enc in model.encoders.items():
        noise = enc.weight.grad - method._k[m] * grads[m]
        assert abs(noise.mean().item()) < 0.02 * grads[m].std().item()
        assert noise.std().item() == pytest.approx(grads[m].std().item() + 1e-8, rel=0.02)
        assert torch.equal(enc.bias.grad, torch.ones(300))  # biases are not modulated, not noised


def test_nothing_changes_outside_the_window():
    for epoch, inside in ((0, False), (1, True), (2, True), (3, False)):
        _, _, before, after = backward_once(OGMGE(alpha=0.5, start_epoch=1, end_epoch=2), epoch=epoch)
        same = all(torch.equal(before[n], after[n]) for n in before)
        assert same != inside, f"epoch {epoch}"


@pytest.mark.parametrize("fusion", ["concat", "sum", "film", "gated"])
@pytest.mark.parametrize("modalities", [("a", "b"), ("a", "b", "c")])
def test_fit_runs_with_every_head_and_three_modalities(fusion, modalities):
    data = tiny_data(modalities)
    torch.manual_seed(0)
    res = mm.fit(mm.build_model(data, fusion=fusion), data, OGMGE(alpha=0.5), num_epochs=2, batch_size=20)
    k = res.log[res.log["name"].str.startswith("k/")]
    steps = 2 * -(-len(data.train) // 20)
    assert len(k) == steps * len(modalities) and k["value"].between(0, 1).all()
    assert all(torch.isfinite(p).all() for p in res.model.parameters())


def test_runs_repeat_exactly():
    data = tiny_data()

    def weights(seed):
        torch.manual_seed(0)
        res = mm.fit(mm.build_model(data), data, OGMGE(alpha=0.5), num_epochs=2, batch_size=20, seed=seed)
        return torch.cat([p.detach().flatten() for p in res.model.parameters()])

    assert torch.equal(weights(0), weights(0))


def test_the_noise_seed_comes_from_the_run_seed_without_touching_the_data_order():
    seeds = []
    for run_seed in (0, 0, 1):
        state = make_state(mm.build_model(tiny_data()), seed=run_seed)
        before = state.generator.get_state()
        method = OGMGE()
        method.on_fit_start(state)
        assert torch.equal(state.generator.get_state(), before)
        seeds.append(method._noise.initial_seed())
    assert seeds[0] == seeds[1] != seeds[2]


def test_state_dict_restores_the_noise_stream():
    data = tiny_data()
    a = OGMGE()
    a.on_fit_start(make_state(mm.build_model(data)))
    saved = a.state_dict()
    g = torch.randn(20)
    first = a._ge_noise(g)
    b = OGMGE()
    b.on_fit_start(make_state(mm.build_model(data), seed=7))  # fit: on_fit_start, then load_state_dict
    b.load_state_dict(saved)
    assert torch.equal(b._ge_noise(g), first)


def test_registry_names():
    assert isinstance(mm.METHODS.create("ogm"), OGM) and not mm.METHODS.create("ogm").ge
    assert mm.METHODS.create("ogm-ge", alpha=0.8).ge
    with pytest.raises(ValueError, match="alpha"):
        OGMGE(alpha=-1)


def test_a_zero_gradient_still_gets_the_noise_floor():
    """GE noise has std (std(G) + 1e-8): a zero gradient receives noise of std 1e-8, not none."""
    data = tiny_data()
    m = OGMGE()
    m.on_fit_start(make_state(mm.build_model(data)))
    noise = m._ge_noise(torch.zeros(20_000))
    assert noise.abs().max() > 0
    assert noise.std().item() == pytest.approx(1e-8, rel=0.05)
    g = torch.randn(20_000) * 3.0
    assert m._ge_noise(g).std().item() == pytest.approx(g.std().item() + 1e-8, rel=0.05)
