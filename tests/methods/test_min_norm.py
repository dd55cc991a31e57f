"""The two-task min-norm weight: closed form, brute force, degenerate pairs."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmlib.methods.min_norm import min_norm_weight, min_norm_weight_gram


def objective(c, g1, g2):
    return float(((c * g1 + (1 - c) * g2) ** 2).sum())


def t(*xs):
    return torch.tensor(xs, dtype=torch.float64)


@pytest.mark.parametrize("g1, g2, expected", [
    (t(1, 0), t(0, 1), 0.5),      # orthogonal, equal norms
    (t(1, 0), t(-1, 1), 0.6),     # (g2.g2 - g1.g2) / ||g1 - g2||^2 = (2 + 1) / 5
    (t(3, 0), t(0, 1), 0.1),      # 1 / 10: most weight on the smaller gradient
    (t(1, 0), t(2, 0), 1.0),      # unclipped 2: the min-norm point is g1 itself
    (t(2, 0), t(1, 0), 0.0),      # unclipped -1
])
def test_closed_form_by_hand(g1, g2, expected):
    assert float(min_norm_weight(g1, g2)) == pytest.approx(expected)


def test_interior_point_is_orthogonal_to_the_segment():
    g1, g2 = t(1, 0), t(-1, 1)
    c = min_norm_weight(g1, g2)
    point = c * g1 + (1 - c) * g2
    assert float(point @ (g1 - g2)) == pytest.approx(0.0, abs=1e-12)


vectors = st.integers(1, 12).flatmap(lambda n: st.tuples(
    st.lists(st.floats(-10, 10), min_size=n, max_size=n),
    st.lists(st.floats(-10, 10), min_size=n, max_size=n)))


@settings(max_examples=200, deadline=None)
@given(vectors)
def test_matches_brute_force(pair):
    g1, g2 = torch.tensor(pair[0], dtype=torch.float64), torch.tensor(pair[1], dtype=torch.float64)
    c = float(min_norm_weight(g1, g2))
    assert 0.0 <= c <= 1.0 and not math.isnan(c)
    grid = torch.linspace(0, 1, 2001, dtype=torch.float64)[:, None]
    best = float(((grid * g1 + (1 - grid) * g2) ** 2).sum(1).min())
    assert objective(c, g1, g2) <= best + 1e-9 * (1 + best)


@settings(max_examples=100, deadline=None)
@given(vectors)
def test_gram_form_equals_vector_form(pair):
    g1, g2 = torch.tensor(pair[0], dtype=torch.float64), torch.tensor(pair[1], dtype=torch.float64)
    assert min_norm_weight_gram(float(g1 @ g1), float(g1 @ g2), float(g2 @ g2)) == min_norm_weight(g1, g2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("g1, g2, expected_c, expected_norm", [
    ([1.0, 2.0], [1.0, 2.0], 0.5, None),     # identical: any c, we take 1/2
    ([0.0, 0.0], [0.0, 0.0], 0.5, 0.0),      # both zero
    ([0.0, 0.0], [3.0, 4.0], 1.0, 0.0),      # one zero: the min-norm point is 0
    ([1.0, -2.0], [-1.0, 2.0], 0.5, 0.0),    # opposite, equal norms
    ([1.0, -2.0], [-3.0, 6.0], 0.75, 0.0),   # opposite, unequal norms
    ([1e-30, 0.0], [0.0, 1e-30], 0.5, None),  # underflows to zero in float32
])
def test_degenerate_pairs_give_no_nan(dtype, g1, g2, expected_c, expected_norm):
    g1, g2 = torch.tensor(g1, dtype=dtype), torch.tensor(g2, dtype=dtype)
    c = min_norm_weight(g1, g2)
    assert math.isfinite(c) and c == pytest.approx(expected_c)
    if expected_norm is not None:
        assert float((c * g1 + (1 - c) * g2).norm()) == pytest.approx(expected_norm, abs=1e-6)
