"""The census's results: one judged row per (model type, head), typed.

`gaverify census` (gaverify/census/) fills a Census; the table, Markdown and
JSON are rendered from it (report/census.py), and a saved Census is the
baseline the next one is compared with (`changes`). A row says PASS, FAIL
with the pattern the diagnosis named, or why the pair could not be built
or run: every pair of the installed transformers gets a row, never a gap.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

CENSUS_SCHEMA_VERSION = 1
CensusVerdict = Literal["pass", "fail", "cannot build", "cannot run"]
VERDICT_ORDER: tuple[CensusVerdict, ...] = ("fail", "pass", "cannot run", "cannot build")


class CensusRow(BaseModel):
    """One (model type, head): its verdict and what backs it."""

    type: str = Field(description="transformers model type, e.g. llama")
    head: str = Field(description="gaverify task of the head, e.g. causal-lm")
    verdict: CensusVerdict
    pattern: str | None = Field(
        None, description="FAIL: the diagnosed pattern(s), e.g. scaled-by-n"
    )
    detail: str = Field("", description="FAIL: the diagnosis; cannot ...: the one-line reason")
    dtype: str = Field("float64", description="the dtype it ran in (float32 when float64 cannot)")
    model_class: str | None = Field(None, description="the head's class, e.g. BertForMaskedLM")
    parameters: int | None = Field(None, description="the tiny model's parameter count")
    scales_loss: bool | None = Field(
        None, description="the Trainer passes num_items_in_batch and skips its own / N"
    )
    loss_ratio: float | None = Field(
        None, description="logged loss at the largest N / on the full batch, step 1 (N: ignored)"
    )
    worst: dict[str, float] = Field(
        default_factory=dict, description="largest divergence per metric"
    )
    seconds: float = Field(0.0, description="wall time of this row")
    command: str = Field(description="the `gaverify run` command that reproduces this row alone")

    @property
    def key(self) -> tuple[str, str]:
        return (self.type, self.head)


class CensusChange(BaseModel):
    """A pair whose verdict is not the baseline's."""

    type: str
    head: str
    before: CensusVerdict
    after: CensusVerdict
    command: str


class Census(BaseModel):
    """Every pair judged, and under what."""

    schema_version: int = CENSUS_SCHEMA_VERSION
    gaverify_version: str
    transformers_version: str
    torch_version: str
    date: str = Field(description="UTC date the census finished, YYYY-MM-DD")
    command: str | None = Field(None, description="the command line that made it, when known")
    jobs: int
    wall_s: float
    cached: int = Field(0, description="rows taken from the cache of an earlier census")
    planned: int = Field(description="pairs selected; fewer rows when interrupted")
    interrupted: bool = False
    exit_code: int = 0
    rows: list[CensusRow]
    changes: list[CensusChange] | None = Field(
        None, description="with --baseline: the pairs whose verdict changed"
    )

    def counts(self) -> dict[CensusVerdict, int]:
        """Rows per verdict, in VERDICT_ORDER."""
        return {v: sum(r.verdict == v for r in self.rows) for v in VERDICT_ORDER}


def compare(baseline: Census, current: Census) -> list[CensusChange]:
    """The pairs judged in both whose verdict differs, in the current order."""
    before = {row.key: row.verdict for row in baseline.rows}
    return [
        CensusChange(
            type=row.type,
            head=row.head,
            before=before[row.key],
            after=row.verdict,
            command=row.command,
        )
        for row in current.rows
        if row.key in before and before[row.key] != row.verdict
    ]
