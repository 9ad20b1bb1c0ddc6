"""JUnit XML: a test case per scenario x N x variant, read by a real JUnit parser."""

from junitparser import Failure, JUnitXml

from gaverify.report.junit import junit_xml
from gaverify.runner import run_scenario
from tests.conftest import small_scenario


def _parsed(tmp_path, results):
    path = tmp_path / "junit.xml"
    path.write_text(junit_xml(results))
    return JUnitXml.fromfile(str(path))


def test_every_group_is_a_case_and_unmet_ones_fail_with_steps_metrics_and_diagnosis(tmp_path):
    scenario = small_scenario(batch={"accumulation": [2, 4]}, expect={"naive": "pass"})
    result = run_scenario(scenario)
    (suite,) = list(_parsed(tmp_path, [result]))
    assert (suite.name, suite.tests, suite.failures, suite.errors) == ("gaverify default", 4, 2, 0)
    cases = {case.name: case for case in suite}
    assert set(cases) == {"N=2 naive", "N=2 fixed", "N=4 naive", "N=4 fixed"}
    assert cases["N=2 fixed"].is_passed
    (failure,) = cases["N=4 naive"].result
    assert isinstance(failure, Failure)
    assert failure.message.startswith("N=4 naive: fail, expected pass; 2/2 rows over tolerance")
    assert "step 1: fail (" in failure.text and "grad_rel_l2" in failure.text
    assert "diagnosis: mean-of-means (step 1)" in failure.text
    properties = {p.name: p.value for p in suite.properties()}
    assert properties["backend"] == "reference" and "transformers" in properties
    assert (properties["precision"], properties["detectable_weight_error"]) == ("32", "0.0001")


def test_several_scenarios_are_several_suites(tmp_path):
    a = run_scenario(small_scenario(name="a", steps=1, batch={"accumulation": [2]}))
    b = run_scenario(small_scenario(name="b", steps=1, batch={"accumulation": [2]}))
    suites = list(_parsed(tmp_path, [a, b]))
    assert [(s.name, s.tests, s.failures) for s in suites] == [
        ("gaverify a", 2, 0),
        ("gaverify b", 2, 0),
    ]
