"""The pytest plugin (entry point `pytest11`): gaverify where tests already live.

    def test_ga(gaverify):                       # the fixture: verify's arguments
        gaverify("quickstart", {"batch.accumulation": [2, 4]})

    @pytest.mark.gaverify("scenarios/trainer.yaml", steps=2)
    def test_trainer():                          # the marker: the scenario is the test
        pass

Either fails the test when a variant misses the verdict its scenario expects,
with `Result.explain()` as the message (verdict, worst metrics, diagnosis),
and when a scenario cannot run, with its one-line error. Marker keywords are
overrides (`**{"batch.size": 4}` for dotted keys). `--gaverify-json DIR`
keeps every result as JSON, for `gaverify report`.

pytest loads this module in every project that installs gaverify, so it
imports the API (pydantic, rich, the backends' registry) only when a test
uses it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gaverify.errors import GaverifyError
from gaverify.output import write_atomic

if TYPE_CHECKING:
    from gaverify.api import Result
    from gaverify.progress import Progress
    from gaverify.spec.loading import Overrides, ScenarioLike


_KEPT = pytest.StashKey[int]()  # results a test has kept so far


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gaverify", "gradient accumulation equivalence")
    group.addoption(
        "--gaverify-json",
        metavar="DIR",
        type=Path,
        help="keep each gaverify result as DIR/<test>.json (re-render with `gaverify report`)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "gaverify(scenario, **overrides): run a gaverify scenario as part of this test; "
        "it fails unless every variant gets the verdict the scenario expects",
    )


@pytest.fixture
def gaverify(request: pytest.FixtureRequest) -> Callable[..., Result]:
    """gaverify.verify for this test: the same arguments, the Result back, and
    the test failed with the diagnosis when a variant misses its expectation."""

    def check(
        scenario: ScenarioLike,
        overrides: Overrides | None = None,
        *,
        progress: Progress | bool = False,
    ) -> Result:
        return _checked(request.node, scenario, overrides, progress)

    return check


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """A marked test runs its scenarios first, then its own body."""
    for marker in item.iter_markers("gaverify"):
        if len(marker.args) != 1:
            pytest.fail(
                "@pytest.mark.gaverify takes one scenario (a path, a bundled name or a "
                f"mapping) and keyword overrides; got {len(marker.args)} positional arguments",
                pytrace=False,
            )
        _checked(item, marker.args[0], dict(marker.kwargs), False)


def _checked(
    node: pytest.Item, scenario: ScenarioLike, overrides: Overrides | None, progress: Any
) -> Result:
    from gaverify.api import verify  # here, not at the top: every pytest run loads the plugin

    try:
        result = verify(scenario, overrides, progress=progress)
    except GaverifyError as exc:
        pytest.fail(f"gaverify: could not run: {exc}", pytrace=False)
    _keep(node, result)
    if not result.passed:
        pytest.fail(result.explain(), pytrace=False)
    return result


def _keep(node: pytest.Item, result: Result) -> None:
    """With --gaverify-json DIR: DIR/<test id>[-k].json, one per result."""
    folder = node.config.getoption("gaverify_json")
    if folder is None:
        return
    k = node.stash.get(_KEPT, 0) + 1  # a test may verify several scenarios
    node.stash[_KEPT] = k
    stem = re.sub(r"[^\w.-]+", "_", node.nodeid).strip("_")
    write_atomic(Path(folder) / f"{stem}{'' if k == 1 else f'-{k}'}.json", result.to_json())
