import pytest
from pydantic import ValidationError

from gaverify.scenario import DEFAULT_TOLERANCES, Scenario


def test_every_field_has_a_default():
    s = Scenario()
    assert s.model.type == "llama" and s.model.task == "causal-lm"
    assert s.batch.size == 8 and s.batch.accumulation == [2, 4, 8]
    assert s.variants == ["naive", "fixed"]
    assert s.model.dropout is False


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_unset_tolerances_come_from_the_dtype(dtype):
    s = Scenario(dtype=dtype)
    assert s.tolerance.model_dump() == DEFAULT_TOLERANCES[dtype]


def test_an_explicit_tolerance_wins():
    s = Scenario.model_validate({"dtype": "float64", "tolerance": {"grad_rel_l2": 0.5}})
    assert s.tolerance.grad_rel_l2 == 0.5
    assert s.tolerance.loss_rel == DEFAULT_TOLERANCES["float64"]["loss_rel"]


def _errors(data):
    with pytest.raises(ValidationError) as info:
        Scenario.model_validate(data)
    return {".".join(map(str, e["loc"])): e["msg"] for e in info.value.errors()}


@pytest.mark.parametrize("n", [3, 16, 0])
def test_accumulation_must_divide_the_batch(n):
    errors = _errors({"batch": {"size": 8, "accumulation": [2, n]}})
    assert f"{n} does not divide batch.size 8" in errors["batch.accumulation"]


def test_repeated_accumulation_values_are_refused():
    assert "repeated" in _errors({"batch": {"accumulation": [2, 2]}})["batch.accumulation"]


def test_unknown_names_are_refused_with_a_suggestion():
    errors = _errors({"variants": ["naiv"], "optimizer": {"name": "adam"}, "backend": "ref"})
    assert "did you mean 'naive'" in errors["variants"]
    assert "did you mean 'adamw'" in errors["optimizer.name"]
    assert "unknown backend 'ref'" in errors["backend"]


def test_expectations_must_name_a_variant_that_runs():
    errors = _errors({"variants": ["fixed"], "expect": {"naive": "fail"}})
    assert "expect names naive" in errors[""]


def test_expectations_default_to_the_variants_usual_verdict():
    s = Scenario.model_validate({"expect": {"naive": "pass"}})
    assert s.expected("naive") == "pass"
    assert s.expected("fixed") == "pass"
    assert Scenario().expected("naive") == "fail"


def test_samples_must_fill_a_batch():
    errors = _errors({"data": {"samples": 4}, "batch": {"size": 8, "accumulation": [2]}})
    assert "cannot fill one batch" in errors[""]


def test_length_bounds_are_ordered():
    assert "larger than max" in _errors({"data": {"length": {"min": 9, "max": 3}}})["data.length"]


def test_unknown_keys_are_errors_at_every_level():
    errors = _errors({"modle": {}, "data": {"lenght": {}}})
    assert set(errors) == {"modle", "data.lenght"}
