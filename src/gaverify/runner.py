"""The package's front door: run a scenario and judge it.

`run_scenario` is what `gaverify run` calls: calibrate the tolerances when
asked (`tolerance: auto`), let the backend measure, judge the measurements,
diagnose what failed, and return a complete RunResult. It prints nothing;
rendering is render.py's job.
"""

from __future__ import annotations

import time

import gaverify
from gaverify import envinfo
from gaverify.backends import Progress, load_backend
from gaverify.diagnosis import diagnose
from gaverify.results import RunResult
from gaverify.scenario import Scenario
from gaverify.verdict import discrimination_warnings, exit_code, judge_row, summarise


def run_scenario(scenario: Scenario, progress: Progress | None = None) -> RunResult:
    """Run `scenario` on its backend and return the judged result."""
    started = time.perf_counter()
    calibration = None
    judged = scenario
    if scenario.tolerance.auto:
        from gaverify.calibrate import calibrate

        judged, calibration = calibrate(scenario, progress)
    trace = load_backend(scenario.backend)(judged, progress)
    rows = [judge_row(m, judged.tolerance) for m in trace.measurements]
    groups, summaries = summarise(rows, judged)
    return RunResult(
        gaverify_version=gaverify.__version__,
        scenario=scenario.model_dump(mode="json"),
        environment=envinfo.collect(),
        device=trace.device,
        parameters=trace.parameters,
        notes=trace.notes,
        warnings=discrimination_warnings(trace.measurements),
        tolerance=judged.tolerance.limits(),
        calibration=calibration,
        rows=rows,
        groups=groups,
        variants=summaries,
        diagnoses=diagnose(rows, trace.fits, scenario.dtype),
        exit_code=exit_code(groups),
        timings={"total_s": round(time.perf_counter() - started, 3)},
    )
