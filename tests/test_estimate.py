"""The sketched comparison: exact where it says so, within its stated error elsewhere."""

import statistics

import pytest
import torch

from gaverify.measure.compare import compare_gradients
from gaverify.measure.estimate import BUCKETS, ERROR, Probe
from gaverify.measure.fit import Sketch

SHAPES = [(3000, 64), (64, 64), (256,), (64, 172), (20000,)]


def _probe(ref, parts, seed=0):
    probe = Probe(ref, len(parts), Sketch(BUCKETS, seed))
    for i, part in enumerate(parts):
        for j, grad in enumerate(part):
            probe.add(i, j, grad)
    return probe


def _window(seed, noise):
    gen = torch.Generator().manual_seed(seed)
    ref = [torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]
    parts = [[r / 4 + noise * torch.randn(s, generator=gen, dtype=torch.float64)
              for r, s in zip(ref, SHAPES, strict=True)] for _ in range(4)]  # fmt: skip
    return ref, parts


def _exact(ref, parts, ratios):
    got = [sum(r * p[j] for r, p in zip(ratios, parts, strict=True)) for j in range(len(ref))]
    return compare_gradients(ref, got)


def test_rel_l2_errors_have_the_stated_spread():
    errors = []
    for seed in range(30):
        ref, parts = _window(seed, 1e-3)
        estimate = _probe(ref, parts, seed).compare([1.0] * 4).rel_l2
        errors.append(estimate / _exact(ref, parts, [1.0] * 4).rel_l2 - 1)
    assert statistics.pstdev(errors) < 1.5 * ERROR
    assert max(map(abs, errors)) < 4 * ERROR


def test_norms_and_cosine_stay_exact_enough_for_their_tolerances():
    ref, parts = _window(0, 1e-7)  # a fixed-like variant: differs by rounding only
    estimate = _probe(ref, parts).compare([1.0] * 4)
    exact = _exact(ref, parts, [1.0] * 4)
    assert estimate.norm_ref == pytest.approx(exact.norm_ref, rel=1e-12)
    assert estimate.norm_got == pytest.approx(exact.norm_got, rel=1e-12)  # |g| tol is 1e-4
    assert 1 - estimate.cosine == pytest.approx(1 - exact.cosine, abs=1e-13)
    naive = [0.5, 1.5, 0.8, 1.2]  # weights of another variant, from the same numbers
    estimate, exact = _probe(ref, parts).compare(naive), _exact(ref, parts, naive)
    assert estimate.rel_l2 == pytest.approx(exact.rel_l2, rel=4 * ERROR)
    assert estimate.norm_got == pytest.approx(exact.norm_got, rel=1e-3)


def test_a_tensor_smaller_than_the_buckets_is_compared_exactly():
    gen = torch.Generator().manual_seed(1)
    ref = [torch.randn(BUCKETS - 1, generator=gen, dtype=torch.float64)]
    parts = [[ref[0] / 2 + torch.randn(BUCKETS - 1, generator=gen, dtype=torch.float64)]
             for _ in range(2)]  # fmt: skip
    estimate, exact = _probe(ref, parts).compare([1.0, 1.0]), _exact(ref, parts, [1.0, 1.0])
    assert estimate.rel_l2 == pytest.approx(exact.rel_l2, rel=1e-12)
    assert estimate.per_tensor[0] == pytest.approx(exact.per_tensor[0], rel=1e-12)
