"""seed_everything / derive_seed: same seed, same numbers; a whole fit is reproducible."""
import os
import random

import numpy as np
import pytest
import torch

import mmlib as mm
from mmlib.repro import derive_seed, seed_everything


@pytest.fixture(autouse=True)
def restore_torch_settings():
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    det_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det, warn_only=det_warn)


def draws():
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


def test_same_seed_gives_same_python_numpy_and_torch_draws():
    seed_everything(123)
    first = draws()
    seed_everything(123)
    assert draws() == first


def test_different_seeds_give_different_draws():
    seed_everything(1)
    a = draws()
    seed_everything(2)
    b = draws()
    assert all(x != y for x, y in zip(a, b))


def test_returned_generator_is_seeded():
    g1 = seed_everything(7)
    g2 = torch.Generator().manual_seed(7)
    assert isinstance(g1, torch.Generator)
    assert torch.equal(torch.randperm(20, generator=g1), torch.randperm(20, generator=g2))


def test_fixes_thread_count_and_turns_on_deterministic_algorithms():
    torch.use_deterministic_algorithms(False)
    seed_everything(0, num_threads=1)
    assert torch.get_num_threads() == 1
    assert torch.are_deterministic_algorithms_enabled()
    assert "CUBLAS_WORKSPACE_CONFIG" in os.environ


def test_num_threads_none_leaves_thread_count_and_deterministic_false_leaves_flag():
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(False)
    seed_everything(0, num_threads=None, deterministic=False)
    assert torch.get_num_threads() == 2
    assert not torch.are_deterministic_algorithms_enabled()


def test_numpy_integer_seed_and_huge_seed_are_accepted():
    seed_everything(np.int64(5))
    a = draws()
    seed_everything(5)
    assert draws() == a
    seed_everything(2**40)  # NumPy gets seed % 2**32, no overflow error


def _fit_once(data, seed):
    seed_everything(seed)
    model = mm.build_model(data)
    res = mm.fit(model, data, num_epochs=2, batch_size=16, lr=1e-2, seed=seed)
    return {k: v.clone() for k, v in res.model.state_dict().items()}, res


def test_whole_fit_is_reproducible_with_the_same_seed(make_data):
    data = make_data()
    w1, r1 = _fit_once(data, 0)
    w2, r2 = _fit_once(data, 0)
    assert w1.keys() == w2.keys()
    for k in w1:
        assert torch.equal(w1[k], w2[k]), k
    assert r1.test == r2.test
    assert r1.val == r2.val
    assert r1.history == r2.history


def test_whole_fit_differs_with_another_seed(make_data):
    data = make_data()
    w1, r1 = _fit_once(data, 0)
    w3, r3 = _fit_once(data, 1)
    assert any(not torch.equal(w1[k], w3[k]) for k in w1 if w1[k].is_floating_point())
    assert r1.history[0]["train_loss"] != r3.history[0]["train_loss"]


@pytest.mark.parametrize("bad", [-1, 1.5, "3", None, np.float64(2.0)])
def test_bad_seed_is_an_error(bad):
    with pytest.raises(ValueError, match=r"seed must be a non-negative integer, got"):
        seed_everything(bad)


def test_derive_seed_is_stable_and_known():
    # hand-computed: h = (0 * 1_000_003 + ord("a")) % (2**31 - 1) = 97
    assert derive_seed(0, "a") == 97
    # then h = (97 * 1_000_003 + ord("b")) % (2**31 - 1)
    assert derive_seed(0, "ab") == (97 * 1_000_003 + 98) % (2**31 - 1)
    assert derive_seed(3) == 3  # no names: the seed itself
    assert derive_seed(11, "split", 2) == derive_seed(11, "split", 2)


def test_derive_seed_distinct_for_different_names_and_seeds():
    seeds = {derive_seed(s, name) for s in range(5) for name in ("split", "noise", "init", "order")}
    assert len(seeds) == 20
    assert all(0 <= s < 2**31 - 1 for s in seeds)


def test_derive_seed_is_a_valid_seed_for_seed_everything():
    seed_everything(derive_seed(2**30, "data", "split"))
