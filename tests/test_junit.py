"""JUnit XML: one test case per variant, failures point at the steps."""

import xml.etree.ElementTree as ET

from gaverify.junit import junit_xml
from gaverify.runner import run_scenario
from tests.conftest import small_scenario


def test_unmet_expectations_are_failures_naming_steps_and_metrics():
    scenario = small_scenario(batch={"accumulation": [2]}, expect={"naive": "pass"})
    result = run_scenario(scenario)
    suite = ET.fromstring(junit_xml(result)).find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert cases["fixed"].find("failure") is None
    failure = cases["naive"].find("failure")
    assert failure.get("message").startswith("naive: fail, expected pass")
    assert "step 1 N=2: fail (" in failure.text and "grad_rel_l2" in failure.text
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["backend"] == "reference" and "transformers" in properties
