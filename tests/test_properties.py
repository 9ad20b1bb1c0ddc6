"""Property tests: the accumulation maths holds for any lengths, padding and N."""

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaverify.accumulation.variants import VARIANTS
from gaverify.backends.reference import accumulate
from gaverify.data.collate import collate
from gaverify.model.build import build_model
from gaverify.spec.schema import ModelSpec
from gaverify.tasks.heads import TASKS
from tests.conftest import SMALL_MODEL

causal = TASKS.get("causal-lm")
MODEL = build_model(ModelSpec(config=SMALL_MODEL), causal, "float64", "cpu", 0, None).model


def _grad(micro, variant):
    MODEL.zero_grad(set_to_none=True)
    loss, counts = accumulate(MODEL, micro, VARIANTS.get(variant), causal)
    return loss, counts, torch.cat([p.grad.flatten() for p in MODEL.parameters()])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lengths=st.lists(st.integers(2, 20), min_size=8, max_size=8),
    n=st.sampled_from([1, 2, 4, 8]),
    padding=st.sampled_from(["right", "left"]),
    packed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_fixed_equals_the_full_batch_in_float64(lengths, n, padding, packed, seed):
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(1, 97, (k,), generator=g).tolist() for k in lengths]
    samples = [{"input_ids": s, "labels": list(s)} for s in seqs]

    def batches(parts):
        size = len(samples) // parts
        return [
            collate(samples[i * size : (i + 1) * size], causal, 0, padding, packed, "cpu")
            for i in range(parts)
        ]

    full_loss, _, full = _grad(batches(1), "fixed")
    loss, counts, fixed = _grad(batches(n), "fixed")
    assert sum(counts) == sum(k - 1 for k in lengths)
    assert abs(loss - full_loss) <= 1e-12 * abs(full_loss)
    assert ((fixed - full).norm() / full.norm()).item() <= 1e-12


MISSING = object()  # the key is left out


def _maybe(strategy):
    return st.one_of(st.just(MISSING), strategy)


JUNK = st.one_of(
    st.text(max_size=4), st.floats(allow_nan=True), st.lists(st.integers(), max_size=2)
)
# Mostly sensible values, so that most examples run; then one key at random
# may be replaced by junk, and an unknown key may be added.
SENSIBLE = {
    "steps": st.integers(1, 2),
    "dtype": st.sampled_from(["float32", "float64", "bfloat16"]),
    "mode": st.sampled_from(["lockstep", "trajectory"]),
    "variants": st.lists(st.sampled_from(["naive", "fixed", "model"]), min_size=1, max_size=3),
    "batch": st.fixed_dictionaries(
        {
            "size": st.sampled_from([4, 8]),
            "accumulation": st.lists(st.sampled_from([1, 2, 3, 4, 8]), min_size=1, max_size=3),
        }
    ),
    "data": st.fixed_dictionaries(
        {
            "samples": st.sampled_from([8, 16]),
            "length": st.fixed_dictionaries({"min": st.integers(1, 6), "max": st.integers(4, 12)}),
            "padding": st.sampled_from(["right", "left"]),
            "packed": st.booleans(),
        }
    ),
    "task": st.sampled_from(TASKS.names()),
    "optimizer": st.fixed_dictionaries(
        {"name": st.sampled_from(["adamw", "sgd"]), "lr": st.floats(1e-5, 1.0)}
    ),
}
SCENARIO_DICTS = st.fixed_dictionaries({key: _maybe(value) for key, value in SENSIBLE.items()})
CORRUPTION = st.one_of(st.none(), st.tuples(st.sampled_from(sorted(SENSIBLE)), JUNK))
UNKNOWN = _maybe(st.dictionaries(st.text(min_size=1, max_size=5), st.integers(), max_size=1))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(fields=SCENARIO_DICTS, corruption=CORRUPTION, unknown=UNKNOWN)
def test_any_scenario_runs_or_is_refused_in_one_line_never_a_traceback(
    fields, corruption, unknown, tmp_path_factory
):
    import yaml
    from typer.testing import CliRunner

    from gaverify.cli import app

    fields = {k: v for k, v in fields.items() if v is not MISSING}
    if corruption is not None:
        fields[corruption[0]] = corruption[1]
    data = {"device": "cpu", "model": {"config": SMALL_MODEL}}
    if "task" in fields:
        data["model"]["task"] = fields.pop("task")
    data.update(fields)
    if unknown is not MISSING:
        data.update(unknown)
    path = tmp_path_factory.mktemp("s") / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["run", str(path), "-q"])
    assert isinstance(result.exception, SystemExit | None), result.output  # never a crash
    assert result.exit_code in (0, 1, 2), result.output
    if result.exit_code == 2:
        lines = result.output.strip().splitlines()
        assert lines and all(line.startswith("error: ") for line in lines), result.output
