"""Argument and input validation: the rules, then each entry point refusing bad input before any work."""
import math

import numpy as np
import pytest
import torch

import mmlib as mm
from mmlib import checks
from mmlib.methods.spec import make_methods
from mmlib.methods import Method
from mmlib.methods.ogm_ge import OGMGE
from mmlib.registry import DATASETS
from mmlib.train import resolve_methods


# --- the rules ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_check_int_accepts_python_and_numpy_integers(value):
    checks.check_int("num_epochs", value, low=1)


@pytest.mark.parametrize("value,kind,match", [
    (2.5, TypeError, r"num_epochs must be an integer >= 1, got 2\.5 \(float\)$"),
    ("3", TypeError, r"num_epochs must be an integer >= 1, got '3' \(str\); pass a number, not a string$"),
    (True, TypeError, r"num_epochs must be an integer >= 1, got True \(bool\)"),
    (None, TypeError, r"got None \(NoneType\)"),
    (0, ValueError, r"num_epochs must be >= 1, got 0$"),
])
def test_check_int_refuses_other_types_bools_and_values_below_the_bound(value, kind, match):
    with pytest.raises(kind, match=match):
        checks.check_int("num_epochs", value, low=1)


def test_check_int_none_ok_and_reason():
    checks.check_int("lr_step", None, low=1, none_ok=True)
    with pytest.raises(ValueError, match=r"lr_step must be None or >= 1, got 0"):
        checks.check_int("lr_step", 0, low=1, none_ok=True)
    with pytest.raises(ValueError, match=r"frame_size must be >= 8 \(the digits are 8x8\), got 7"):
        checks.check_int("frame_size", 7, low=8, why=" (the digits are 8x8)")


@pytest.mark.parametrize("value", [0.0, 0.5, 0, np.float32(0.9)])
def test_check_real_accepts_numbers_in_a_half_open_range(value):
    checks.check_real("momentum", value, low=0, high=1, high_open=True)


@pytest.mark.parametrize("value,kind,match", [
    (1.0, ValueError, r"momentum must be a finite number in \[0, 1\), got 1\.0"),
    (-0.1, ValueError, r"in \[0, 1\), got -0\.1"),
    (math.nan, ValueError, r"got nan"),
    (False, TypeError, r"momentum must be a real number in \[0, 1\), got False \(bool\)"),
    ([0.9], TypeError, r"got \[0\.9\] \(list\)"),
])
def test_check_real_refuses_bounds_nan_bools_and_non_numbers(value, kind, match):
    with pytest.raises(kind, match=match):
        checks.check_real("momentum", value, low=0, high=1, high_open=True)


def test_check_real_open_lower_bound_and_infinity():
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0, got 0"):
        checks.check_real("lr", 0, low=0, low_open=True)
    with pytest.raises(ValueError, match=r"lr must be a finite number > 0, got inf"):
        checks.check_real("lr", math.inf, low=0, low_open=True)


def test_a_number_written_as_text_gets_a_yaml_hint():
    with pytest.raises(TypeError, match=r"got '1e-3' \(str\); pass a number, not a string \(YAML reads 1e-3 as "
                                        r"text: write exponents with a dot, e.g. 1\.0e-3\)"):
        checks.check_real("lr", "1e-3", low=0, low_open=True)
    with pytest.raises(TypeError, match=r"got 'fast' \(str\)$"):
        checks.check_real("lr", "fast")


def test_check_choice_suggests_the_closest_name():
    checks.check_choice("optimizer", "sgd", ["sgd", "adam"])
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm'\. Did you mean 'adam'\? "
                                         r"Known optimizers: adam, sgd"):
        checks.check_choice("optimizer", "adamm", ["sgd", "adam"])
    with pytest.raises(ValueError, match=r"unknown optimizer None\. Known"):
        checks.check_choice("optimizer", None, ["sgd", "adam"])


def test_check_names_wraps_one_string_and_refuses_non_strings():
    assert checks.check_names("views", "fou", "['fou']") == ("fou",)
    assert checks.check_names("views", ["fac", "fou"], "['fou']") == ("fac", "fou")
    with pytest.raises(TypeError, match=r"views must be a list of names such as \['fou'\]; 3 is not a string"):
        checks.check_names("views", ["fou", 3], "['fou']")
    with pytest.raises(TypeError, match=r"views must be a list of names such as \['fou'\], got 3 \(int\)"):
        checks.check_names("views", 3, "['fou']")


@pytest.mark.parametrize("bad", [(0.5, 0.5), ("a", 0.5, 0.5), (0.7, 0.2, 0.2), (1.0, 0.0, 0.0), 0.6])
def test_check_split_needs_three_positive_fractions_summing_to_one(bad):
    with pytest.raises(ValueError, match=r"split fractions must be three positive numbers summing to 1, got"):
        checks.check_split(bad)


def test_check_device():
    assert checks.check_device("cpu") == torch.device("cpu")
    assert checks.check_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match=r"device 'gpu' is not a torch device; use 'cpu', 'cuda'"):
        checks.check_device("gpu")


def test_every_training_key_of_the_profiles_has_a_rule():
    assert set(mm.profiles.TRAIN_KEYS) <= set(checks.TRAIN_CHECKS)


@pytest.mark.parametrize("seeds,expected", [([0, 2], [0, 2]), (3, [3]), (range(2), [0, 1]),
                                            ((np.int64(1),), [1])])
def test_check_seeds_gives_a_list(seeds, expected):
    assert checks.check_seeds(seeds) == expected


@pytest.mark.parametrize("bad", [[], [-1], [True], True, [1.0], "0", None, {"a": 1}])
def test_check_seeds_refuses_empty_negative_bool_and_non_integer(bad):
    with pytest.raises(ValueError, match=r"seeds must be a non-empty list of non-negative integers, got"):
        checks.check_seeds(bad)


# --- data -----------------------------------------------------------------------------------

def test_non_finite_inputs_are_named_by_dataset_split_modality_and_count(make_data):
    data = make_data()
    checks.check_finite(data)
    data.val.inputs["b"][0, :2] = float("nan")
    data.val.inputs["b"][1, 0] = float("inf")
    with pytest.raises(ValueError, match=r"^dataset 'tiny', split 'val', modality 'b': 3 non-finite values "
                                         r"\(NaN or inf\); clean or impute them before training$"):
        checks.check_finite(data)


def test_integer_inputs_are_not_checked_for_finiteness(make_data):
    data = make_data()
    data.train.inputs["a"] = torch.zeros(len(data.train), 6, dtype=torch.long)
    checks.check_finite(data)


def test_labels_out_of_range_or_float_are_errors(make_data):
    data = make_data(num_classes=3)
    data.test.y = data.test.y.clone()
    data.test.y[0] = 3
    with pytest.raises(ValueError, match=r"dataset 'tiny', split 'test': labels must be in \[0, num_classes=3\), "
                                         r"got values from 0 to 3"):
        checks.check_labels(data)
    data.test.y = data.test.y.float()
    with pytest.raises(TypeError, match=r"labels must be an integer tensor .* got dtype torch.float32"):
        checks.check_labels(data)


def test_load_dataset_refuses_a_dataset_with_nan(make_data, monkeypatch):
    def load_broken():
        data = make_data()
        data.train.inputs["a"][3, 1] = float("nan")
        return data

    monkeypatch.setitem(DATASETS._items, "broken", load_broken)
    with pytest.raises(ValueError, match=r"dataset 'tiny', split 'train', modality 'a': 1 non-finite values"):
        mm.load_dataset("broken")


# --- methods --------------------------------------------------------------------------------

def test_a_method_class_says_pass_an_instance_or_the_registered_name():
    msg = r"got the class OGMGE, not a method: pass an instance, e.g. OGMGE\(\) or the registered name 'ogm-ge'"
    with pytest.raises(TypeError, match=msg):
        resolve_methods(OGMGE)
    with pytest.raises(TypeError, match=msg):
        resolve_methods([OGMGE])
    with pytest.raises(TypeError, match=msg):
        make_methods([OGMGE])
    with pytest.raises(TypeError, match=r"methods must be a method spec or a list of them, got 42"):
        resolve_methods(42)


def test_an_unregistered_subclass_is_not_given_its_parents_name():
    class Mine(OGMGE):
        pass

    with pytest.raises(TypeError, match=r"got the class Mine, not a method: pass an instance, e.g. Mine\(\)$"):
        make_methods(Mine)


def test_method_factories_must_give_methods():
    with pytest.raises(TypeError, match=r"the method factory .* returned 3, not a Method"):
        make_methods(lambda: 3)


# --- fit: everything is refused before training -----------------------------------------------

class _NoTraining(Method):
    def on_fit_start(self, state):
        raise AssertionError("training started")


def _fit(data, model=None, methods=None, **kw):
    model = model or mm.build_model(data)
    return mm.fit(model, data, [_NoTraining()] if methods is None else methods, **{"num_epochs": 1, **kw})


@pytest.mark.parametrize("kw,kind,match", [
    ({"num_epochs": 2.5}, TypeError, r"num_epochs must be an integer >= 1, got 2\.5"),
    ({"num_epochs": "3"}, TypeError, r"num_epochs must be an integer >= 1, got '3' \(str\)"),
    ({"num_epochs": True}, TypeError, r"num_epochs must be an integer >= 1, got True \(bool\)"),
    ({"num_epochs": 0}, ValueError, r"num_epochs must be >= 1, got 0"),
    ({"batch_size": 0}, ValueError, r"batch_size must be >= 1, got 0"),
    ({"batch_size": 16.0}, TypeError, r"batch_size must be an integer >= 1, got 16\.0"),
    ({"lr": 0.0}, ValueError, r"lr must be a finite number > 0, got 0\.0"),
    ({"lr": "1e-3"}, TypeError, r"lr must be a real number > 0, got '1e-3' \(str\)"),
    ({"weight_decay": -1e-4}, ValueError, r"weight_decay must be a finite number >= 0, got -0\.0001"),
    ({"momentum": 1.0}, ValueError, r"momentum must be a finite number in \[0, 1\), got 1\.0"),
    ({"lr_step": 0}, ValueError, r"lr_step must be None or >= 1, got 0"),
    ({"lr_step": 2.0}, TypeError, r"lr_step must be None or an integer >= 1, got 2\.0"),
    ({"lr_gamma": 0}, ValueError, r"lr_gamma must be a finite number > 0, got 0"),
    ({"seed": -1}, ValueError, r"seed must be >= 0, got -1"),
    ({"seed": True}, TypeError, r"seed must be an integer >= 0, got True \(bool\)"),
    ({"optimizer": "adamm"}, ValueError, r"unknown optimizer 'adamm'\. Did you mean 'adam'\? "
                                         r"Known optimizers: adam, adamw, sgd"),
    ({"device": "gpu"}, ValueError, r"device 'gpu' is not a torch device"),
    ({"select": "acc/c"}, ValueError, r"select='acc/c' is not a validation metric; choose from "
                                      r"\['acc', 'f1', 'map', 'acc/a', 'acc/b'\]"),
])
def test_fit_refuses_bad_settings_before_training(make_data, kw, kind, match):
    with pytest.raises(kind, match=match):
        _fit(make_data(n=30), **kw)


def test_fit_asks_for_cpu_when_cuda_is_missing(make_data, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device 'cuda' asks for CUDA, which is not available here; "
                                         r"use device='cpu'"):
        _fit(make_data(n=30), device="cuda")


def test_fit_refuses_nan_inputs_before_training(make_data):
    data = make_data(n=30)
    data.val.inputs["b"][0, :3] = float("nan")
    with pytest.raises(ValueError, match=r"dataset 'tiny', split 'val', modality 'b': 3 non-finite values "
                                         r"\(NaN or inf\); clean or impute them before training"):
        _fit(data)


def test_fit_refuses_a_method_class(make_data):
    with pytest.raises(TypeError, match=r"pass an instance, e.g. OGMGE\(\) or the registered name 'ogm-ge'"):
        _fit(make_data(n=30), methods=OGMGE)


def test_fit_refuses_a_split_or_a_model_of_other_modalities(make_data):
    data = make_data(n=30)
    with pytest.raises(TypeError, match=r"data must be a MultimodalDataset .* got Split"):
        _fit(data.train, model=mm.build_model(data))
    other = make_data(n=30, modalities=("a", "c"))
    with pytest.raises(ValueError, match=r"the model reads modality 'b', which dataset 'tiny' lacks"):
        _fit(other, model=mm.build_model(data))


# --- run --------------------------------------------------------------------------------------

@pytest.mark.parametrize("seeds", [[], [True], [-1], "0"])
def test_run_refuses_bad_seeds(make_data, seeds):
    with pytest.raises(ValueError, match=r"seeds must be a non-empty list of non-negative integers"):
        mm.run(make_data(n=30), [_NoTraining()], seeds=seeds, num_epochs=1)


@pytest.mark.parametrize("kw,match", [
    ({"seed": 1}, r"run takes seeds=\[\.\.\.\] \(one run per seed\), not seed="),
    ({"epochs": 3}, r"run got unknown fit argument\(s\) \['epochs'\]\. Did you mean 'num_epochs'\?"),
    ({"num_epochs": "2"}, r"num_epochs must be an integer >= 1, got '2'"),
])
def test_run_refuses_bad_fit_arguments(make_data, kw, match):
    with pytest.raises(TypeError, match=match):
        mm.run(make_data(n=30), [_NoTraining()], **kw)


def test_run_refuses_one_checkpoint_for_several_seeds(make_data, tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint= with 2 seeds would resume every seed from the first"):
        mm.run(make_data(n=30), [_NoTraining()], seeds=[0, 1], checkpoint=tmp_path / "c.pt")
