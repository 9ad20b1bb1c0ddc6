"""A RunResult as JUnit XML, the report format CI systems show as test results.

One <testsuite> per run, one <testcase> per variant: it passes when the
variant's verdict is the one the scenario expects, and otherwise carries a
<failure> naming the verdict, the worst metrics and every row over tolerance
(step, N and the metrics it exceeded), so a CI page points at the step.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gaverify.results import RunResult


def junit_xml(result: RunResult) -> str:
    """The JUnit XML text of `result`."""
    name = result.scenario.get("name", "default")
    failures = sum(not s.met for s in result.variants)
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"gaverify {name}",
        tests=str(len(result.variants)),
        failures=str(failures),
        errors="0",
        time=f"{result.timings.get('total_s', 0.0):.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    facts = {"backend": result.scenario.get("backend", ""), "device": result.device}
    for key, value in {**facts, **result.environment}.items():
        ET.SubElement(properties, "property", name=key, value=str(value))
    tolerance = result.scenario.get("tolerance", {})
    for summary in result.variants:
        case = ET.SubElement(suite, "testcase", classname=f"gaverify.{name}", name=summary.variant)
        if summary.met:
            continue
        worst = ", ".join(
            f"{metric} {value:.1e} (tol {tolerance.get(metric, float('nan')):.1e})"
            for metric, value in summary.worst.items()
        )
        message = (
            f"{summary.variant}: {summary.verdict}, expected {summary.expected}; "
            f"{summary.rows_failed}/{summary.rows} rows over tolerance"
        )
        rows = [
            f"step {r.step} N={r.n}: {r.verdict}"
            + (f" ({', '.join(r.exceeded)})" if r.exceeded else "")
            for r in result.rows
            if r.variant == summary.variant and r.verdict != "pass"
        ]
        failure = ET.SubElement(case, "failure", message=message, type=summary.verdict)
        failure.text = "\n".join([f"worst: {worst}", *rows])
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
