"""MMPareto: the rule against a literal version of the spec, its branches and degenerate cases,
and the batched gradients against the official scheme's separate backward passes."""
import copy
import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import mmlib as mm
from mmlib.data.base import MultimodalDataset, Split
from mmlib.methods.base import TrainState, modality_params
from mmlib.methods.grads import GradLayout
from mmlib.methods.mmpareto import MGDA, MMPareto, UniformGamma

ENCODERS = {"audio": ("cnn", {"in_channels": 1, "width": 4, "out_dim": 8}),  # conv + BatchNorm
            "visual": ("mlp", {"in_dim": 12, "hidden": 16, "out_dim": 8}),
            "text": ("mlp", {"in_dim": 6, "hidden": 8, "out_dim": 8})}
SHAPES = {"audio": (1, 8, 8), "visual": (12,), "text": (6,)}


def tiny_data(modalities, n=24, num_classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    split = lambda: Split({m: torch.randn(n, *SHAPES[m], generator=g) for m in modalities},  # noqa: E731
                          torch.randint(0, num_classes, (n,), generator=g))
    return MultimodalDataset("tiny", tuple(modalities), num_classes, split(), split(), split(),
                             {m: ENCODERS[m] for m in modalities})


def setup(modalities=("audio", "visual"), fusion="concat", seed=0):
    data = tiny_data(modalities, seed=seed)
    torch.manual_seed(seed)
    model = mm.build_model(data, fusion=fusion, separate_uni=True).train()
    return data, model, data.train.batch(torch.arange(len(data.train)))


def state_for(model, modalities=None):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    modalities = modalities or model.modalities
    return TrainState(model=model, optimizer=opt, modalities=modalities, num_classes=3, num_epochs=1,
                      device=torch.device("cpu"), generator=torch.Generator())


def grads_of(method, model, batch):
    """One forward, compute_loss and backward on a copy of ``model``; its ``.grad`` by name."""
    model = copy.deepcopy(model)  # BatchNorm's running statistics move on every forward
    state = state_for(model)
    losses = method.compute_loss(state, model(batch["inputs"]), batch)
    method.backward(state, losses)
    return {n: p.grad for n, p in model.named_parameters()}, state


def reference_grads(model, batch, gamma=1.5):
    """The spec (mmpareto.md §2) written out literally, with one backward per loss."""
    model = copy.deepcopy(model)
    out = model(batch["inputs"])
    y = batch["y"]
    l_mm = F.cross_entropy(out.logits, y)
    l_u = {m: F.cross_entropy(out.uni_logits[m], y) for m in model.modalities}
    final = {}
    for m in model.modalities:
        params = modality_params(model, m)
        g_m = torch.autograd.grad(l_mm, params, retain_graph=True)
        g_u = torch.autograd.grad(l_u[m], params, retain_graph=True)
        vm, vu = torch.cat([g.flatten() for g in g_m]), torch.cat([g.flatten() for g in g_u])
        cos = vm @ vu / (vm.norm() * vu.norm())
        c = 0.5 if cos > 0 else float(((vu @ vu - vm @ vu) / (vm - vu).pow(2).sum()).clamp(0, 1))
        for p, a, b in zip(params, g_m, g_u):
            h = 2 * (c * a + (1 - c) * b)
            final[p] = gamma * max(1.0, float((a + b).norm() / h.norm())) * h
    (l_mm + sum(l_u.values())).backward()
    return {n: final.get(p, p.grad) for n, p in model.named_parameters()}


def assert_close(a, b, rtol=1e-5, atol=1e-7):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=rtol, atol=atol, msg=name)


# --- the rule on given gradients (hand-made pairs) ---------------------------------------------

def combine_many(method, pairs):
    """Apply the rule to given per-tensor gradients of several encoders {name: (g_m, g_u)}."""
    enc = {m: [torch.nn.Parameter(torch.zeros_like(g)) for g in g_m] for m, (g_m, _) in pairs.items()}
    state = state_for(torch.nn.Linear(1, 1), tuple(pairs))
    flat = torch.stack([torch.cat([g.reshape(-1) for m in pairs for g in pairs[m][i]]) for i in (0, 1)])
    method._combine(state, GradLayout(enc), flat)
    return {m: [p.grad for p in ps] for m, ps in enc.items()}, {r["name"]: r["value"] for r in state.records}


def combine(method, g_m, g_u, modality="audio"):
    """Apply the rule to one encoder's given per-tensor gradients; returns the written gradients."""
    out, log = combine_many(method, {modality: (g_m, g_u)})
    return out[modality], log


def test_no_conflict_is_uniform_sum_times_gamma():
    g_m = [torch.tensor([1.0, 2.0]), torch.tensor([[0.5]])]
    g_u = [torch.tensor([2.0, 1.0]), torch.tensor([[3.0]])]
    out, log = combine(MMPareto(gamma=1.5), g_m, g_u)
    for got, a, b in zip(out, g_m, g_u):
        torch.testing.assert_close(got, 1.5 * (a + b))
    assert log["conflict/audio"] == 0.0 and log["c/audio"] == 0.5


def test_conflict_uses_min_norm_weight_and_per_tensor_rescale():
    g_m = [torch.tensor([1.0, 0.0]), torch.tensor([0.2])]
    g_u = [torch.tensor([-1.0, 1.0]), torch.tensor([0.1])]
    out, log = combine(MMPareto(gamma=1.5), g_m, g_u)
    vm, vu = torch.cat(g_m), torch.cat(g_u)
    c = float((vu @ vu - vm @ vu) / (vm - vu).pow(2).sum())
    assert log["conflict/audio"] == 1.0 and log["c/audio"] == pytest.approx(c)
    assert log["cos/audio"] == pytest.approx(float(vm @ vu / (vm.norm() * vu.norm())))
    for got, a, b in zip(out, g_m, g_u):
        h = 2 * (c * a + (1 - c) * b)
        torch.testing.assert_close(got, 1.5 * max(1.0, float((a + b).norm() / h.norm())) * h)


def test_mgda_and_no_rescale_variants():
    g_m, g_u = [torch.tensor([1.0, 0.0])], [torch.tensor([-1.0, 1.0])]
    (mgda,), _ = combine(MGDA(), g_m, g_u)
    torch.testing.assert_close(mgda, 0.6 * g_m[0] + 0.4 * g_u[0])  # the min-norm point itself
    (plain,), _ = combine(MMPareto(rescale=False), g_m, g_u)
    torch.testing.assert_close(plain, 2 * mgda)
    (uni,), _ = combine(UniformGamma(gamma=2.0), g_m, g_u)  # conflict is ignored
    torch.testing.assert_close(uni, 2.0 * (g_m[0] + g_u[0]))


def test_each_encoder_gets_its_own_weight_in_one_call():
    pairs = {"audio": ([torch.tensor([1.0, 0.0]), torch.tensor([0.2])],
                       [torch.tensor([-1.0, 1.0]), torch.tensor([0.1])]),
             "visual": ([torch.tensor([[1.0, 2.0]])], [torch.tensor([[2.0, 1.0]])]),
             "text": ([torch.tensor([3.0, -1.0, 0.5])], [torch.tensor([-2.0, 0.0, 4.0])])}
    together, log = combine_many(MMPareto(), pairs)
    for m, (g_m, g_u) in pairs.items():  # the same as the rule applied to each encoder alone
        alone, log_alone = combine(MMPareto(), g_m, g_u, m)
        for a, b in zip(together[m], alone):
            torch.testing.assert_close(a, b)
        assert log_alone.items() <= log.items()
    assert [log[f"conflict/{m}"] for m in pairs] == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("g_m, g_u, expected", [
    ([1.0, 2.0], [1.0, 2.0], [3.0, 6.0]),          # identical: gamma * 2g
    ([1.0, 2.0], [-1.0, -2.0], [0.0, 0.0]),        # opposite: Pareto-stationary, update 0
    ([1.0, -2.0], [-3.0, 6.0], [0.0, 0.0]),        # opposite, unequal norms
    ([1.0, 2.0], [0.0, 0.0], [1.5, 3.0]),          # zero unimodal gradient: gamma * g_m, not 0
    ([0.0, 0.0], [0.0, 0.0], [0.0, 0.0]),          # both zero
])
@pytest.mark.parametrize("cls", [MMPareto, MGDA, UniformGamma])
def test_degenerate_gradients_give_no_nan(g_m, g_u, expected, cls):
    out, log = combine(cls(), [torch.tensor(g_m), torch.zeros(3)], [torch.tensor(g_u), torch.zeros(3)])
    assert all(torch.isfinite(g).all() for g in out) and all(math.isfinite(v) for v in log.values())
    torch.testing.assert_close(out[1], torch.zeros(3))  # a tensor with no gradient stays 0
    if cls is MMPareto:
        torch.testing.assert_close(out[0], torch.tensor(expected))



def test_nearly_cancelling_tensor_is_enlarged_as_in_float64():
    """An encoder at a near-stationary conflict (g_m ~ -g_u, so c ~ 1/2) with a 1-element tensor,
    say a PReLU slope, whose g_m = -g_u to 1e-4: ||g_m + g_u||^2 and ||h||^2 cancel to 1e-8 of
    their Gram entries, below float32's resolution, so the entries must be formed in float64."""
    g_m = [torch.tensor([1.0]), torch.tensor([1.0, 0.0])]
    g_u = [torch.tensor([-1.0001]), torch.tensor([-1.0, 0.0])]
    out, log = combine(MMPareto(gamma=1.5), g_m, g_u)
    c = log["c/audio"]
    assert log["conflict/audio"] == 1.0 and c == pytest.approx(0.5, abs=1e-4)
    for got, a, b in zip(out, g_m, g_u):  # the 1-element tensor first
        a, b = a.double(), b.double()
        h = 2 * (c * a + (1 - c) * b)
        factor = 1.5 * max(1.0, float((a + b).norm() / h.norm()))
        assert float(got.double().norm() / h.norm()) == pytest.approx(factor, rel=1e-5)
        torch.testing.assert_close(got.double(), factor * h, rtol=1e-5, atol=0)
    assert float(out[0].norm()) == pytest.approx(1.5 * 1e-4, rel=1e-3)  # gamma ||g_m + g_u||

tensors = st.lists(st.floats(-5, 5), min_size=6, max_size=6).map(torch.tensor)


@settings(max_examples=100, deadline=None)
@given(tensors, tensors, st.sampled_from([1.0, 1.5, 3.0]))
def test_update_is_h_enlarged_per_tensor(a, b, gamma):
    g_m, g_u = [a[:4], a[4:]], [b[:4], b[4:]]
    out, log = combine(MMPareto(gamma=gamma), g_m, g_u)
    c = log["c/audio"]
    assert 0.0 <= c <= 1.0
    for got, x, y in zip(out, g_m, g_u):
        h = 2 * (c * x + (1 - c) * y)
        assert torch.isfinite(got).all()
        if h.norm() > 1e-3:  # same direction as h, and at least gamma times as long (and as g_m + g_u)
            assert float(got @ h) >= 0
            assert got.norm() >= gamma * max(h.norm(), (x + y).norm()) * (1 - 1e-4)


# --- whole backward: batched == separate passes == the spec ------------------------------------

@pytest.mark.parametrize("modalities", [("audio", "visual"), ("audio", "visual", "text")])
@pytest.mark.parametrize("fusion", ["concat", "sum"])
@pytest.mark.parametrize("make", [MMPareto, MGDA, UniformGamma, lambda **k: MMPareto(rescale=False, **k)])
def test_batched_equals_separate_backward_passes(modalities, fusion, make):
    _, model, batch = setup(modalities, fusion)
    fast, state = grads_of(make(), model, batch)  # two plain VJPs from the features
    assert_close(fast, grads_of(make(naive=True), model, batch)[0])
    assert_close(fast, grads_of(make(batched=True), model, batch)[0])  # one vmapped VJP
    assert {r["name"] for r in state.records} == {f"{k}/{m}" for k in ("cos", "conflict", "c", "norm_mm", "norm_uni")
                                                   for m in modalities}


def test_float64_models_work_in_every_scheme():
    _, model, batch = setup(("audio", "visual"))
    model, batch = model.double(), {**batch, "inputs": {m: x.double() for m, x in batch["inputs"].items()}}
    naive, _ = grads_of(MMPareto(naive=True), model, batch)
    for method in (MMPareto(), MMPareto(batched=True)):
        got, _ = grads_of(method, model, batch)
        assert all(g.dtype == torch.float64 for g in got.values())
        assert_close(got, naive, rtol=1e-10, atol=1e-12)


def test_matches_the_spec_written_out_in_both_branches():
    seen = set()
    for seed in range(4):
        _, model, batch = setup(("audio", "visual", "text"), seed=seed)
        got, state = grads_of(MMPareto(), model, batch)
        assert_close(got, reference_grads(model, batch))
        seen |= {r["value"] for r in state.records if r["name"] == "conflict/audio"}
    assert seen == {0.0, 1.0}  # the CNN encoder met both the no-conflict and the conflict branch


def test_uniform_gamma_one_is_joint_uni_and_gamma_scales_only_encoders():
    _, model, batch = setup(("audio", "visual"))
    joint_uni, _ = grads_of(mm.METHODS.create("joint-uni"), model, batch)
    assert_close(grads_of(UniformGamma(gamma=1.0), model, batch)[0], joint_uni)
    scaled, _ = grads_of(UniformGamma(gamma=1.5), model, batch)
    for name, g in scaled.items():
        torch.testing.assert_close(g, joint_uni[name] * (1.5 if name.startswith("encoders.") else 1.0))


def test_c_is_kept_per_encoder_and_fit_runs_with_three_modalities():
    data = tiny_data(("audio", "visual", "text"))
    torch.manual_seed(0)
    model = mm.build_model(data, separate_uni=True)
    res = mm.fit(model, data, "mmpareto", num_epochs=2, batch_size=8)
    method = res.methods[0]
    assert set(method.c) == set(data.modalities) and all(0.0 <= c <= 1.0 for c in method.c.values())
    assert all(torch.isfinite(p).all() for p in res.model.parameters())
    log = res.log
    assert set(log["name"]) >= {"cos/text", "conflict/audio", "norm_mm/visual"}
    assert log["value"].notna().all()


def test_registered_names_and_bad_weights():
    assert {"mmpareto", "mmpareto-naive", "mgda", "uniform-gamma"} <= set(mm.METHODS.names())
    assert mm.METHODS.create("mmpareto-naive").naive
    with pytest.raises(ValueError, match="weights must be one of"):
        MMPareto(weights="pareto-ish")


# --- data parallel: autograd.grad bypasses DDP's reducer, so the method averages itself ---------

def _ddp_worker(rank, world, port, outdir):
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        data = tiny_data(("audio", "visual"), n=32)
        out = {}
        for name in ("mmpareto", "mmpareto-naive"):
            torch.manual_seed(rank)  # different initial weights: DDP must broadcast rank 0's
            res = mm.fit(mm.build_model(data, separate_uni=True), data, name, num_epochs=2, batch_size=8)
            out[name] = {"params": [p.detach().clone() for p in res.model.parameters()], "records": res.records}
        torch.save(out, os.path.join(outdir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_ranks_stay_identical_under_ddp(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2))
    for name in r0:
        assert all(torch.equal(a, b) for a, b in zip(r0[name]["params"], r1[name]["params"])), name
        assert r0[name]["records"] == r1[name]["records"], name  # same cosines and weights on both ranks
