"""Shapley contributions: the paper's two-modality table, efficiency, brute force for M modalities,
the zero-feature convention through a real head, the split valuation and the report."""
import itertools
import math

import pandas as pd
import pytest
import torch

import mmlib as mm
from mmlib.contribution import (coalition_correct, coalition_values, coalitions, report, report_runs, shapley,
                                summarize, value_features, value_split)
from mmlib.models.fusion import ConcatFusion

# (full correct, audio-only correct, visual-only correct) -> (phi_a, phi_v), the spec's table
TABLE = [((1, 1, 1), (1.0, 1.0)), ((1, 1, 0), (1.5, 0.5)), ((1, 0, 1), (0.5, 1.5)), ((1, 0, 0), (1.0, 1.0)),
         ((0, 1, 1), (0.0, 0.0)), ((0, 1, 0), (0.5, -0.5)), ((0, 0, 1), (-0.5, 0.5)), ((0, 0, 0), (0.0, 0.0))]


def correct_matrix(patterns):
    """(B, 4) bool with columns none, a, v, a+v (bit masks 0, 1, 2, 3)."""
    return torch.tensor([[False, bool(a), bool(v), bool(full)] for full, a, v in patterns])


def test_two_modality_table_for_all_eight_patterns():
    phi = shapley(coalition_values(correct_matrix([p for p, _ in TABLE])))
    assert phi.tolist() == [list(expected) for _, expected in TABLE]


def test_coalitions_are_indexed_by_bit_mask_and_values_scale_with_size():
    assert coalitions(("a", "v", "t")) == [(), ("a",), ("v",), ("a", "v"), ("t",), ("a", "t"), ("v", "t"),
                                           ("a", "v", "t")]
    values = coalition_values(torch.ones(1, 8, dtype=torch.bool))
    assert values.tolist() == [[0, 1, 1, 2, 1, 2, 2, 3]]


def brute_force(values_row, m):
    """Average marginal contribution over all m! orders (the definition, independent of the weights)."""
    phi = [0.0] * m
    for order in itertools.permutations(range(m)):
        mask = 0
        for player in order:
            phi[player] += values_row[mask | 1 << player] - values_row[mask]
            mask |= 1 << player
    return [p / math.factorial(m) for p in phi]


@pytest.mark.parametrize("m", [2, 3, 4])
def test_m_modalities_match_brute_force_and_are_efficient(m):
    g = torch.Generator().manual_seed(m)
    correct = torch.rand(64, 2 ** m, generator=g) < 0.6
    correct[:, 0] = False
    values = coalition_values(correct)
    phi = shapley(values)
    for row, got in zip(values.tolist(), phi.tolist()):
        assert got == pytest.approx(brute_force(row, m), abs=1e-12)
    assert torch.allclose(phi.sum(1), values[:, -1])  # efficiency: sum phi = v(M) (v(empty) = 0)
    assert phi.sum(1).max() <= m + 1e-12


def test_three_modalities_all_correct_is_one_each_and_a_lone_right_modality_leads():
    correct = torch.ones(1, 8, dtype=torch.bool)
    correct[0, 0] = False
    assert shapley(coalition_values(correct)).tolist() == [[1.0, 1.0, 1.0]]
    only_a = torch.zeros(1, 8, dtype=torch.bool)
    only_a[0, [1, 3, 5, 7]] = True  # exactly the coalitions that contain "a" are right
    phi = shapley(coalition_values(only_a))[0]
    assert phi[0] > 1 and phi[1] == phi[2] < 1 and phi.sum() == 3


def test_bad_value_shapes_are_named():
    with pytest.raises(ValueError, match=r"\(B, 2\^M\)"):
        shapley(torch.zeros(3, 3))


def head_with(c: float) -> ConcatFusion:
    """Two classes, 1-d features: class-0 logit = z_a + z_v + c, class-1 logit = 0."""
    head = ConcatFusion({"a": 1, "v": 1}, num_classes=2)
    with torch.no_grad():
        head.fc.weight.copy_(torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
        head.fc.bias.copy_(torch.tensor([c, 0.0]))
    return head


# (z_a, z_v, c) that give each pattern of TABLE with label 0; pattern 4 (full right, both alone wrong)
# and 5 need the whole bias c in each coalition: with the b/2 of uni_logits they would differ
CASES = [(1, 1, 0), (2, -1, 0), (-1, 2, 0), (1, 1, -1.5), (-1, -1, 1.5), (1, -2, 0), (-2, 1, 0), (-1, -1, 0)]


@pytest.mark.parametrize("case, expected", list(zip(CASES, TABLE)))
def test_a_real_concat_head_with_zeroed_features_gives_the_table(case, expected):
    z_a, z_v, c = case
    head = head_with(c)
    feats = {"a": torch.tensor([[float(z_a)]]), "v": torch.tensor([[float(z_v)]])}
    phi, correct = value_features(head, feats, torch.tensor([0]), ("a", "v"))
    (full, a, v), phi_expected = expected
    assert correct[0].tolist() == [False, bool(a), bool(v), bool(full)]
    assert phi[0].tolist() == list(phi_expected)


def test_the_bias_is_not_split_as_in_uni_logits():
    head = head_with(-1.5)
    feats = {"a": torch.tensor([[1.0]]), "v": torch.tensor([[1.0]])}
    uni = head.unimodal(feats)["a"]  # z_a + c / 2 = 0.25 > 0: right with half the bias
    assert uni.argmax(1).item() == 0
    assert not coalition_correct(head, feats, torch.tensor([0]), ("a", "v"))[0, 1]  # z_a + c < 0: wrong


def test_value_split_is_eval_mode_one_pass_and_restores_training_mode(make_data):
    data = make_data(kind="cnn", n=30)  # BatchNorm: train and eval features differ
    mm.seed_everything(0)
    model = mm.build_model(data).train()
    phi, correct = value_split(model, data.train, batch_size=7)
    assert model.training
    model.eval()
    with torch.no_grad():
        feats = model.encode(data.train.inputs)
    ref, ref_correct = value_features(model.head, feats, data.train.y, model.modalities)
    assert torch.equal(phi, ref) and torch.equal(correct, ref_correct)
    assert phi.shape == (len(data.train), 2) and phi.dtype == torch.float64


def test_summary_counts_shares_by_hand():
    table = pd.DataFrame({"phi/a": [1.5, 1.0, 0.5, -0.5], "phi/v": [0.5, 1.0, 1.5, 0.5],
                          "correct/a+v": [True, True, True, False],
                          "top": ["a", "tie", "v", "v"]})
    row = summarize(table, ("a", "v")).iloc[0]
    assert row["samples"] == 4 and row["acc"] == 75.0
    assert row["phi/a"] == pytest.approx(0.625) and row["phi/v"] == pytest.approx(0.875)
    assert row["phi<=0/a"] == 25.0 and row["phi<=0/v"] == 0.0
    assert (row["top/a"], row["top/v"], row["tie"]) == (25.0, 50.0, 25.0)


def test_report_table_and_runs(make_data):
    data = make_data(n=45)
    runs = mm.run(data, None, seeds=[0, 1], num_epochs=2, batch_size=8, probes=False)
    one = report(runs.results[0].model, data, "test")
    assert len(one.table) == len(data.test)
    assert list(one.table.columns) == ["index", "y", "phi/a", "phi/b", "correct/a", "correct/b", "correct/a+b", "top"]
    assert one.summary["acc"].iloc[0] == pytest.approx(100 * runs.table["acc"].iloc[0])  # full coalition = fused
    both = report_runs(runs, data, "test")
    assert list(both.summary.index) == [("joint", 0), ("joint", 1)]
    with pytest.raises(ValueError, match="split"):
        report(runs.results[0].model, data, "dev")
    other = make_data(n=45)
    other.name = "other"
    with pytest.raises(ValueError, match="dataset"):
        report_runs(runs, other)


def test_value_shares_by_hand_with_missing_values_as_zero():
    table = pd.DataFrame({"seed": [0, 0, 0, 0, 1, 1], "phi/a": [1.5, 1.0, 1.0, 0.5, 1.0, 1.0],
                          "phi/b": [0.5, 1.0, 1.0, 1.5, 1.0, 1.0]})
    shares = mm.contribution.value_shares(table, ("a", "b"), by=["seed"]).set_index(["seed", "modality", "phi"])
    assert shares.loc[(0, "a", 1.0), "share"] == 50.0 and shares.loc[(0, "a", 1.5), "share"] == 25.0
    assert shares.loc[(1, "a", 1.5), "share"] == 0.0 and shares.loc[(1, "b", 1.0), "share"] == 100.0
    assert shares.groupby(["seed", "modality"])["share"].sum().eq(100.0).all()


def test_over_seeds_formats_phi_and_shares():
    summary = pd.DataFrame({"label": ["j", "j", "s"], "seed": [0, 1, 0], "samples": [10, 10, 10],
                            "acc": [90.0, 80.0, 85.0], "phi/a": [1.2, 1.0, 1.1]}).set_index(["label", "seed"])
    text = mm.contribution.over_seeds(summary)
    assert text.loc["j", "phi/a"] == "1.10 ± 0.14" and text.loc["j", "acc"] == "85.0 ± 7.1"
    assert text.loc["s", "acc"] == "85.0 ± 0.0" and list(text["seeds"]) == [2, 1]
