"""A Census as a terminal table, summary lines, and a Markdown page.

Rendered from the typed Census alone (measure/census.py), so the page
committed as docs/census-<version>.md and the terminal agree with the JSON.
The Markdown groups pairs by verdict; every FAIL row carries the one-line
command that reproduces it alone.
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gaverify.measure.census import VERDICT_ORDER, Census, CensusRow
from gaverify.output import write_atomic

STYLES = {"pass": "bold green", "fail": "bold red", "cannot run": "yellow", "cannot build": "dim"}


def _grad(row: CensusRow) -> str:
    value = row.worst.get("grad_rel_l2")
    return "-" if value is None else f"{value:.1e}"


def _ratio(row: CensusRow) -> str:
    return "-" if row.loss_ratio is None else f"x{row.loss_ratio:.2f}"


def _counted(row: CensusRow) -> str:
    return {True: "yes", False: "no", None: "-"}[row.scales_loss]


def _why(row: CensusRow) -> str:
    return row.pattern or row.detail if row.verdict != "pass" else ""


def census_table(census: Census, width: int = 100) -> Table:
    """One line per pair: verdict, dtype, worst gradient error, logged-loss
    ratio, and the pattern or reason, cut to fit `width` columns (whole in
    the JSON and Markdown)."""
    cells = [
        [
            escape(row.type),
            row.head,
            f"[{STYLES[row.verdict]}]{row.verdict.upper()}[/]",
            row.dtype,
            _grad(row),
            _ratio(row),
            escape(_why(row)),
        ]
        for row in census.rows
    ]
    headers = ("model type", "head", "verdict", "dtype", "rel-L2", "loss", "pattern / reason")
    plain = [[Text.from_markup(cell).plain for cell in row] for row in cells]
    widths = [max([len(h), *(len(row[i]) for row in plain)]) for i, h in enumerate(headers)]
    spare = width - sum(widths[:-1]) - 3 * len(headers)  # padding each side, a divider
    widths[-1] = min(widths[-1], max(14, spare))
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    for header, size in zip(headers, widths, strict=True):
        table.add_column(header, no_wrap=True, overflow="ellipsis", width=size)
    for row in cells:
        table.add_row(*row)
    return table


def summary_lines(census: Census) -> list[str]:
    """The counts, how long it took, and (with a baseline) what changed."""
    counts = ", ".join(f"{n} {v.upper()}" for v, n in census.counts().items())
    lines = [
        f"census of transformers {census.transformers_version}: {len(census.rows)} of "
        f"{census.planned} pairs ({counts}) in {census.wall_s:.0f} s with {census.jobs} "
        f"job(s); {census.cached} from the cache"
    ]
    if census.interrupted:
        lines.append(f"INTERRUPTED: {census.planned - len(census.rows)} pairs not judged")
    if census.changes is not None:
        lines.append(f"against the baseline: {len(census.changes)} verdict(s) changed")
        for change in census.changes:
            lines.append(
                f"  {change.type} {change.head}: {change.before.upper()} -> "
                f"{change.after.upper()}  ({change.command})"
            )
    return lines


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + [
        "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in rows
    ]


def _by_head(census: Census) -> list[str]:
    heads = list(dict.fromkeys(r.head for r in census.rows))
    rows = []
    for head in heads:
        counts = [
            sum(r.head == head and r.verdict == v for r in census.rows) for v in VERDICT_ORDER
        ]
        rows.append([head, *map(str, counts), str(sum(counts))])
    return _table(["head", *(v.upper() for v in VERDICT_ORDER), "pairs"], rows)


def _section(verdict: str, rows: list[CensusRow]) -> list[str]:
    lines = [f"## {verdict.upper()} ({len(rows)})", ""]
    if verdict == "fail":
        for pattern, group in groupby(
            sorted(rows, key=lambda r: r.pattern or ""), lambda r: r.pattern
        ):
            members = list(group)
            lines.append(f"- `{pattern}` ({len(members)}): {members[0].detail}")
        lines.append("")
        lines += _table(
            ["model type", "head", "class", "count passed", "loss", "pattern", "reproduce"],
            [
                [r.type, r.head, r.model_class or "-", _counted(r), _ratio(r), r.pattern or "-",
                 f"`{r.command}`"]
                for r in rows
            ],
        )  # fmt: skip
    elif verdict == "pass":
        for head, group in groupby(sorted(rows, key=lambda r: r.head), key=lambda r: r.head):
            names = [r.type + ("" if r.dtype == "float64" else f" ({r.dtype})") for r in group]
            lines.append(f"- **{head}** ({len(names)}): {', '.join(names)}")
    else:
        lines += _table(
            ["model type", "head", "reason"], [[r.type, r.head, r.detail] for r in rows]
        )
    return [*lines, ""]


ABOUT = """\
Each row is one model type's head, built tiny from the type's own default
config (random init: width 32, 2 layers, 4 heads, vocabulary 512; other keys
as released) and trained on variable-length synthetic data (batch 8,
accumulation 2 and 4, 2 lockstep steps, float64 unless the model cannot). The
loss is the model's own, called as the installed `transformers.Trainer`
calls it: `num_items_in_batch` passed when the model takes loss kwargs ("count
passed": the Trainer then skips its own division by N), the loss divided by N
otherwise. Each accumulated gradient is compared with the same model's loss on
the full batch. FAIL means the head does not train as it would on the full
batch with accumulation; the pattern is gaverify's diagnosis of how, and
"loss" is the logged loss with N = 4 over the full batch's (x1.00 when exact,
about x4 when the head ignores the count it is given). These are
measurements of tiny random-init models on synthetic data, nothing more: a
model whose real checkpoint needs a custom collator or inputs beyond
`input_ids` may behave differently in real training."""


def census_markdown(census: Census) -> str:
    """The census as a Markdown page: how it was made, counts per head, then
    the pairs grouped by verdict (FAIL first, each with its command)."""
    made = f"`{census.command}`" if census.command else "`gaverify census`"
    lines = [
        f"# Gradient accumulation census: transformers {census.transformers_version}",
        "",
        f"Made on {census.date} with {made} (gaverify {census.gaverify_version}, torch "
        f"{census.torch_version}, {census.jobs} job(s), {census.wall_s / 60:.1f} min"
        + (f", {census.cached} rows from the cache" if census.cached else "")
        + ").",
        "",
    ]
    lines += [ABOUT, ""]
    if census.interrupted:
        lines += [f"**Interrupted**: {len(census.rows)} of {census.planned} pairs judged.", ""]
    lines += [*_by_head(census), ""]
    for verdict in VERDICT_ORDER:
        rows = [r for r in census.rows if r.verdict == verdict]
        if rows:
            lines += _section(verdict, rows)
    return "\n".join(lines).rstrip() + "\n"


def write_census(census: Census, paths: dict[str, Path | None]) -> list[Path]:
    """Write the census as each requested format ("json", "markdown" -> path,
    None: not requested); returns the paths written."""
    render = {
        "json": lambda: census.model_dump_json(indent=1) + "\n",
        "markdown": lambda: census_markdown(census),
    }
    written = []
    for fmt, path in paths.items():
        if path is not None:
            write_atomic(path, render[fmt]())
            written.append(path)
    return written
