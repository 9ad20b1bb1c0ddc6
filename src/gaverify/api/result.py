"""What the Python API returns: a judged run, and a set of them.

`Result` wraps one scenario's RunResult (the typed record every report is
rendered from) with the answers a test asks for: did it pass, which exit
code would the CLI give, why not. `Results` does the same for a run of
several scenarios, as `gaverify run a.yaml b.yaml` makes.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaverify.errors import EXIT_OK
from gaverify.measure.results import Diagnosis, RunError, RunResult, RunSet, VariantSummary
from gaverify.report.failures import explain
from gaverify.report.markdown import markdown_report


@dataclass(frozen=True)
class Result:
    """One scenario, run and judged. `run` holds every number measured."""

    run: RunResult

    @property
    def name(self) -> str:
        """The scenario's name."""
        return str(self.run.scenario.get("name", "default"))

    @property
    def passed(self) -> bool:
        """Every variant got the verdict its scenario expects."""
        return self.run.exit_code == EXIT_OK

    @property
    def exit_code(self) -> int:
        """What `gaverify run` exits with: 0 as expected, 1 not (130/143: stopped)."""
        return self.run.exit_code

    @property
    def variants(self) -> list[VariantSummary]:
        """Each variant over every N: verdict, expectation, worst metrics."""
        return self.run.variants

    @property
    def diagnoses(self) -> list[Diagnosis]:
        """For each failing (N, variant): the pattern that explains it."""
        return self.run.diagnoses

    def explain(self) -> str:
        """Why the result is not as expected ('' when it is): each variant
        that missed, its worst metrics against their tolerances, its diagnosis."""
        return explain(self.run)

    def to_json(self) -> str:
        """The JSON report (`gaverify run --json`); `gaverify report` re-renders it."""
        return self.run.model_dump_json(indent=2) + "\n"

    def to_markdown(self) -> str:
        """The Markdown bug report (`gaverify run --markdown`)."""
        return markdown_report(self.run)

    def __repr__(self) -> str:
        verdicts = ", ".join(
            f"{v.variant}={v.verdict}" + ("" if v.met else f" (expected {v.expected})")
            for v in self.variants
        )
        return f"<Result {self.name}: {'passed' if self.passed else 'FAILED'}; {verdicts}>"


@dataclass(frozen=True)
class Results:
    """Several scenarios run in turn: their results, those that could not
    run, and one exit code for all (2 if any could not run, else 1 if any
    missed its expectations, else 0; 130/143 when stopped)."""

    run_set: RunSet
    planned: int  # scenarios named (folders expanded); fewer ran when stopped

    @property
    def results(self) -> list[Result]:
        return [Result(r) for r in self.run_set.results]

    @property
    def errors(self) -> list[RunError]:
        """The scenarios that could not run, each with its one-line reason."""
        return self.run_set.errors

    @property
    def passed(self) -> bool:
        return self.run_set.exit_code == EXIT_OK

    @property
    def exit_code(self) -> int:
        return self.run_set.exit_code

    @property
    def interrupted(self) -> bool:
        """Ctrl-C or SIGTERM stopped the set: the results measured so far."""
        return self.run_set.interrupted

    def to_json(self) -> str:
        """The JSON report of the whole set (`gaverify report` reads it)."""
        return self.run_set.model_dump_json(indent=2) + "\n"
