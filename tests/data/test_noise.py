"""with_noise: a replaced or added modality holds label-free noise of the right shape and scale; input untouched."""
import pytest
import torch

from mmlib.data import with_noise
from tests.helpers import make_tiny_data


def data():
    d = make_tiny_data(("a", "b"), n=600, dim=5)
    d.weak = "b"
    return d


def state(d):
    return {(s, m): x.clone() for s, part in d.splits().items() for m, x in part.inputs.items()}


def test_replacing_keeps_the_dataset_given_and_shares_the_other_tensors():
    d = data()
    before = state(d)
    out = with_noise(d, "b")
    assert out.modalities == ("a", "b") and out.name == "tiny+noise" and out.weak is None
    for s, part in out.splits().items():
        src = d.splits()[s]
        assert part.inputs["a"] is src.inputs["a"] and part.y is src.y and part.index is src.index
        assert part.inputs["b"].shape == src.inputs["b"].shape
        assert not torch.equal(part.inputs["b"], src.inputs["b"])
    assert all(torch.equal(before[k], d.splits()[k[0]].inputs[k[1]]) for k in before)  # nothing changed in place
    assert d.modalities == ("a", "b") and d.name == "tiny"
    assert out.info["noise"] == {"modality": "b", "like": "b", "seed": 0}


def test_adding_a_third_modality_shaped_like_another():
    d = data()
    out = with_noise(d, "a", name="noise", seed=3)
    assert out.modalities == ("a", "b", "noise") and out.weak == "b"
    assert out.encoders["noise"] == d.encoders["a"]
    for s, part in out.splits().items():
        assert list(part.inputs) == ["a", "b", "noise"]
        assert part.inputs["a"] is d.splits()[s].inputs["a"]
        assert part.inputs["noise"].shape == d.splits()[s].inputs["a"].shape
    assert d.modalities == ("a", "b") and "noise" not in d.train.inputs


def test_noise_has_the_training_scale_per_element():
    d = data()
    d.train.inputs["b"] = d.train.inputs["b"] * torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0]) + 100.0
    out = with_noise(d, "b")
    x = d.train.inputs["b"]
    for part in out.splits().values():
        z = part.inputs["b"]
        tol = 5 * x.std(0) / len(z) ** 0.5
        assert ((z.mean(0) - x.mean(0)).abs() < tol).all()
        assert ((z.std(0) / x.std(0) - 1).abs() < 0.25).all()


def test_noise_ignores_the_labels_and_repeats_with_its_seed():
    d, shuffled = data(), data()
    for part in shuffled.splits().values():
        part.y = part.y[torch.randperm(len(part.y), generator=torch.Generator().manual_seed(1))]
    a, b = with_noise(d, "b", seed=4), with_noise(shuffled, "b", seed=4)
    assert all(torch.equal(a.splits()[s].inputs["b"], b.splits()[s].inputs["b"]) for s in ("train", "val", "test"))
    c = with_noise(d, "b", seed=5)
    assert not torch.equal(a.train.inputs["b"], c.train.inputs["b"])
    # no class information: the noise's class means differ by chance only (in std units), the data's do not
    def spread(x, y):
        means = torch.stack([x[y == k].mean(0) for k in range(3)])
        return ((means - x.mean(0)).abs() / x.std(0)).max()

    assert spread(a.train.inputs["b"], a.train.y) < 5 / (len(a.train) / 3) ** 0.5
    assert spread(d.train.inputs["b"], d.train.y) > 5 / (len(d.train) / 3) ** 0.5


@pytest.mark.parametrize("kwargs, error, match", [
    ({"modality": "c"}, ValueError, "unknown modality 'c'"),
    ({"modality": "a", "name": "b"}, ValueError, "already has a modality 'b'"),
    ({"modality": "a", "name": ""}, TypeError, "name must be"),
    ({"modality": "a", "seed": -1}, ValueError, "seed"),
])
def test_bad_input_is_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        with_noise(data(), **kwargs)
    with pytest.raises(TypeError, match="MultimodalDataset"):
        with_noise({"a": 1}, "a")
