"""The package's front door: run a scenario and judge it.

`run_scenario` is what `gaverify run` calls: pick the backend, let it
measure, judge the measurements, and return a complete RunResult. It prints
nothing; rendering is render.py's job.
"""

from __future__ import annotations

import time

import gaverify
from gaverify import envinfo
from gaverify.backends import Progress, load_backend
from gaverify.results import RunResult
from gaverify.scenario import Scenario
from gaverify.verdict import discrimination_warnings, exit_code, judge_row, summarise


def run_scenario(scenario: Scenario, progress: Progress | None = None) -> RunResult:
    """Run `scenario` on its backend and return the judged result."""
    started = time.perf_counter()
    backend = load_backend(scenario.backend)
    trace = backend(scenario, progress)
    rows = [judge_row(m, scenario.tolerance) for m in trace.measurements]
    summaries = summarise(rows, scenario)
    return RunResult(
        gaverify_version=gaverify.__version__,
        scenario=scenario.model_dump(mode="json"),
        environment=envinfo.collect(),
        device=trace.device,
        parameters=trace.parameters,
        notes=trace.notes,
        warnings=discrimination_warnings(trace.measurements),
        rows=rows,
        variants=summaries,
        exit_code=exit_code(summaries),
        timings={"total_s": round(time.perf_counter() - started, 3)},
    )
