"""Report formats, all rendered from RunResults: what `run --json/--junit/
--markdown/--plot` write and what `gaverify report` re-renders.

A run of one scenario saves a RunResult as JSON; a run of several saves a
RunSet (their results, the scenarios that could not run, the exit code).
`load_results` reads either back, checking the schema version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from gaverify.errors import GaverifyError
from gaverify.measure.results import READABLE_VERSIONS, RunResult, RunSet
from gaverify.output import check_writable, write_atomic
from gaverify.registry import Registry
from gaverify.report.junit import junit_xml
from gaverify.report.markdown import markdown_reports
from gaverify.report.plot import plot_png


def _json(runset: RunSet) -> list[str | bytes]:
    alone = len(runset.results) == 1 and not runset.errors
    # a set stopped after its one finished result must still say it was stopped
    if alone and (runset.results[0].interrupted or not runset.interrupted):
        return [runset.results[0].model_dump_json(indent=2) + "\n"]
    return [runset.model_dump_json(indent=2) + "\n"]


def _junit(runset: RunSet) -> list[str | bytes]:
    return [junit_xml(runset.results)]


def _markdown(runset: RunSet) -> list[str | bytes]:
    return [markdown_reports(runset.results)]


def _plot(runset: RunSet) -> list[str | bytes]:
    return [plot_png(r) for r in runset.results]


@dataclass(frozen=True)
class Format:
    """A report format: what it is for, and how it renders results
    (one file, or for plots one file per result)."""

    summary: str
    render: Callable[[RunSet], list[str | bytes]]
    per_result: bool = False  # one file per result (else one file for them all)
    binary: bool = False


FORMATS: Registry[Format] = Registry("report format")
FORMATS.add("json", Format("every number of the run, versioned (what the others come from)", _json))
FORMATS.add("junit", Format("JUnit XML for CI: a test case per scenario x N x variant", _junit))
FORMATS.add("markdown", Format("a bug report to paste into an issue", _markdown))
FORMATS.add(
    "plot", Format("PNG: loss curves and divergence per step", _plot, per_result=True, binary=True)
)


def _paths(path: Path, results: Sequence[RunResult]) -> list[Path]:
    """One path per result: `path` itself for one, name-suffixed for several."""
    if len(results) == 1:
        return [path]
    names: list[Path] = []
    for i, result in enumerate(results, start=1):
        name = f"{path.stem}-{result.scenario.get('name', i)}"
        candidate = path.with_name(name + path.suffix)
        names.append(
            path.with_name(f"{name}-{i}{path.suffix}") if candidate in names else candidate
        )
    return names


def write_report(fmt: str, runset: RunSet, path: Path) -> list[Path]:
    """Render `runset` in format `fmt` to `path` (atomically); the paths written."""
    spec = FORMATS.get(fmt)
    if not runset.results and fmt != "json":
        return []
    paths = _paths(Path(path), runset.results) if spec.per_result else [Path(path)]
    for target, payload in zip(paths, spec.render(runset), strict=True):
        write_atomic(target, payload)
    return paths


def check_report_paths(paths: dict[str, Path | None]) -> None:
    """Exit 2 now, before any model is built, if a requested report (format
    -> path, None: not requested) could not be written: a long run must not
    be lost to a typo in an output path."""
    for fmt, path in paths.items():
        if path is not None:
            check_writable(path, f"--{fmt}")


def write_reports(runset: RunSet, paths: dict[str, Path | None]) -> list[Path]:
    """Write every requested report; the files written under a name derived
    from the one given (one per scenario, for plots of several)."""
    derived = []
    for fmt, path in paths.items():
        if path is not None:
            derived += [w for w in write_report(fmt, runset, path) if w != path]
    return derived


def render_report(fmt: str, runset: RunSet) -> list[str | bytes]:
    """The payloads of format `fmt` for a run set (one per result for plots)."""
    return FORMATS.get(fmt).render(runset)


def load_results(path: Path) -> RunSet:
    """The results saved in a JSON file by `gaverify run --json` (one or
    several), as a RunSet."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise GaverifyError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise GaverifyError(
            f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in READABLE_VERSIONS:
        raise GaverifyError(
            f"{path}: schema_version {version!r}, but this gaverify reads "
            f"{', '.join(map(str, READABLE_VERSIONS[:-1]))} or {READABLE_VERSIONS[-1]}; "
            "re-run the scenario to save a current result"
        )
    try:
        if "results" in data:
            return RunSet.model_validate(data)
        result = RunResult.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise GaverifyError(f"{path}: not a gaverify result: {where}: {first['msg']}") from exc
    return RunSet(
        gaverify_version=result.gaverify_version, results=[result], exit_code=result.exit_code
    )
