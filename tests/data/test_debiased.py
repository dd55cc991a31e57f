"""The debiased evaluation split: exactly the samples the dominant modality's reference classifier misses."""
import numpy as np
import pytest

from mmlib.data.debiased import debiased_split, reference_predictions
from tests.helpers import make_tiny_data


def data_with_weak():
    data = make_tiny_data(("a", "b"), n=150, strengths={"a": 0.4, "b": 0.9}, num_classes=4)
    data.weak = "a"
    return data


def test_split_is_the_reference_classifiers_errors_with_parent_ids():
    data = data_with_weak()
    pred = reference_predictions(data, "b", "test")
    wrong = np.flatnonzero(pred != data.test.y.numpy())
    assert 0 < len(wrong) < len(data.test)
    part = debiased_split(data)  # dominant: the modality that is not data.weak
    assert part.index.tolist() == data.test.index[wrong].tolist()
    assert (part.y.numpy() != pred[wrong]).all()
    assert np.array_equal(part.inputs["a"].numpy(), data.test.inputs["a"][wrong].numpy())


def test_the_reference_is_chosen_on_validation_and_deterministic():
    data = data_with_weak()
    assert np.array_equal(reference_predictions(data, "a"), reference_predictions(data, "a"))
    assert len(debiased_split(data, dominant="a")) > len(debiased_split(data, dominant="b"))  # a is weaker


def test_bad_arguments_are_named():
    data = data_with_weak()
    with pytest.raises(ValueError, match="modality 'c'"):
        debiased_split(data, dominant="c")
    with pytest.raises(ValueError, match="split"):
        debiased_split(data, split="dev")
    data.weak = None
    with pytest.raises(ValueError, match="dominant="):
        debiased_split(data)
