"""Judging one census pair, in the process that calls it.

The pair runs as the bundled `census` scenario (float64; float32 when the
model cannot run in float64) and its Result becomes a CensusRow: PASS, FAIL
with the diagnosed pattern, or why it could not be built or run, in one
line. Whatever the model raises is a row, never a crash of the census.
"""

from __future__ import annotations

import time

from gaverify.accumulation.variants import trainer_scales_loss
from gaverify.api import verify
from gaverify.api.result import Result
from gaverify.census.pairs import HEADS, SCENARIO, Pair
from gaverify.errors import GaverifyError, ModelBuildError, root_cause
from gaverify.measure.census import CensusRow
from gaverify.tasks.heads import TASKS

DTYPES = ("float64", "float32")  # float64 first: the tightest comparison a model allows


def judge(pair: Pair) -> CensusRow:
    """Run `pair` and return its row."""
    start = time.monotonic()
    reasons: list[str] = []
    for dtype in DTYPES:
        try:
            result = verify(SCENARIO, pair.overrides(dtype))
        except ModelBuildError as exc:
            return _row(pair, dtype, start, "cannot build", detail=_one_line(exc))
        except Exception as exc:  # the model's own code failed: that is the finding
            reasons.append(_one_line(exc))
            continue
        row = _judged(pair, dtype, start, result)
        if reasons:  # say why it is not float64
            row.detail = "; ".join([row.detail, f"float64: {reasons[0]}"]).strip("; ")
        return row
    # the same failure in both dtypes is the model's, whatever the dtype: say it once
    same = len(set(reasons)) == 1
    detail = (
        reasons[0] if same else "; ".join(f"{d}: {r}" for d, r in zip(DTYPES, reasons, strict=True))
    )
    return _row(pair, DTYPES[0], start, "cannot run", detail=detail)


def _judged(pair: Pair, dtype: str, start: float, result: Result) -> CensusRow:
    summary = result.variants[0]
    if summary.verdict not in ("pass", "fail"):  # NaN or inf: nothing to compare
        why = "the loss or gradient is not finite (NaN or inf) in this tiny model"
        return _row(pair, dtype, start, "cannot run", detail=why)
    patterns = list(dict.fromkeys(d.pattern for d in result.diagnoses))
    detail = result.diagnoses[0].detail if result.diagnoses else ""
    return _row(
        pair,
        dtype,
        start,
        summary.verdict,
        pattern=", ".join(patterns) or None,
        detail=detail,
        worst=summary.worst,
        loss_ratio=_loss_ratio(result),
        parameters=result.run.parameters,
    )


def _loss_ratio(result: Result) -> float | None:
    """Logged loss with the largest N over the full batch's, at the first
    step: 1 for a head that trains exactly, about N for one that ignores the count."""
    first = [r for r in result.run.rows if r.step == 1]
    if not first:
        return None
    last = max(first, key=lambda r: r.n)
    return round(last.loss_ga / last.loss_full, 4) if last.loss_full else None


def _row(pair: Pair, dtype: str, start: float, verdict: str, **fields) -> CensusRow:
    model_class, scales = head_class(pair)
    return CensusRow(
        type=pair.type,
        head=pair.head,
        verdict=verdict,
        dtype=dtype,
        model_class=model_class,
        scales_loss=scales,
        seconds=round(time.monotonic() - start, 2),
        command=pair.command(dtype),
        **fields,
    )


def unfinished(pair: Pair, why: str, seconds: float) -> CensusRow:
    """The row of a pair whose run never finished (timed out, or its process died)."""
    return CensusRow(
        type=pair.type,
        head=pair.head,
        verdict="cannot run",
        detail=why,
        seconds=round(seconds, 2),
        command=pair.command(),
    )


def head_class(pair: Pair) -> tuple[str | None, bool | None]:
    """The head's class name, and whether the Trainer hands it
    num_items_in_batch and then skips its own division by N."""
    import transformers
    from transformers.models.auto import modeling_auto

    name = getattr(modeling_auto, HEADS.get(pair.head)).get(pair.type)
    try:
        cls = getattr(transformers, name) if isinstance(name, str) else None
    except Exception:  # a class needing a package that is not installed
        cls = None
    if cls is None:
        return (name if isinstance(name, str) else None), None
    counted = TASKS.get(pair.head).label_inputs is None  # the Trainer counts `labels` only
    return name, counted and trainer_scales_loss(cls)


def _one_line(exc: BaseException) -> str:
    """A GaverifyError's own first line, else `Type: message` of the root cause."""
    if isinstance(exc, GaverifyError):
        return exc.lines()[0][:300]
    cause = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    return f"{type(cause).__name__}: {root_cause(exc)}"[:300]
