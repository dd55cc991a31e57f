"""Metrics on hand-made logits, evaluate / predict, and linear probes."""
import pytest
import torch
from torch import nn

import mmlib as mm
from mmlib.evaluate import classification_metrics, evaluate, evaluate_runs, linear_probe, predict, probe_all
from mmlib.models.encoders import MLPEncoder
from mmlib.models.net import MultimodalNet


# s3 is class 2 but predicted 1 with high confidence
LOGITS = torch.tensor([[2.0, 0, 0], [0, 2, 0], [0, 0, 2], [0, 3, 0]])
Y = torch.tensor([0, 1, 2, 2])


def test_classification_metrics_by_hand():
    res = classification_metrics(LOGITS, Y, 3)
    assert res["acc"] == pytest.approx(3 / 4)
    # F1: class 0 -> 1; class 1: P=1/2, R=1 -> 2/3; class 2: P=1, R=1/2 -> 2/3
    assert res["f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)
    # AP (softmax scores): class 0 ranks its positive first -> 1; class 1: s3 (0.91) above
    # s1 (0.79) -> 1/2; class 2: s2 first (P=1), s3 last of four (P=2/4) -> 3/4
    assert res["map"] == pytest.approx((1 + 0.5 + 0.75) / 3)
    assert set(res) == {"acc", "f1", "map"}
    assert all(isinstance(v, float) for v in res.values())


def test_metrics_are_invariant_to_logit_shift():
    a = classification_metrics(LOGITS, Y, 3)
    b = classification_metrics(LOGITS + 7.0, Y, 3)
    assert a == pytest.approx(b)


def test_perfect_predictions_give_ones():
    res = classification_metrics(torch.eye(3) * 4, torch.arange(3), 3)
    assert res == {"acc": 1.0, "f1": 1.0, "map": 1.0}


def test_map_skips_classes_absent_from_the_labels():
    res = classification_metrics(torch.eye(4)[:3] * 5, torch.arange(3), 4)
    assert res["acc"] == 1.0 and res["map"] == 1.0


@pytest.mark.parametrize("case", range(60))
def test_f1_and_map_equal_scikit_learn_bit_for_bit(case):
    """The fast metrics against scikit-learn itself: ties in the scores, absent classes, few classes."""
    import numpy as np
    from sklearn.metrics import average_precision_score, f1_score

    rng = np.random.default_rng(case)
    n, c = int(rng.integers(5, 700)), int(rng.integers(2, 12))
    y = rng.integers(0, max(2, c - int(rng.integers(0, 3))), n)  # sometimes the last classes never occur
    logits = torch.from_numpy(rng.normal(size=(n, c)) * rng.choice([0.3, 3.0]))
    if case % 3 == 0:  # coarse scores: many ties
        logits = torch.round(logits)
    if case % 5 == 0:  # mostly one predicted class
        logits[:, 0] += 2.0
    got = classification_metrics(logits.float(), torch.from_numpy(y), c)
    prob = torch.softmax(logits.float().double(), 1).numpy()
    pred = logits.float().argmax(1).numpy()
    present = np.eye(c)[y].sum(0) > 0
    assert got["f1"] == float(f1_score(y, pred, average="macro", zero_division=0))
    assert got["map"] == float(average_precision_score(np.eye(c)[y][:, present], prob[:, present], average="macro"))


def test_map_of_a_single_present_class_is_scikit_learns():
    y = torch.zeros(6, dtype=torch.long)
    logits = torch.tensor([[2.0, 0.0], [1.0, 0.5], [0.0, 1.0], [0.2, 0.1], [3.0, 3.0], [0.0, 0.0]])
    assert classification_metrics(logits, y, 2)["map"] == 1.0


def test_f1_skips_classes_absent_from_labels_and_predictions():
    res = classification_metrics(torch.eye(4)[:3] * 5, torch.arange(3), 4)
    assert res["f1"] == 1.0


# --- predict / evaluate -------------------------------------------------------------------

@pytest.fixture
def data(make_data):
    return make_data(n=90)


@pytest.fixture
def model(data):
    torch.manual_seed(0)
    return mm.build_model(data)


def test_predict_concatenates_batches_in_order(model, data):
    res = predict(model, data.test, batch_size=4)
    assert torch.equal(res["y"], data.test.y)
    assert res["logits"].shape == (len(data.test), 3)
    model.eval()
    with torch.no_grad():
        out = model(data.test.inputs)
    assert torch.allclose(res["logits"], out.logits, atol=1e-6)
    for m in data.modalities:
        assert torch.allclose(res["uni_logits"][m], out.uni_logits[m], atol=1e-6)
        assert torch.allclose(res["feats"][m], out.feats[m], atol=1e-6)


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_reports_fused_and_per_modality_metrics_and_restores_mode(model, data, training):
    model.train(training)
    res = evaluate(model, data.test, data.num_classes)
    assert model.training is training
    assert set(res) == {"acc", "f1", "map", "acc/a", "acc/b"}
    model.eval()
    with torch.no_grad():
        out = model(data.test.inputs)
    y = data.test.y
    assert res["acc"] == pytest.approx(float((out.logits.argmax(1) == y).float().mean()))
    for m in data.modalities:
        assert res[f"acc/{m}"] == pytest.approx(float((out.uni_logits[m].argmax(1) == y).float().mean()))
    assert res == pytest.approx({**classification_metrics(out.logits, y, 3),
                                 **{k: v for k, v in res.items() if "/" in k}})


def test_evaluate_infers_num_classes(model, data):
    assert evaluate(model, data.test) == pytest.approx(evaluate(model, data.test, 3))


# --- linear probes -------------------------------------------------------------------------

def identity_like_model(data):
    """Encoders map x to [relu(x), relu(-x)]: a linear code of x, so a probe sees x itself."""
    encs = {}
    for m in data.modalities:
        d = data.input_shape(m)[0]
        enc = MLPEncoder(in_dim=d, hidden=2 * d, out_dim=2 * d)
        with torch.no_grad():
            enc.net[0].weight.copy_(torch.cat([torch.eye(d), -torch.eye(d)]))
            enc.net[0].bias.zero_()
            enc.net[3].weight.copy_(torch.eye(2 * d))
            enc.net[3].bias.zero_()
        encs[m] = enc
    head = mm.FUSIONS.create("concat", dims={m: e.out_dim for m, e in encs.items()}, num_classes=data.num_classes)
    return MultimodalNet(nn.ModuleDict(encs), head)


def test_probe_of_identity_encoder_on_separable_data_is_accurate(make_data):
    data = make_data(n=150, strengths={"a": 3.0, "b": 3.0})
    res = linear_probe(identity_like_model(data), data, "a")
    assert set(res) == {"val", "test", "C"}
    assert res["C"] in (0.01, 0.1, 1.0, 10.0)
    assert res["test"] > 0.9 and res["val"] > 0.9


def test_probe_on_noise_is_near_chance(make_data):
    data = make_data(n=300, strengths={"a": 0.0, "b": 0.0})  # inputs independent of labels
    res = linear_probe(identity_like_model(data), data, "b")
    assert res["test"] < 0.55  # chance is 1/3 (60 test samples)


def test_probe_uses_the_given_regularisation_grid(make_data):
    data = make_data(n=90)
    assert linear_probe(identity_like_model(data), data, "a", Cs=(0.5,))["C"] == 0.5


def test_probe_unknown_modality_is_an_error(make_data):
    data = make_data()
    with pytest.raises(ValueError, match=r"linear_probe: unknown modality 'c'; the model has \('a', 'b'\)"):
        linear_probe(identity_like_model(data), data, "c")


def test_probe_all_keys_and_values(make_data):
    data = make_data(modalities=("a", "b", "c"), n=90)
    model = identity_like_model(data)
    res = probe_all(model, data)
    assert set(res) == {"probe/a", "probe/b", "probe/c"}
    assert res["probe/b"] == linear_probe(model, data, "b")["test"]
    assert all(0.0 <= v <= 1.0 for v in res.values())


def test_evaluate_runs_adds_each_models_metrics_on_another_split(make_data):
    data = make_data(n=45)
    runs = mm.run(data, None, seeds=[0, 1], num_epochs=2, batch_size=8, probes=False)
    part = data.test.subset(torch.arange(5))
    table = evaluate_runs(runs, part, "first5", data.num_classes)
    assert list(table["seed"]) == [0, 1] and table["acc"].equals(runs.table["acc"])
    for res, (_, row) in zip(runs.results, table.iterrows()):
        assert row["first5/acc"] == evaluate(res.model, part, data.num_classes)["acc"]
    kept_nothing = mm.run(data, None, seeds=[0], num_epochs=1, batch_size=8, probes=False, keep=False)
    with pytest.raises(ValueError, match="keep=True"):
        evaluate_runs(kept_nothing, part, "first5")
