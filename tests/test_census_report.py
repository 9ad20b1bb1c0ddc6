"""The census rendered: table, summary lines, Markdown page, baseline changes."""

from rich.console import Console

from gaverify.measure.census import Census, CensusRow, compare
from gaverify.report.census import census_markdown, census_table, summary_lines


def _row(type_, head, verdict, **fields):
    command = f"gaverify run census --set model.type={type_} --set model.task={head}"
    return CensusRow(type=type_, head=head, verdict=verdict, command=command, **fields)


ROWS = [
    _row("llama", "causal-lm", "pass", loss_ratio=1.0, worst={"grad_rel_l2": 3e-16}),
    _row("gpt2", "causal-lm", "pass", dtype="float32"),
    _row("bert", "masked-lm", "fail", pattern="sum-of-means", loss_ratio=4.0, scales_loss=True,
         model_class="BertForMaskedLM", worst={"grad_rel_l2": 3.4}),
    _row("mamba2", "causal-lm", "cannot run", detail="RuntimeError: repeat_interleave | bad"),
    _row("gemma4", "causal-lm", "cannot build", detail="model.tiny: cannot shrink 'gemma4'"),
]  # fmt: skip


def _census(rows=ROWS, **fields):
    versions = {"gaverify_version": "0.1.0", "transformers_version": "5.24.0"}
    base = {**versions, "torch_version": "2.13.0", "date": "2026-12-03", "jobs": 2,
            "wall_s": 90.0, "planned": len(rows), "rows": rows}  # fmt: skip
    return Census(**{**base, **fields})


def test_markdown_groups_by_verdict_fail_first_with_each_fail_command():
    page = census_markdown(_census(command="gaverify census --jobs 2"))
    assert page.startswith("# Gradient accumulation census: transformers 5.24.0\n")
    assert "Made on 2026-12-03 with `gaverify census --jobs 2`" in page
    sections = [line for line in page.splitlines() if line.startswith("## ")]
    assert sections == ["## FAIL (1)", "## PASS (2)", "## CANNOT RUN (1)", "## CANNOT BUILD (1)"]
    assert (
        "| bert | masked-lm | BertForMaskedLM | yes | x4.00 | sum-of-means | "
        "`gaverify run census --set model.type=bert --set model.task=masked-lm` |"
    ) in page
    assert "- **causal-lm** (2): llama, gpt2 (float32)" in page
    assert "| mamba2 | causal-lm | RuntimeError: repeat_interleave \\| bad |" in page
    assert "| causal-lm | 0 | 2 | 1 | 1 | 4 |" in page  # counts per head


def test_table_has_a_row_per_pair_and_the_summary_counts_them():
    console = Console(width=160, record=True)
    console.print(census_table(_census()))
    text = console.export_text()
    assert len([line for line in text.splitlines() if "causal-lm" in line]) == 4
    assert "sum-of-means" in text and "x4.00" in text
    narrow = Console(width=80, record=True)
    narrow.print(census_table(_census(), narrow.width))
    lines = narrow.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines)  # one line per pair: the reason is cut
    assert any(line.startswith(" mamba2") and "CANNOT RUN" in line for line in lines)
    lines = summary_lines(_census(cached=1))
    assert lines == [
        "census of transformers 5.24.0: 5 of 5 pairs (1 FAIL, 2 PASS, 1 CANNOT RUN, "
        "1 CANNOT BUILD) in 90 s with 2 job(s); 1 from the cache"
    ]


def test_changes_against_a_baseline_name_each_pair_and_its_command():
    before = _census([_row("llama", "causal-lm", "fail"), _row("t5", "seq2seq", "pass")])
    now = _census(ROWS)
    changes = compare(before, now)
    assert [(c.type, c.head, c.before, c.after) for c in changes] == [
        ("llama", "causal-lm", "fail", "pass")
    ]  # t5 is not in this census, bert not in the baseline: neither is a change
    lines = summary_lines(_census(changes=changes))
    assert lines[1:] == [
        "against the baseline: 1 verdict(s) changed",
        "  llama causal-lm: FAIL -> PASS  "
        "(gaverify run census --set model.type=llama --set model.task=causal-lm)",
    ]


def test_an_interrupted_census_says_how_many_pairs_are_missing():
    census = _census(ROWS[:2], planned=5, interrupted=True)
    assert summary_lines(census)[1] == "INTERRUPTED: 3 pairs not judged"
    assert "**Interrupted**: 2 of 5 pairs judged." in census_markdown(census)
