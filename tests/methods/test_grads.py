"""Gradient plumbing: the layout's flattening and segmented sums, and every per-loss scheme
against plain ``torch.autograd.grad`` on a model with BatchNorm in its encoders."""
import pytest
import torch
import torch.nn.functional as F

import mmlib as mm
from mmlib.methods.base import modality_params
from mmlib.methods.grads import (GradLayout, accumulate, backward_except, encoder_groups, layout_for, loss_grads,
                                 separate_grads, two_pass_grads)
from tests.helpers import make_tiny_data

MODALITIES = ("a", "b", "c")


def setup(dtype=torch.float32):
    """A three-modality model with conv + BatchNorm encoders, its losses, groups and heads."""
    data = make_tiny_data(MODALITIES, n=30, kind="cnn")
    torch.manual_seed(0)
    model = mm.build_model(data, separate_uni=True).to(dtype).train()
    batch = data.train.batch(torch.arange(len(data.train)))
    out = model({m: x.to(dtype) for m, x in batch["inputs"].items()})
    losses = {"fused": F.cross_entropy(out.logits, batch["y"])}
    losses.update({m: F.cross_entropy(out.uni_logits[m], batch["y"]) for m in MODALITIES})
    return model, losses, encoder_groups(model, MODALITIES), list(model.head.parameters())


def hand_layout():
    """Two groups of hand-made tensors: a (2, 3) and a (1,) for "x", a (4,) for "y"."""
    groups = {"x": [torch.nn.Parameter(torch.zeros(2, 3)), torch.nn.Parameter(torch.zeros(1))],
              "y": [torch.nn.Parameter(torch.zeros(4))]}
    return GradLayout(groups), groups


def plain(loss, params):
    """The reference: one plain autograd.grad call, flattened (zeros where the loss does not reach)."""
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return torch.cat([torch.zeros(p.numel(), dtype=p.dtype) if g is None else g.reshape(-1)
                      for g, p in zip(grads, params)])


# --- the layout ----------------------------------------------------------------------------

def test_layout_positions_and_flat_round_trip():
    layout, groups = hand_layout()
    assert layout.names == ("x", "y") and layout.sizes == [6, 1, 4]
    assert layout.params == [*groups["x"], *groups["y"]]
    assert layout.tensors_of == {"x": slice(0, 2), "y": slice(2, 3)}
    assert layout.tensor_of.tolist() == [0] * 6 + [1] + [2] * 4
    grads = [torch.arange(6.0).view(2, 3), None, torch.tensor([7.0, 8.0, 9.0, 10.0])]
    flat = layout.flat(grads)
    assert flat.tolist() == [0, 1, 2, 3, 4, 5, 0, 7, 8, 9, 10]  # None is a zero gradient
    back = layout.unflat(flat)
    assert [g.shape for g in back] == [(2, 3), (1,), (4,)]
    assert torch.equal(back[0], grads[0]) and torch.equal(back[2], grads[2]) and back[1].item() == 0


def test_segmented_sums_per_tensor_and_group_in_float64():
    layout, _ = hand_layout()
    rows = torch.stack([torch.arange(11.0), torch.ones(11)])
    per_tensor = layout.per_tensor(rows)
    assert per_tensor.dtype == torch.float64
    assert per_tensor.tolist() == [[15, 6, 7 + 8 + 9 + 10], [6, 1, 4]]
    assert layout.per_group(rows).tolist() == [[21, 34], [7, 4]]
    assert layout.spread(per_tensor).tolist() == [[15] * 6 + [6] + [34] * 4, [6] * 6 + [1] + [4] * 4]


def test_gram_and_squared_norms_match_dot_products_per_tensor():
    layout, _ = hand_layout()
    g = torch.randn(3, 11, generator=torch.Generator().manual_seed(0))
    gram = layout.gram(g)
    assert gram.shape == (3, 3, 3) and gram.dtype == torch.float64
    pieces = (slice(0, 6), slice(6, 7), slice(7, 11))
    for i in range(3):
        for j in range(3):
            expected = [float(g[i, s].double() @ g[j, s].double()) for s in pieces]
            assert gram[i, j].tolist() == pytest.approx(expected, rel=1e-12)
    norms = layout.squared_norms(g[0])
    assert set(norms) == {"x", "y"}
    assert float(norms["x"]) == pytest.approx(float(g[0, :7].double().square().sum()), rel=1e-12)
    assert float(norms["y"]) == pytest.approx(float(g[0, 7:].double().square().sum()), rel=1e-12)


def test_gram_of_a_nearly_cancelling_pair_is_exact():
    """||g_m + g_u||^2 from the entries of a 1-element tensor with g_m = -g_u to 1e-4: float32
    products round away the 1e-8 that remains, float64 ones of float32 entries are exact."""
    layout = GradLayout({"x": [torch.nn.Parameter(torch.zeros(1))]})
    g = torch.tensor([[1.0], [-1.0001]])
    gram = layout.gram(g)[..., 0]
    exact = (g[0].double() + g[1].double()).square().item()
    assert gram[0, 0] + 2 * gram[0, 1] + gram[1, 1] == pytest.approx(exact, rel=1e-6)


def test_layout_is_reused_until_a_parameter_changes():
    model, _, groups, _ = setup()
    assert groups == {m: modality_params(model, m) for m in MODALITIES}
    layout = layout_for(groups)
    assert layout_for(encoder_groups(model, MODALITIES), layout) is layout
    assert layout_for({m: groups[m] for m in reversed(MODALITIES)}, layout) is not layout
    conv = model.encoders["a"].conv[0]
    conv.weight = torch.nn.Parameter(conv.weight.detach().clone())  # as a re-initialisation might
    fresh = layout_for(encoder_groups(model, MODALITIES), layout)
    assert fresh is not layout and fresh.params[0] is conv.weight


# --- the gradient schemes against plain autograd.grad -------------------------------------

@pytest.mark.parametrize("batched", [False, True])
def test_loss_grads_are_each_losss_own(batched):
    model, losses, groups, head = setup()
    params = [*groups["a"], *head]
    expected = [plain(losses[k], params) for k in ("fused", "a", "b")]
    got = loss_grads([losses["fused"], losses["a"], losses["b"]], params, batched)
    assert len(got) == 3
    assert any(g is None for g in got[2])  # L_u^b does not reach encoder a
    for g, e in zip(got, expected):
        torch.testing.assert_close(torch.cat([torch.zeros(p.numel()) if x is None else x.reshape(-1)
                                              for x, p in zip(g, params)]), e, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("batched", [False, True])
def test_loss_grads_free_the_graph_unless_retained(batched):
    _, losses, groups, _ = setup()
    loss_grads([losses["fused"]], groups["a"], batched, retain_graph=True)
    loss_grads([losses["fused"]], groups["a"], batched)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        losses["fused"].backward()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scheme", ["two-pass", "batched", "separate"])
def test_schemes_give_each_groups_shared_and_own_gradients(scheme, dtype):
    model, losses, groups, head = setup(dtype)
    layout = GradLayout(groups)
    expected = torch.stack([torch.cat([plain(losses["fused"], groups[m]) for m in MODALITIES]),
                            torch.cat([plain(losses[m], groups[m]) for m in MODALITIES])])
    expected_head = [plain(sum(losses.values()), [p]).view_as(p) for p in head]
    own = {m: losses[m] for m in MODALITIES}
    if scheme == "separate":
        got = separate_grads(losses["fused"], own, layout)
        backward_except(sum(losses.values()), layout.params)  # the graph is kept for this final pass
        got_head = [p.grad for p in head]
    else:
        got, got_head = two_pass_grads(losses["fused"], own, layout, head, batched=scheme == "batched")
    assert got.shape == (2, sum(layout.sizes)) and got.dtype == dtype
    tol = {"rtol": 1e-6, "atol": 1e-8} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-14}
    torch.testing.assert_close(got, expected, **tol)
    for g, e in zip(got_head, expected_head):
        torch.testing.assert_close(g, e, **tol)
    assert all(p.grad is None for p in layout.params)  # nothing written to the encoders


def test_backward_except_leaves_the_given_gradients_alone():
    model, losses, groups, head = setup()
    kept = torch.full_like(groups["a"][0], 3.0)
    groups["a"][0].grad = kept
    backward_except(sum(losses.values()), groups["a"])
    assert groups["a"][0].grad is kept and all(p.grad is None for p in groups["a"][1:])
    assert all(p.grad is not None for p in [*groups["b"], *head])


def test_accumulate_adds_and_skips_none():
    p, q = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    accumulate([p, q], [torch.ones(2), None])
    accumulate([p, q], [torch.full((2,), 2.0), None])
    assert p.grad.tolist() == [3.0, 3.0] and q.grad is None
