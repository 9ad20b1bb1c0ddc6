import math

import pytest

from gaverify.errors import UnknownNameError
from gaverify.variants import VARIANTS, fixed_weights, naive_weights


def test_fixed_divides_every_micro_batch_by_the_whole_count():
    assert fixed_weights([3, 5, 2]) == [0.1, 0.1, 0.1]


def test_naive_is_mean_of_means():
    # w_i = 1 / (N * T_i): each micro-batch's own mean, then averaged over N
    assert naive_weights([2, 4]) == [0.25, 0.125]


def test_variants_agree_exactly_when_counts_are_equal():
    assert naive_weights([4, 4, 4]) == fixed_weights([4, 4, 4])


def test_weighted_sums_reproduce_the_two_losses():
    sums, counts = [6.0, 20.0], [2, 10]  # per-micro-batch summed losses and counts
    full = sum(sums) / sum(counts)
    mean_of_means = (6.0 / 2 + 20.0 / 10) / 2
    assert sum(w * s for w, s in zip(fixed_weights(counts), sums, strict=True)) == full
    assert sum(w * s for w, s in zip(naive_weights(counts), sums, strict=True)) == mean_of_means
    assert full != mean_of_means


def test_zero_items_give_nan_like_a_real_loop():
    assert math.isnan(naive_weights([0, 3])[0])
    assert all(math.isnan(w) for w in fixed_weights([0, 0]))


def test_registry_knows_both_and_suggests_on_a_typo():
    assert VARIANTS.get("naive").expected == "fail"
    assert VARIANTS.get("fixed").expected == "pass"
    with pytest.raises(UnknownNameError, match="did you mean 'fixed'"):
        VARIANTS.get("fixd")
