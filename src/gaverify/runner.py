"""The package's front door: run a scenario and judge it.

`run_scenario` is what `gaverify run` calls for each scenario: calibrate the tolerances when
asked (`tolerance: auto`), let the backend measure, judge the measurements,
diagnose what failed, and return a complete RunResult. It prints nothing;
rendering is report/terminal.py's job. `run_scenarios` runs several in turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from gaverify.backends import as_launched, check_backend, load_backend
from gaverify.backends.kit import Interrupted
from gaverify.calibrate import calibrate
from gaverify.errors import (
    EXIT_EXPECTATION_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    GaverifyError,
    stop_code,
)
from gaverify.measure.diagnosis import diagnose
from gaverify.measure.power import hidden_warnings, power
from gaverify.measure.results import RunError, RunResult, RunSet
from gaverify.measure.verdict import discrimination_warnings, exit_code, judge_row, summarise
from gaverify.progress import Progress
from gaverify.report import environment
from gaverify.spec.schema import Scenario
from gaverify.spec.settings import settings_of
from gaverify.spec.tolerances import profile


class ScenarioInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a scenario; `result` judges the rows
    measured so far (None when there were none); `code` is 130 or 143."""

    def __init__(self, result: RunResult | None, code: int = EXIT_INTERRUPTED):
        super().__init__()
        self.result, self.code = result, code


def run_scenario(scenario: Scenario, progress: Progress | None = None) -> RunResult:
    """Run `scenario` on its backend and return the judged result; on Ctrl-C,
    ScenarioInterrupted with the rows measured until then."""
    started = time.perf_counter()
    progress = progress or Progress()
    scenario = as_launched(scenario)  # under torchrun & co: the launcher's W ranks
    calibration = None
    judged = scenario
    check_backend(scenario)  # before a model is built, even for calibration
    try:
        if scenario.tolerance.auto:
            judged, calibration = calibrate(scenario, progress)
        trace = load_backend(scenario.backend)(judged, progress)
    except KeyboardInterrupt as stop:
        trace = stop.trace if isinstance(stop, Interrupted) else None
        partial = None
        if trace is not None and trace.measurements:
            partial = _judge(scenario, judged, trace, calibration, started, stop_code(stop))
        raise ScenarioInterrupted(partial, stop_code(stop)) from None
    return _judge(scenario, judged, trace, calibration, started)


def _judge(scenario, judged, trace, calibration, started, stopped: int = 0) -> RunResult:
    """The judged result; `stopped`: the exit code of a stop (130, 143), or 0."""
    names = dict.fromkeys([*(judged.variants or ()), *(m.variant for m in trace.measurements)])
    tolerances = {v: judged.tolerance_for(v) for v in names}
    rows = [judge_row(m, tolerances[m.variant]) for m in trace.measurements]
    groups, summaries = summarise(rows, judged)
    facts = environment.collect()
    limits = {v: t.limits() for v, t in tolerances.items()}
    detectable = power(limits.values())
    return RunResult(
        gaverify_version=facts["gaverify"],
        scenario=scenario.model_dump(mode="json"),
        environment=facts,
        device=trace.device,
        parameters=trace.parameters,
        notes=trace.notes,
        warnings=[
            *discrimination_warnings(trace.measurements),
            *hidden_warnings(trace.measurements, detectable),
        ],
        tolerance=judged.tolerance.limits(),
        variant_tolerance={v: t for v, t in limits.items() if t != judged.tolerance.limits()},
        settings=settings_of(scenario),
        power=detectable,
        calibration=calibration,
        rows=rows,
        groups=groups,
        variants=summaries,
        diagnoses=diagnose(
            rows,
            trace.fits,
            profile(scenario.dtype, scenario.precision),
            scenario.model.dropout,
            trace.extra_fits,
        ),
        extra_fits=trace.extra_fits,
        exit_code=stopped or exit_code(groups),
        interrupted=bool(stopped),
        timings={"total_s": round(time.perf_counter() - started, 3)},
    )


def run_scenarios(
    scenarios: Sequence[tuple[str, Scenario]],
    progress: Progress | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    on_error: Callable[[str, GaverifyError], None] | None = None,
    command: str | None = None,
) -> RunSet:
    """Run each (label, scenario) in turn. A scenario that cannot run (a
    GaverifyError: missing device, failing user code, ...) is recorded and
    the rest still run. Ctrl-C (or SIGTERM) stops the set: what was
    measured so far is kept and the exit code is 130 (143). Otherwise: 2 if
    any could not run, else 1 if any missed its expectations, else 0."""
    results, errors, stopped = [], [], 0

    def keep(result: RunResult) -> None:
        result.command = command
        results.append(result)
        if on_result:
            on_result(result)

    try:
        for label, scenario in scenarios:
            try:
                keep(run_scenario(scenario, progress))
            except ScenarioInterrupted as stop:
                if stop.result is not None:
                    keep(stop.result)
                raise
            except GaverifyError as exc:
                if on_error is None:
                    raise
                errors.append(RunError(scenario=label, message="; ".join(exc.lines())))
                on_error(label, exc)
    except KeyboardInterrupt as stop:  # in a scenario, or between two (printing one)
        stopped = stop.code if isinstance(stop, ScenarioInterrupted) else stop_code(stop)
    if stopped:
        code = stopped
    elif errors:
        code = EXIT_USAGE
    else:
        code = EXIT_OK if all(r.ok for r in results) else EXIT_EXPECTATION_FAILED
    return RunSet(
        gaverify_version=environment.gaverify_version(),
        results=results,
        errors=errors,
        exit_code=code,
        interrupted=bool(stopped),
    )
