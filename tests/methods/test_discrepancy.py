"""The shared discrepancy ratio: summed true-class scores, ratios, DDP reduction order."""
import math

import pytest
import torch

import mmlib as mm
from mmlib.methods.base import TrainState
from mmlib.methods.discrepancy import EPS, DiscrepancyMonitor, batch_ratios, discrepancy_ratios, true_class_scores


def test_scores_hand_computed():
    # audio: sample 0 certain of class 0, sample 1 uniform over 2 classes; visual: uniform throughout
    uni = {"audio": torch.tensor([[100.0, 0.0], [0.0, 0.0]]), "visual": torch.zeros(2, 2)}
    s = true_class_scores(uni, torch.tensor([0, 1]), ("audio", "visual"))
    assert s.tolist() == pytest.approx([1.0 + 0.5, 0.5 + 0.5])


def test_scores_are_sums_not_means_and_match_a_loop():
    g = torch.Generator().manual_seed(0)
    uni = {m: torch.randn(37, 5, generator=g) for m in ("a", "b", "c")}
    y = torch.randint(0, 5, (37,), generator=g)
    s = true_class_scores(uni, y, ("a", "b", "c"))
    loop = [sum(torch.softmax(uni[m][i], 0)[y[i]].item() for i in range(37)) for m in ("a", "b", "c")]
    assert s.tolist() == pytest.approx(loop, rel=1e-5)


def test_scores_single_class_batch():
    uni = {"a": torch.tensor([[2.0, 0.0, 0.0]] * 4), "b": torch.tensor([[0.0, 2.0, 0.0]] * 4)}
    s = true_class_scores(uni, torch.zeros(4, dtype=torch.long), ("a", "b"))
    pa, pb = math.exp(2) / (math.exp(2) + 2), 1 / (math.exp(2) + 2)
    assert s.tolist() == pytest.approx([4 * pa, 4 * pb], rel=1e-6)
    rho = discrepancy_ratios(s)
    assert rho.tolist() == pytest.approx([pa / pb, pb / pa], rel=1e-5)


def test_scores_do_not_track_gradients():
    logits = torch.randn(3, 4, requires_grad=True)
    s = true_class_scores({"a": logits, "b": logits * 2}, torch.tensor([0, 1, 2]), ("a", "b"))
    assert not s.requires_grad


def test_two_modality_ratio_is_the_papers():
    rho = discrepancy_ratios(torch.tensor([3.0, 1.5]))
    assert rho.tolist() == pytest.approx([2.0, 0.5])


def test_equal_scores_give_rho_one():
    assert discrepancy_ratios(torch.tensor([2.5, 2.5, 2.5])).tolist() == pytest.approx([1.0] * 3)


def test_three_modalities_divide_by_the_mean_of_the_others():
    rho = discrepancy_ratios(torch.tensor([4.0, 2.0, 2.0]))
    assert rho.tolist() == pytest.approx([2.0, 2 / 3, 2 / 3])


def test_zero_scores_are_guarded():
    assert discrepancy_ratios(torch.zeros(2)).tolist() == [0.0, 0.0]
    rho = discrepancy_ratios(torch.tensor([1.0, 0.0]))
    assert torch.isfinite(rho).all()
    assert rho.tolist() == pytest.approx([1.0 / EPS, 0.0])


def test_lowest_score_is_never_dominant():
    g = torch.Generator().manual_seed(1)
    for m in (2, 3, 5):
        for _ in range(50):
            s = torch.rand(m, generator=g) * 10
            assert discrepancy_ratios(s)[s.argmin()] <= 1.0 + 1e-6


def test_one_modality_is_an_error():
    with pytest.raises(ValueError, match="at least two"):
        discrepancy_ratios(torch.tensor([1.0]))


class TwoRankState(TrainState):
    """Pretends another rank holds scores (1, 3): all_reduce adds them."""

    def all_reduce(self, tensor):
        tensor += torch.tensor([1.0, 3.0])
        return tensor


def test_scores_are_reduced_before_the_ratio():
    state = TwoRankState(model=torch.nn.Linear(1, 1), optimizer=None, modalities=("a", "b"), num_classes=2,
                         num_epochs=1, device=torch.device("cpu"), generator=torch.Generator())
    uni = {"a": torch.tensor([[100.0, 0.0]] * 3), "b": torch.zeros(3, 2)}  # local scores (3, 1.5)
    rho = batch_ratios(state, uni, torch.zeros(3, dtype=torch.long))
    assert rho["a"] == pytest.approx((3 + 1) / (1.5 + 3))  # not 3 / 1.5, the local ratio
    assert rho["b"] == pytest.approx((1.5 + 3) / (3 + 1))


def test_the_monitor_is_joint_training_plus_a_log(make_data):
    data = make_data()
    results = []
    for methods in ([], [DiscrepancyMonitor()]):
        mm.seed_everything(0)
        results.append(mm.fit(mm.build_model(data), data, methods, num_epochs=2, batch_size=12))
    assert all(torch.equal(a, b) for a, b in zip(results[0].model.parameters(), results[1].model.parameters()))
    assert not results[0].records
    assert {r["name"] for r in results[1].records} == {"rho/a", "rho/b"}
