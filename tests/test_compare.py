import math

import pytest
import torch

from gaverify.measure.compare import compare_gradients, max_abs_difference


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def test_identical_gradients():
    c = compare_gradients([t(3.0), t(4.0)], [t(3.0), t(4.0)])
    assert (c.norm_ref, c.norm_got, c.rel_l2, c.cosine) == (5.0, 5.0, 0.0, 1.0)


def test_scaled_gradient():
    c = compare_gradients([t(3.0, 4.0)], [t(6.0, 8.0)])
    assert c.norm_got == 10.0
    assert c.rel_l2 == pytest.approx(1.0, abs=1e-15)
    assert c.cosine == pytest.approx(1.0, abs=1e-15)


def test_orthogonal_gradient():
    c = compare_gradients([t(1.0, 0.0)], [t(0.0, 1.0)])
    assert c.rel_l2 == pytest.approx(math.sqrt(2), abs=1e-15)
    assert c.cosine == 0.0


def test_zero_reference():
    assert compare_gradients([t(0.0)], [t(0.0)]).rel_l2 == 0.0
    assert compare_gradients([t(0.0)], [t(1.0)]).rel_l2 == math.inf


def test_a_missing_gradient_counts_as_zeros():
    c = compare_gradients([t(3.0, 4.0), None], [t(3.0, 4.0), t(1.0)])
    assert (c.norm_ref, c.norm_got) == (5.0, math.sqrt(26.0))
    assert c.rel_l2 == pytest.approx(0.2, abs=1e-15)
    assert compare_gradients([None], [None]).rel_l2 == 0.0


def test_nan_propagates():
    assert math.isnan(compare_gradients([t(1.0)], [t(float("nan"))]).rel_l2)


def test_max_abs_difference():
    assert max_abs_difference([t(1.0, 2.0), t(0.5)], [t(1.0, 2.25), t(0.0)]) == 0.5
    assert math.isnan(max_abs_difference([t(1.0)], [t(float("nan"))]))


def test_top_layers_rank_parameters_by_relative_gradient_error():
    import torch

    from gaverify.measure.compare import compare_gradients, top_layers

    ref = [torch.tensor([1.0, 0.0]), torch.tensor([10.0]), torch.tensor([0.0]), None]
    got = [torch.tensor([1.0, 0.5]), torch.tensor([11.0]), torch.tensor([0.0]), None]
    comparison = compare_gradients(ref, got)
    top = top_layers(["a", "b", "c", "d"], comparison, 2)
    assert [t["name"] for t in top] == ["a", "b"]
    assert top[0]["rel_l2"] == 0.5 and top[1]["rel_l2"] == 0.1
    assert (top[1]["norm_full"], top[1]["norm_ga"]) == (10.0, 11.0)
