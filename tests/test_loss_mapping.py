"""The loss-type variant: a user loss in LOSS_MAPPING, reached by the model's loss type."""

import sys

import pytest

from gaverify.accumulation.loss_mapping import ROUTES, route
from gaverify.errors import GaverifyError
from gaverify.model.build import build_model
from gaverify.runner import run_scenario
from gaverify.spec.schema import ModelSpec
from gaverify.tasks.heads import TASKS
from tests.conftest import SMALL_MODEL, small_scenario

SUM = "scenarios.custom_losses:causal_lm_sum"
MEAN = "scenarios.custom_losses:causal_lm_mean"


def loss_type_scenario(path, **fields):
    return small_scenario(
        dtype="float64", loss={"loss_type": path}, variants=["fixed", "loss-type"], **fields
    )


def test_a_loss_dividing_by_num_items_equals_the_full_batch_and_the_note_says_how():
    result = run_scenario(loss_type_scenario(SUM))
    assert result.exit_code == 0
    rows = [r for r in result.rows if r.variant == "loss-type"]
    assert len(rows) == 2 * 3 and max(r.grad_rel_l2 for r in rows) < 1e-12
    note = next(n for n in result.notes if n.startswith(f"user code ran: {SUM}"))
    assert f"as LOSS_MAPPING['gaverify:{SUM}'] via " in note
    assert note.rsplit(" via ", 1)[1] in ROUTES


def test_a_loss_ignoring_num_items_fails():
    result = run_scenario(loss_type_scenario(MEAN, variant_expect={"loss-type": "fail"}))
    assert result.exit_code == 0  # failing, as this scenario expects
    assert next(v for v in result.variants if v.variant == "loss-type").verdict == "fail"


def test_the_model_is_pointed_at_the_loss_only_inside_the_variant():
    model = build_model(ModelSpec(config=SMALL_MODEL), TASKS.get("causal-lm"), "float32", "cpu", 0,
                        None).model  # fmt: skip
    before = model.loss_function
    found = route(SUM, [], model)
    assert model.loss_function is before
    with found.pointed(model):
        assert model.loss_function.__name__ == "causal_lm_sum"
    assert model.loss_function is before


def test_transformers_5_routes_by_model_loss_type_not_the_config():
    # Measured on 5.23.0: model.loss_type is set from the class name at init
    # and config.loss_type is never read again (docs/loss-type.md).
    import transformers

    if not transformers.__version__.startswith("5."):
        pytest.skip(f"measured on transformers 5.x, not {transformers.__version__}")
    model = build_model(ModelSpec(config=SMALL_MODEL), TASKS.get("causal-lm"), "float32", "cpu", 0,
                        None).model  # fmt: skip
    assert route(SUM, [], model).via == "model.loss_type"


def test_a_release_without_loss_mapping_is_exit_2_naming_the_version(monkeypatch):
    import transformers

    monkeypatch.setitem(sys.modules, "transformers.loss.loss_utils", None)
    with pytest.raises(GaverifyError, match=f"transformers {transformers.__version__} has none"):
        route(SUM, [], object())


def test_a_model_without_a_loss_dispatch_is_exit_2():
    import torch

    with pytest.raises(GaverifyError, match="needs a transformers model with a loss_function"):
        route(SUM, [], torch.nn.Linear(2, 2))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"variants": ["loss-type"]}, "variants: loss-type needs loss.loss_type: module:function"),
        ({"loss": {"loss_type": SUM}}, "only used by the loss-type variant of backend reference"),
        ({"loss": {"loss_type": "nocolon"}, "variants": ["loss-type"]}, "not an import path"),
    ],
)
def test_loss_type_fields_are_checked_together(fields, message):
    with pytest.raises(ValueError, match=message):
        small_scenario(**fields)
