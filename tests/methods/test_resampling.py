"""Sample- and modality-level re-sampling: copy counts by hand, the copy split and feature masking,
valuation from the training forward and from an eval pass, warm-up, reproducible epochs and resume."""
import math

import pytest
import torch

import mmlib as mm
from mmlib.contribution import coalition_values, shapley, value_split
from mmlib.methods.base import TrainState
from mmlib.methods.resampling import (ContributionMonitor, CopySplit, ModalityResampling, SampleResampling,
                                      modality_copies, sample_copies)
from tests.helpers import make_tiny_data


def tiny_data(n=60, modalities=("a", "b")):
    """``a`` strongly informative, ``b`` weakly: joint training leans on ``a``."""
    return make_tiny_data(modalities, n=n, strengths={m: 3.0 if i == 0 else 0.6 for i, m in enumerate(modalities)})


def fit(data, method, num_epochs=3, seed=0, **kw):
    mm.seed_everything(seed)
    return mm.fit(mm.build_model(data), data, [method], num_epochs=num_epochs, seed=seed,
                  **{"batch_size": 8, "lr": 0.05, "optimizer": "sgd", **kw})


def logged(res, name):
    return [r["value"] for r in res.records if r["name"] == name]


# --- the copy counts ------------------------------------------------------------------------

def test_sample_copies_on_the_two_modality_support_are_two_times_one_minus_phi():
    phi = torch.tensor([[-0.5, 0.0], [0.5, 1.0], [1.5, -0.5]], dtype=torch.float64)
    assert sample_copies(phi).tolist() == [[3, 2], [1, 0], [0, 3]]


def test_sample_copies_thresholds_and_closed_boundaries():
    phi = torch.tensor([[0.99, 0.41], [0.4, -0.09], [-0.1, -0.11], [1.0, 3.0]], dtype=torch.float64)
    assert sample_copies(phi).tolist() == [[1, 1], [2, 2], [3, 3], [0, 0]]


def test_three_modalities_all_right_get_no_copies():
    correct = torch.ones(1, 8, dtype=torch.bool)
    correct[0, 0] = False
    phi = shapley(coalition_values(correct))  # exactly 1 each: no 0.999... below the threshold
    assert sample_copies(phi).tolist() == [[0, 0, 0]]


@pytest.mark.parametrize("mapping, alpha, expected", [
    ("linear", 1.0, 400),  # gaps -0.3, 0.3: d = 2/3 * 0.6 = 0.4
    ("linear", 0.5, 200),
    ("tanh", 1.0, math.floor(math.tanh(0.4) * 1000)),   # 379
    ("square", 1.0, math.floor(0.4 ** 1.5 * 1000)),     # 252
    ("square", 2.0, math.floor(2 * 0.4 ** 1.5 * 1000)),  # alpha outside the power, as the official code
])
def test_modality_copies_by_hand(mapping, alpha, expected):
    weak, n = modality_copies(torch.tensor([1.3, 0.7], dtype=torch.float64), 1000, alpha, mapping)
    assert (weak, n) == (1, expected)


def test_modality_copies_weaker_is_the_largest_gap_and_equal_contributions_give_none():
    assert modality_copies(torch.tensor([0.6, 1.4]), 100) == (0, 53)  # d = 2/3 * 0.8
    assert modality_copies(torch.tensor([1.2, 1.0, 0.8]), 300) == (2, 80)  # M = 3: max gap - min gap
    assert modality_copies(torch.tensor([1.0, 1.0]), 500)[1] == 0
    with pytest.raises(ValueError, match="mapping"):
        modality_copies(torch.tensor([1.0, 1.0]), 5, mapping="cubic")


def test_sample_plan_lists_each_copy_once_with_its_modality():
    method = SampleResampling()
    method._phi = torch.tensor([[1.5, 0.5], [0.5, 1.5], [0.0, 0.0], [1.0, 1.0], [-0.5, 0.5]], dtype=torch.float64)
    method._valued = torch.ones(5, dtype=torch.bool)
    source, keep = method.plan(None, torch.arange(5))
    # "a": s = 0, 1, 2, 0, 3;  "b": s = 1, 0, 2, 0, 1
    assert source.tolist() == [1, 2, 2, 4, 4, 4, 0, 2, 2, 4]
    assert keep.tolist() == [0] * 6 + [1] * 4


# --- the copy split and the masking ---------------------------------------------------------

def test_copy_split_rows_and_keep_mask():
    data = tiny_data(n=20)
    split = CopySplit(data.train, torch.tensor([3, 0]), torch.tensor([1, 0]), ("a", "b"))
    n = len(data.train)
    assert len(split) == n + 2
    batch = split.batch(torch.tensor([n + 1, 5, n]))
    assert batch["index"].tolist() == [0, 5, 3]
    assert torch.equal(batch["inputs"]["a"][2], data.train.inputs["a"][3])
    assert batch["keep"].tolist() == [[True, False], [True, True], [False, True]]
    with pytest.raises(ValueError, match="one entry per copy"):
        CopySplit(data.train, torch.tensor([1]), torch.tensor([0, 1]), ("a", "b"))


def test_a_copy_trains_only_its_kept_modality():
    data = tiny_data(n=20)
    mm.seed_everything(0)
    model = mm.build_model(data).train()
    method = SampleResampling()
    state = TrainState(model=model, optimizer=None, modalities=("a", "b"), num_classes=3, num_epochs=1,
                       device=torch.device("cpu"), generator=torch.Generator().manual_seed(0), data=data)
    batch = CopySplit(data.train, torch.arange(4), torch.zeros(4, dtype=torch.long), ("a", "b")).batch(
        torch.arange(len(data.train), len(data.train) + 4))  # four copies keeping "a"
    method.on_train_batch_start(state, batch)
    out = model(batch["inputs"], feature_hook=lambda f: method.on_features(state, f))
    torch.nn.functional.cross_entropy(out.logits, batch["y"]).backward()
    grad = lambda m: sum(float(p.grad.abs().sum()) for p in model.encoders[m].parameters())  # noqa: E731
    assert grad("a") > 0 and grad("b") == 0
    fc = model.head.fc.weight.grad  # the head's columns of "b" see a zero input
    assert fc[:, :model.head.dims["a"]].abs().sum() > 0 and fc[:, model.head.dims["a"]:].abs().sum() == 0


def test_originals_are_not_masked():
    method = SampleResampling()
    feats = {"a": torch.ones(2, 3), "b": torch.ones(2, 3)}
    method._keep = torch.ones(2, 2, dtype=torch.bool)
    assert method.on_features(None, feats) is feats
    method._keep = None
    assert method.on_features(None, feats) is feats


# --- valuation inside fit -------------------------------------------------------------------

def test_eval_features_equal_a_valuation_of_the_trained_model(make_data):
    data = make_data(kind="cnn", n=40)  # BatchNorm: eval mode matters
    monitor = ContributionMonitor(features="eval")
    res = fit(data, monitor, num_epochs=1)  # one epoch: the selected model is the valued one
    phi, _ = value_split(res.model, data.train)
    assert torch.equal(monitor.phi, phi) and monitor.valued.all()
    assert logged(res, "phi/a") == [pytest.approx(float(phi[:, 0].mean()))]


def test_epoch_features_value_each_original_once_from_its_own_forward():
    # lr 1e-30 (below every weight's rounding step: the weights never change) and no BatchNorm:
    # the training forward gives the same features as an eval pass,
    # so the shuffled, copy-laden epoch must land every sample's phi on its own row
    data = tiny_data(n=50)
    method = SampleResampling(warmup=1)
    res = fit(data, method, num_epochs=2, lr=1e-30, momentum=0.0, weight_decay=0.0)
    assert logged(res, "epoch_size")[1] > len(data.train)  # epoch 1 had copies, which are not valued
    phi, _ = value_split(res.model, data.train)
    assert torch.equal(method.phi, phi) and method.valued.all()
    assert torch.equal(method._counts, torch.ones(len(data.train), dtype=torch.float64))  # copies skipped


def test_no_copies_during_warmup_then_the_planned_number():
    data = tiny_data()
    method = SampleResampling(warmup=2)
    res = fit(data, method, num_epochs=4)
    sizes = logged(res, "epoch_size")
    n = len(data.train)
    assert sizes[:2] == [n, n] and all(s > n for s in sizes[2:])
    copies = [a + b for a, b in zip(logged(res, "copies/a"), logged(res, "copies/b"))]
    assert [s - n for s in sizes] == copies


@pytest.mark.parametrize("fusion", ["concat", "film"])
def test_three_modalities_train_their_copies(fusion):
    data = tiny_data(n=90, modalities=("a", "b", "c"))
    method = SampleResampling(warmup=1)
    mm.seed_everything(0)
    res = mm.fit(mm.build_model(data, fusion=fusion), data, [method], num_epochs=2, batch_size=8, lr=0.05,
                 optimizer="sgd")
    assert all(torch.isfinite(p).all() for p in res.model.parameters())
    copies = [logged(res, f"copies/{m}")[1] for m in "abc"]
    assert logged(res, "epoch_size")[1] == len(data.train) + sum(copies) and min(copies) > 0
    assert torch.allclose(method.phi.sum(1)[method.valued], method.phi.sum(1)[method.valued].round())  # 0 or 3


def test_modality_level_values_only_its_subset_without_replacement_in_eval_mode():
    data = tiny_data(n=100)
    method = ModalityResampling(ratio=0.25, warmup=1, features="eval")
    res = fit(data, method, num_epochs=2)
    n = len(data.train)
    z = method.subset(1, n)
    assert len(z) == len(set(z.tolist())) == math.floor(0.25 * n)
    assert torch.equal(method.valued.nonzero().flatten(), z)
    assert not torch.equal(method.subset(0, n), z)  # a new subset each epoch
    copies = {m: logged(res, f"copies/{m}") for m in "ab"}
    assert copies["a"][0] == copies["b"][0] == 0  # epoch 0: warm-up
    assert (copies["a"][1] == 0) != (copies["b"][1] == 0)  # one modality only


def test_re_sampled_epochs_repeat_from_the_seed_and_differ_across_seeds():
    data = tiny_data()
    runs = [fit(data, SampleResampling(warmup=1), num_epochs=3, seed=s) for s in (0, 0, 1)]
    assert runs[0].records == runs[1].records
    for p, q in zip(runs[0].model.parameters(), runs[1].model.parameters()):
        assert torch.equal(p, q)
    assert runs[0].records != runs[2].records


def test_modality_copies_are_drawn_from_the_seed():
    data = tiny_data(n=100)
    plans = []
    for seed in (0, 0, 1):
        method = ModalityResampling(warmup=2)  # after one epoch both modalities still look alike
        fit(data, method, num_epochs=2, seed=seed)
        plans.append(method.state_dict()["plan"])
    assert plans[0] is not None and len(plans[0][0]) > 0
    assert torch.equal(plans[0][0], plans[1][0]) and not torch.equal(plans[0][0], plans[2][0])


@pytest.mark.parametrize("make", [lambda: SampleResampling(warmup=1), lambda: ModalityResampling(warmup=1)])
def test_resume_continues_like_an_uninterrupted_run(tmp_path, make):
    data, ckpt = tiny_data(), tmp_path / "run.pt"
    full = fit(data, make(), num_epochs=4)
    fit(data, make(), num_epochs=2, checkpoint=ckpt)
    resumed = fit(data, make(), num_epochs=4, checkpoint=ckpt)
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    assert logged(resumed, "epoch_size") == logged(full, "epoch_size")


# --- arguments ------------------------------------------------------------------------------

@pytest.mark.parametrize("make, match", [
    (lambda: SampleResampling(warmup=-1), "warmup"),
    (lambda: SampleResampling(warmup=True), "warmup"),
    (lambda: SampleResampling(features="train"), "features"),
    (lambda: ModalityResampling(ratio=0.0), "ratio"),
    (lambda: ModalityResampling(alpha=-1.0), "alpha"),
    (lambda: ModalityResampling(mapping="cubic"), "mapping"),
])
def test_bad_arguments_are_named(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_registered_and_repr_shows_hyperparameters_only():
    assert isinstance(mm.METHODS.create("sample-resampling"), SampleResampling)
    method = mm.METHODS.create("modality-resampling", alpha=0.5)
    assert repr(method) == "ModalityResampling(features='epoch', warmup=5, alpha=0.5, ratio=0.2, mapping='linear')"
