"""The Markdown bug report: it renders, reads on its own and reproduces the run."""

import re

import yaml
from markdown_it import MarkdownIt

from gaverify.report.markdown import markdown_report
from gaverify.runner import run_scenario
from gaverify.spec.schema import Scenario
from tests.conftest import small_scenario


def _report(**fields):
    result = run_scenario(small_scenario(batch={"accumulation": [2, 4]}, **fields))
    result.command = "gaverify run my.yaml --set steps=2"
    return result, markdown_report(result)


def test_the_report_renders_as_markdown_with_its_tables_and_code():
    _, text = _report()
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    kinds = [t.type for t in tokens]
    assert kinds.count("table_open") == 3  # verdicts, per step, tolerances
    fences = [t.info for t in tokens if t.type == "fence"]
    assert fences == ["sh", "yaml"]
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert headings[1:] == [
        "Verdict", "Diagnosis", "Per step", "Notes", "Tolerances", "Reproduce", "Environment"
    ]  # fmt: skip


def test_the_report_says_what_failed_and_why():
    result, text = _report()
    assert text.startswith("# gaverify: `default` OK (exit 0)")
    assert "| `naive` | 4 | FAIL | fail | yes | 2/2 |" in text
    assert "- **`naive`, N=4**: `mean-of-means` (step 1)" in text
    assert len(re.findall(r"^\| \d \| [24] \| `(naive|fixed)` \|", text, re.M)) == len(result.rows)
    assert "**" in text.split("## Per step")[1].split("## Notes")[0]  # failing cells in bold
    assert "- transformers: " in text and "- torch: " in text  # environment, as gaverify env


def test_the_embedded_scenario_reproduces_the_run():
    result, text = _report(seed=3)
    block = text.split("```yaml\n")[1].split("```")[0]
    again = Scenario.model_validate(yaml.safe_load(block))
    assert again.model_dump(mode="json") == result.scenario
    assert "Original command: `gaverify run my.yaml --set steps=2`" in text


def test_auto_tolerances_show_their_noise():
    _, text = _report(tolerance="auto", steps=1)
    assert "`tolerance: auto`: 10 × the largest divergence of fixed-reordered" in text
    assert "| measured noise |" in text


def test_the_settings_in_force_and_the_power_are_stated():
    _, text = _report(precision="bf16-mixed", model={"gradient_checkpointing": True}, steps=1)
    assert "1 steps, float32, bf16-mixed, gradient checkpointing on cpu" in text
    assert "power: normalisation weights off by a common factor above 0.005 (0.5 %)" in text
