import pytest

from gaverify.data.synthetic import synthetic_samples
from gaverify.spec.schema import DataSpec
from gaverify.tasks.heads import TASKS, TokenSpace

causal = TASKS.get("causal-lm")
SPACE = TokenSpace(vocab_size=11, special_ids=frozenset({0}))


def _lengths(distribution, samples=400, lo=2, hi=40):
    spec = DataSpec.model_validate(
        {"samples": samples, "length": {"min": lo, "max": hi, "distribution": distribution}}
    )
    return [len(s["input_ids"]) for s in synthetic_samples(spec, causal, SPACE, seed=0)]


def test_uniform_lengths_cover_the_range_and_tokens_avoid_special_ids():
    spec = DataSpec.model_validate({"samples": 50, "length": {"min": 3, "max": 9}})
    samples = synthetic_samples(spec, causal, SPACE, seed=1)
    assert len(samples) == 50 and {len(s["input_ids"]) for s in samples} == set(range(3, 10))
    assert all(1 <= t < 11 for s in samples for t in s["input_ids"])
    assert synthetic_samples(spec, causal, SPACE, seed=1) == samples
    assert synthetic_samples(spec, causal, SPACE, seed=2) != samples


def test_long_tail_is_mostly_short_with_a_few_long():
    lengths = sorted(_lengths("long-tail"))
    assert min(lengths) >= 2 and max(lengths) <= 40
    median = lengths[len(lengths) // 2]
    assert median < 10 and max(lengths) > 30


def test_fixed_lengths_are_all_max():
    assert set(_lengths("fixed")) == {40}


def test_unknown_distribution_suggests():
    with pytest.raises(ValueError, match="did you mean 'long-tail'"):
        DataSpec.model_validate({"length": {"distribution": "longtail"}})
