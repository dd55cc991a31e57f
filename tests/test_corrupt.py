"""Corruptions: noise strength and reproducibility, exact missing rates and fills, per-sample quality, no in-place damage."""
import pytest
import torch

import mmlib as mm
from mmlib import corrupt


def clone(data):
    return {name: {m: x.clone() for m, x in s.inputs.items()} for name, s in data.splits().items()}


def assert_unchanged(data, before):
    for name, s in data.splits().items():
        for m, x in s.inputs.items():
            assert torch.equal(x, before[name][m]), f"{name}/{m} was modified in place"


@pytest.fixture
def data(make_data):
    return make_data(modalities=("a", "b", "c"), n=200)


# --- noise -------------------------------------------------------------------------------------

def test_noise_has_the_requested_strength_in_units_of_the_training_spread(make_data):
    d = make_data(modalities=("a", "b"), n=2000, dim=50)
    sigma = corrupt.modality_scale(d.train, "a")
    assert sigma == pytest.approx(float(d.train.inputs["a"].double().std(unbiased=False)))
    noisy = corrupt.noisy(d, {"a": 2.0})
    added = noisy.test.inputs["a"] - d.test.inputs["a"]
    assert float(added.std()) == pytest.approx(2.0 * sigma, rel=0.02)
    assert abs(float(added.mean())) < 0.02 * sigma
    assert torch.equal(noisy.test.inputs["b"], d.test.inputs["b"])  # other modalities untouched


def test_noise_scales_one_fixed_draw_and_is_reproducible(data):
    before = clone(data)
    one, two = corrupt.noisy(data, {"b": 1.0}, seed=3), corrupt.noisy(data, {"b": 2.0}, seed=3)
    for s in corrupt.SPLITS:
        d1 = getattr(one, s).inputs["b"] - getattr(data, s).inputs["b"]
        d2 = getattr(two, s).inputs["b"] - getattr(data, s).inputs["b"]
        assert torch.allclose(d2, 2 * d1, atol=1e-5)
    again = corrupt.noisy(data, {"b": 1.0}, seed=3)
    assert torch.equal(again.test.inputs["b"], one.test.inputs["b"])
    other = corrupt.noisy(data, {"b": 1.0}, seed=4)
    assert not torch.allclose(other.test.inputs["b"], one.test.inputs["b"])
    # the draw of "b" does not depend on whether "a" is corrupted too
    both = corrupt.noisy(data, {"a": 1.0, "b": 1.0}, seed=3)
    assert torch.equal(both.test.inputs["b"], one.test.inputs["b"])
    # splits get different draws
    n = min(len(data.val), len(data.test))
    assert not torch.allclose(one.val.inputs["b"][:n] - data.val.inputs["b"][:n],
                              one.test.inputs["b"][:n] - data.test.inputs["b"][:n])
    assert_unchanged(data, before)


def test_zero_strength_and_test_only_noise_leave_the_rest_alone(data):
    zero = corrupt.noisy(data, {"a": 0.0})
    assert torch.equal(zero.train.inputs["a"], data.train.inputs["a"])
    test_only = corrupt.noisy(data, {"a": 1.0}, splits=["test"])
    assert test_only.train is data.train and test_only.val is data.val
    assert not torch.equal(test_only.test.inputs["a"], data.test.inputs["a"])
    record = test_only.info["corruption"][-1]
    assert record["kind"] == "noisy" and record["splits"] == ("test",)
    assert torch.equal(corrupt.per_sample(test_only, "test")["a"], torch.ones(len(data.test), dtype=torch.float64))
    assert "corruption" not in data.info  # the input's info is not changed either


def test_per_sample_noise_std(data):
    split = data.test
    std = torch.zeros(len(split))
    std[::2] = 1.5
    out = corrupt.gaussian_noise(split, {"c": std}, seed=0)
    changed = (out.inputs["c"] != split.inputs["c"]).flatten(1).any(1)
    assert torch.equal(changed, std > 0)


# --- missing modalities ------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.0, 0.25, 0.5, 1.0])
def test_missing_rate_is_exact_and_one_modality_per_sample(rate):
    mask = corrupt.missing_mask(200, rate, ("a", "b", "c"), generator=torch.Generator().manual_seed(0))
    lost = ~torch.stack([mask[m] for m in ("a", "b", "c")])
    assert int(lost.any(0).sum()) == round(rate * 200)
    assert int(lost.sum(0).max()) <= 1  # never more than one modality per sample
    if rate == 1.0:
        counts = lost.sum(1)
        assert counts.min() > 40  # each modality is the lost one for about a third of the samples


def test_missing_candidates_restrict_which_modality_goes():
    mask = corrupt.missing_mask(100, 0.3, ("a", "b"), candidates=("b",), generator=torch.Generator().manual_seed(1))
    assert mask["a"].all() and int((~mask["b"]).sum()) == 30
    with pytest.raises(ValueError, match=r"unknown modality 'z'"):
        corrupt.missing_mask(10, 0.3, ("a", "b"), candidates=("z",))


@pytest.mark.parametrize("fill", ["zero", "mean"])
def test_incomplete_fills_missing_inputs_and_keeps_present_ones(data, fill):
    before = clone(data)
    inc = corrupt.incomplete(data, 0.4, fill=fill, seed=2)
    value = {m: (torch.zeros_like(x[0]) if fill == "zero" else x.mean(0)) for m, x in data.train.inputs.items()}
    for s in corrupt.SPLITS:
        present = corrupt.per_sample(inc, s)
        assert int((~torch.stack(list(present.values()))).any(0).sum()) == round(0.4 * len(getattr(data, s)))
        for m, keep in present.items():
            new, old = getattr(inc, s).inputs[m], getattr(data, s).inputs[m]
            assert torch.equal(new[keep], old[keep])
            assert torch.allclose(new[~keep], value[m].expand_as(new[~keep]), atol=1e-6)
    assert_unchanged(data, before)
    assert inc.info["corruption"][-1]["fill"] == fill


def test_zero_filling_is_mean_imputation_on_standardised_inputs(make_data):
    d = make_data(modalities=("a", "b"), n=120)
    mu, sd = d.train.inputs["a"].mean(0), d.train.inputs["a"].std(0)
    for s in d.splits().values():
        s.inputs["a"] = (s.inputs["a"] - mu) / sd
    zero = corrupt.incomplete(d, 0.5, modalities=["a"], fill="zero", seed=0)
    mean = corrupt.incomplete(d, 0.5, modalities=["a"], fill="mean", seed=0)
    assert torch.allclose(zero.test.inputs["a"], mean.test.inputs["a"], atol=1e-6)
    raw = make_data(modalities=("a", "b"), n=120)  # not centred: the two fills differ
    assert not torch.allclose(corrupt.incomplete(raw, 0.5, fill="zero").test.inputs["a"],
                              corrupt.incomplete(raw, 0.5, fill="mean").test.inputs["a"])


# --- quality-varying ---------------------------------------------------------------------------

def test_quality_varying_noises_one_modality_per_sample(data):
    before = clone(data)
    qv = corrupt.quality_varying(data, 3.0, seed=5)
    for s in corrupt.SPLITS:
        levels = corrupt.per_sample(qv, s, kind="quality-varying")
        stacked = torch.stack([levels[m] for m in data.modalities])
        assert ((stacked > 0).sum(0) <= 1).all() and (stacked <= 3.0).all() and (stacked >= 0).all()
        for m in data.modalities:
            changed = (getattr(qv, s).inputs[m] != getattr(data, s).inputs[m]).flatten(1).any(1)
            assert torch.equal(changed, levels[m] > 0)
    hit = torch.stack([corrupt.per_sample(qv, "train")[m] > 0 for m in data.modalities]).sum(1)
    assert hit.min() > 20  # every modality is the corrupted one for a good share of the samples
    assert_unchanged(data, before)
    assert torch.equal(corrupt.quality_varying(data, 3.0, seed=5).test.inputs["a"], qv.test.inputs["a"])


def test_quality_levels_are_uniform_on_the_chosen_modality():
    levels = corrupt.quality_levels(4000, ("a", "b"), 2.0, torch.Generator().manual_seed(0))
    chosen = levels["a"] + levels["b"]
    assert float(chosen.mean()) == pytest.approx(1.0, abs=0.05)
    assert float((levels["a"] > 0).double().mean()) == pytest.approx(0.5, abs=0.03)


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, message", [
    (lambda d: corrupt.noisy(d, {"a": -1.0}), ValueError, r"strength of 'a' must be a finite number >= 0"),
    (lambda d: corrupt.noisy(d, {"z": 1.0}), ValueError, r"unknown modality 'z'"),
    (lambda d: corrupt.noisy(d, 1.0), TypeError, r"strength must map modality names to strengths"),
    (lambda d: corrupt.noisy(d, {"a": 1.0}, splits=["testing"]), ValueError, r"unknown split 'testing'\. Did you mean 'test'"),
    (lambda d: corrupt.incomplete(d, 1.5), ValueError, r"rate must be a finite number in \[0, 1\]"),
    (lambda d: corrupt.incomplete(d, 0.5, fill="median"), ValueError, r"unknown fill 'median'"),
    (lambda d: corrupt.quality_varying(d, 1.0, seed=-1), ValueError, r"seed must be >= 0"),
    (lambda d: corrupt.per_sample(d, "test"), ValueError, r"no corruption of the 'test' split is recorded"),
])
def test_bad_input_is_one_clear_error(data, call, error, message):
    with pytest.raises(error, match=message):
        call(data)
