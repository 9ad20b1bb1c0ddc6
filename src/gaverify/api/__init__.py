"""The Python API: verify scenarios from code, as `gaverify run` does.

    import gaverify
    result = gaverify.verify("quickstart", {"batch.accumulation": [2, 4]})
    assert result.passed, result.explain()
    gaverify.assert_equivalent("scenarios/my-trainer.yaml")

A scenario is a path, a bundled name, a mapping of its keys or a Scenario;
overrides are a mapping of dotted keys (`{"batch.size": 4}`), or 'key=value'
texts as `--set` takes them. Nothing here prints. A problem the user can fix
raises GaverifyError with its one-line message; Ctrl-C or SIGTERM raises
ScenarioInterrupted (a KeyboardInterrupt) holding what was measured. The
CLI's `run` and the pytest plugin (gaverify/pytest_plugin.py) both go through here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from gaverify.api.result import Result, Results
from gaverify.errors import GaverifyError
from gaverify.measure.results import RunResult
from gaverify.progress import Progress
from gaverify.report.terminal import ProgressBar
from gaverify.runner import ScenarioInterrupted, run_scenario, run_scenarios
from gaverify.spec.loading import Overrides, ScenarioLike, load, load_all
from gaverify.spec.schema import Scenario

__all__ = [
    "GaverifyError",
    "Result",
    "Results",
    "Scenario",
    "ScenarioInterrupted",
    "assert_equivalent",
    "load",
    "verify",
    "verify_all",
]


def verify(
    scenario: ScenarioLike, overrides: Overrides | None = None, *, progress: Progress | bool = False
) -> Result:
    """Run `scenario` (with `overrides` set) and judge every step.

    `progress`: a gaverify.progress.Progress to follow the run, or True for
    the progress bar `gaverify run` draws on stderr. Raises GaverifyError
    when the scenario cannot run; a FAIL is a Result, not an exception.
    """
    loaded = load(scenario, overrides)
    with _following(progress) as bar:
        return Result(run_scenario(loaded, bar))


def assert_equivalent(
    scenario: ScenarioLike, overrides: Overrides | None = None, *, progress: Progress | bool = False
) -> Result:
    """`verify`, raising AssertionError unless every variant gets the verdict
    its scenario expects; the message names the verdict, the worst metrics
    against their tolerances and the diagnosis. Returns the Result."""
    result = verify(scenario, overrides, progress=progress)
    if not result.passed:
        raise AssertionError(result.explain())
    return result


def verify_all(
    scenarios: Sequence[ScenarioLike],
    overrides: Overrides | None = None,
    *,
    progress: Progress | bool = False,
    on_result: Callable[[Result], None] | None = None,
    on_error: Callable[[str, GaverifyError], None] | None = None,
    command: str | None = None,
) -> Results:
    """Run several scenarios in turn (folders stand for their *.yaml files; no
    scenario at all is the built-in default one).

    Every scenario is validated before any runs (all problems are raised
    together). A scenario that cannot run is recorded in `Results.errors`,
    reported to `on_error`, and the rest still run; a lone scenario raises
    its GaverifyError as `verify` does. Ctrl-C or SIGTERM stops the set:
    `Results.interrupted`, with what was measured. `on_result` sees each
    Result as it is judged; `command` is recorded in the reports.
    """
    if isinstance(scenarios, str | os.PathLike | Mapping | Scenario):
        scenarios = [scenarios]  # one scenario, not a sequence of characters or keys
    loaded = load_all(scenarios, overrides)

    def judged(run: RunResult) -> None:
        if on_result:
            on_result(Result(run))

    def failed(label: str, exc: GaverifyError) -> None:
        if on_error:
            on_error(label, exc)

    alone = len(loaded) == 1
    with _following(progress) as bar:
        run_set = run_scenarios(
            loaded, bar, judged, on_error=None if alone else failed, command=command
        )
    return Results(run_set, planned=len(loaded))


@contextmanager
def _following(progress: Progress | bool) -> Iterator[Progress]:
    """The Progress to report to: the caller's, or a bar of our own (closed after)."""
    if isinstance(progress, Progress):
        yield progress
        return
    bar = ProgressBar() if progress else None
    try:
        yield bar or Progress()
    finally:
        if bar is not None:
            bar.close()
