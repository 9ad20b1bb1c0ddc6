import pytest
from pydantic import ValidationError

from gaverify.spec.schema import DEFAULT_TOLERANCES, Scenario


def test_every_field_has_a_default():
    s = Scenario()
    assert s.model.type == "llama" and s.model.task == "causal-lm"
    assert s.batch.size == 8 and s.batch.accumulation == [2, 4, 8]
    assert s.variants == ["naive", "fixed"]
    assert s.model.dropout is False


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
def test_unset_tolerances_come_from_the_dtype(dtype):
    s = Scenario(dtype=dtype)
    assert s.tolerance.limits() == DEFAULT_TOLERANCES[dtype]


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
    errors = _errors({"variants": ["naiv"], "optimizer": {"name": "adam"}})
    assert "did you mean 'naive'" in errors["variants"]
    assert "did you mean 'adamw'" in errors["optimizer.name"]
    assert "unknown backend 'ref'" in _errors({"backend": "ref"})["backend"]


def test_variants_and_mode_are_checked_against_the_backend():
    errors = _errors({"backend": "trainer", "variants": ["naive", "installd"], "mode": "lockstep"})
    assert "unknown trainer variant 'naive'" in errors["variants"]
    assert "backend 'trainer' runs trajectory, not lockstep" in errors["mode"]
    assert (
        "did you mean 'installed'"
        in _errors({"backend": "trainer", "variants": ["installd"]})["variants"]
    )


def test_variants_and_mode_default_to_the_backend_s():
    reference, trainer = Scenario(), Scenario(backend="trainer")
    assert (reference.variants, reference.mode) == (["naive", "fixed"], "lockstep")
    assert (trainer.variants, trainer.mode) == (["installed", "pre-fix"], "trajectory")
    assert trainer.expected("installed") == "pass" and trainer.expected("pre-fix") == "fail"
    assert trainer.expected("pre-fix", equal_counts=True) == "pass"


def test_trainer_args_gaverify_sets_itself_are_refused():
    errors = _errors({"backend": "trainer", "trainer": {"args": {"seed": 1, "max_steps": 9}}})
    assert "max_steps, seed: set by gaverify" in errors["trainer.args"]
    assert "only used with backend: trainer" in _errors({"trainer": {"args": {"fp16": True}}})[""]


def test_expectations_must_name_a_variant_that_runs():
    errors = _errors({"variants": ["fixed"], "expect": {"naive": "fail"}})
    assert "variant_expect names naive" in errors[""]


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


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        ({"model": {"source": "pretrained"}}, "model", "source 'pretrained' needs model.path"),
        ({"model": {"source": "factory"}}, "model", "source 'factory' needs model.factory"),
        ({"model": {"path": "x"}}, "model", "model.path is only used with source: pretrained"),
        (
            {"model": {"source": "factory", "factory": "not a path"}},
            "model.factory",
            "not an import path",
        ),
        ({"model": {"task": "causal"}}, "model.task", "did you mean 'causal-lm'"),
        ({"data": {"source": "text"}}, "data", "source 'text' needs data.path"),
        ({"data": {"path": "x.txt"}}, "data", "data.path is not used with source: synthetic"),
        ({"variants": ["fixed", "nope:"]}, "variants", "unknown variant"),
    ],
)
def test_source_fields_are_checked(data, key, message):
    errors = _errors(data)
    assert message in errors[key]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"model": {"task": "masked-lm"}, "data": {"packed": True}},
            "data.packed: masked-lm cannot be packed",
        ),
        (
            {"model": {"task": "seq2seq"}, "data": {"source": "text", "path": "a.txt"}},
            "a text file has no target column for seq2seq",
        ),
        (
            {"data": {"source": "jsonl", "path": "a.jsonl", "columns": {"label": "y"}}},
            "data.columns: causal-lm reads columns ['text'], not ['label']",
        ),
        (
            {"model": {"task": "sequence-regression"}, "loss": {"label_smoothing": 0.1}},
            "sequence-regression has no cross-entropy to smooth",
        ),
        (
            {"loss": {"label_smoothing": 0.1}, "variants": ["model"]},
            "'model' uses the model's own loss, which has no label smoothing",
        ),
    ],
)
def test_task_and_data_must_fit_together(data, message):
    errors = _errors(data)
    assert message in errors[""]


def test_pretrained_and_factory_models_start_without_the_tiny_default_config():
    s = Scenario.model_validate({"model": {"source": "pretrained", "path": "some/model"}})
    assert s.model.config == {}
    assert Scenario().model.config["hidden_size"] == 64


def test_custom_variants_expect_a_pass_and_naive_expects_a_pass_on_equal_counts():
    s = Scenario.model_validate({"variants": ["naive", "my_losses:token_mean"]})
    assert s.expected("my_losses:token_mean") == "pass"
    assert s.expected("naive") == "fail"
    assert s.expected("naive", equal_counts=True) == "pass"


def test_validation_leaves_the_callers_mapping_alone():
    data = {"model": {"source": "pretrained", "path": "some/model"}}
    Scenario.model_validate(data)
    assert data == {"model": {"source": "pretrained", "path": "some/model"}}


def test_processes_default_by_backend_and_must_suit_it():
    assert Scenario().distributed.processes == 1
    ddp = Scenario(backend="ddp", batch={"size": 16})
    assert (ddp.distributed.processes, ddp.variants) == (2, ["local-count", "global-count"])
    errors = _errors({"distributed": {"processes": 2}})[""]
    assert "backend 'reference' runs in one process; use backend: trainer or ddp" in errors
    errors = _errors({"backend": "ddp", "distributed": {"processes": 1}, "batch": {"size": 16}})
    assert "backend 'ddp' needs 2 or more, not 1" in errors[""]
    Scenario(backend="ddp", batch={"size": 12, "accumulation": [2, 3]})  # 4 and 6 divide 12
    errors = _errors({"backend": "ddp", "batch": {"size": 8, "accumulation": [1, 8]}})
    assert "N=8 on 2 processes needs batch.size divisible by 16 (W x N micro-batches)" in errors[""]
    assert "greater than 0" in _errors({"distributed": {"timeout": 0}})["distributed.timeout"]


def test_the_ddp_backend_runs_only_its_own_variants():
    errors = _errors({"backend": "ddp", "batch": {"size": 16}, "variants": ["my:loss"]})
    assert "backend 'ddp' runs only its own variants, not my:loss" in errors["variants"]
    assert (
        "unknown ddp variant 'fixed'"
        in _errors({"backend": "ddp", "batch": {"size": 16}, "variants": ["fixed"]})["variants"]
    )


def test_a_top_level_expect_states_the_scenario_s_verdict():
    assert Scenario(expect="fail").outcome == "fail"
    assert Scenario(expect="fail").variant_expect == {}
    assert Scenario(expect="fail").expected("naive") == "fail"  # each variant: its usual verdict
    assert Scenario(variant_expect={"naive": "pass"}).outcome == "pass"  # pass when met
    older = Scenario(expect={"naive": "pass"})  # the older spelling of variant_expect
    assert (older.expect, older.variant_expect) == (None, {"naive": "pass"})
    with pytest.raises(ValidationError, match="belongs in variant_expect"):
        Scenario(expect={"naive": "pass"}, variant_expect={"fixed": "pass"})
    with pytest.raises(ValidationError, match="expect"):
        Scenario(expect="maybe")


def test_backend_loop_measures_loop_step_and_sets_other_variants_aside():
    s = Scenario(
        backend="loop", loop={"step": "a.b:c"}, variants=["naive", "fixed"],
        expect={"naive": "fail", "a.b:c": "fail"},
    )  # fmt: skip
    assert s.variants == ["a.b:c"]
    assert s.variant_expect == {"a.b:c": "fail"}
    assert s.notes == [
        "variants: naive, fixed set aside: backend 'loop' measures loop.step (a.b:c) only",
        "variant_expect: naive set aside (not measured)",
    ]
    assert Scenario(backend="loop", loop={"step": "a.b:c"}).notes == []


def test_question_answering_reads_synthetic_data_only():
    with pytest.raises(ValidationError, match="question-answering runs on synthetic data only"):
        Scenario(model={"task": "question-answering"}, data={"source": "jsonl", "path": "x"})
