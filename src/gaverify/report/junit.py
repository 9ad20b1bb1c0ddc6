"""Results as JUnit XML, the report format CI systems show as test results.

One <testsuite> per scenario, one <testcase> per (N, variant): it passes
when that group's verdict is the one the scenario expects, and otherwise
carries a <failure> naming the verdict, the worst metrics against their
tolerances, every row over tolerance (step and the metrics it exceeded) and
the diagnosis, so a CI page points at the step and says what went wrong.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from gaverify.measure.results import RunResult
from gaverify.report.failures import group_failure


def junit_xml(results: Sequence[RunResult]) -> str:
    """The JUnit XML text of one or more results."""
    suites = ET.Element("testsuites")
    for result in results:
        _suite(suites, result)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _suite(parent: ET.Element, result: RunResult) -> None:
    name = result.scenario.get("name", "default")
    suite = ET.SubElement(
        parent,
        "testsuite",
        name=f"gaverify {name}",
        tests=str(len(result.groups)),
        failures=str(sum(not g.met for g in result.groups)),
        errors="0",
        time=f"{result.timings.get('total_s', 0.0):.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    facts = {
        "backend": result.scenario.get("backend", ""),
        "device": result.device,
        **{key: str(value) for key, value in result.settings.items()},
    }
    if result.power:
        facts["detectable_weight_error"] = f"{result.power.gradient:.2g}"
    for key, value in {**facts, **result.environment}.items():
        ET.SubElement(properties, "property", name=key, value=str(value))
    for group in result.groups:
        case = ET.SubElement(
            suite, "testcase", classname=f"gaverify.{name}", name=f"N={group.n} {group.variant}"
        )
        if not group.met:
            message, details = group_failure(result, group)
            failure = ET.SubElement(case, "failure", message=message, type=group.verdict)
            failure.text = "\n".join(details)
