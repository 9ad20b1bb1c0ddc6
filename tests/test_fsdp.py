"""The fsdp backend: FSDP2 fully_shard on two gloo processes of this CPU."""

from __future__ import annotations

import pytest

from gaverify.errors import GaverifyError
from gaverify.runner import run_scenario
from tests.conftest import small_scenario

ALL = ["local-count", "global-count", "global-count-unscaled", "global-count-reduce-sum",
       "global-count-reduce-sum-x-W"]  # fmt: skip


def fsdp_scenario(**fields):
    base = {
        "backend": "fsdp",
        "batch": {"size": 8, "accumulation": [1, 2, 4]},
        "distributed": {"processes": 2, "timeout": 60},
        "variants": ALL,
    }
    base.update(fields)
    return small_scenario(**base)


def test_sharded_global_count_equals_the_single_process_full_batch_and_local_count_fails():
    result = run_scenario(fsdp_scenario(dtype="float64", steps=2))
    assert result.device == "cpu x 2 (gloo)"
    assert "FSDP2 fully_shard on each LlamaDecoderLayer and the root" in result.notes[0]
    rows = {(r.step, r.n, r.variant): r for r in result.rows}
    for r in result.rows:
        assert len(r.items_micro) == 2 * r.n and sum(r.items_micro) == r.items_full
        if r.variant in ("global-count", "global-count-reduce-sum"):  # step 2 too: shards reloaded
            assert r.grad_rel_l2 < 1e-12 and r.loss_rel < 1e-12, r
    assert rows[(2, 2, "local-count")].verdict == "fail"
    unscaled, doubled = (
        rows[(1, 4, "global-count-unscaled")],
        rows[(1, 4, "global-count-reduce-sum-x-W")],
    )
    assert unscaled.grad_norm_ga == pytest.approx(unscaled.grad_norm_full / 2, rel=1e-12)
    assert doubled.grad_norm_ga == pytest.approx(doubled.grad_norm_full * 2, rel=1e-12)
    patterns = {(d.n, d.variant): d.pattern for d in result.diagnoses}
    assert patterns[(2, "local-count")] == "per-rank-count"
    assert patterns[(4, "global-count-unscaled")] == "unscaled-by-W"
    assert patterns[(2, "global-count-reduce-sum-x-W")] == "scaled-by-W"
    assert result.exit_code == 0  # each variant as its declaration expects


def test_trajectory_trains_sharded_copies_that_follow_the_reference_to_rounding():
    result = run_scenario(fsdp_scenario(mode="trajectory", steps=3,
                                        variants=["global-count", "local-count"]))  # fmt: skip
    assert result.exit_code == 0
    good = [r for r in result.rows if r.variant == "global-count"]
    assert all(r.param_max_abs is not None and r.param_max_abs < 1e-5 for r in good)
    bad = [r for r in result.rows if r.variant == "local-count" and r.step == 3]
    assert all(r.param_max_abs > 1e-4 for r in bad)  # its own shards drifted
    # a diverging run is fitted at its own (gathered) parameters
    assert {d.pattern for d in result.diagnoses if d.variant == "local-count"} == {"per-rank-count"}


def test_an_error_on_one_rank_is_reported_naming_it():
    scenario = fsdp_scenario(
        model={"source": "factory", "factory": "tests.usercode.heads:fails_on_rank_one",
               "config": {"vocab_size": 97}},
    )  # fmt: skip
    with pytest.raises(GaverifyError, match=r"^rank 1: model.*no model for rank 1"):
        run_scenario(scenario)
