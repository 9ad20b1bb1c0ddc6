"""The pytest plugin, run by pytest's own pytester: fixture, marker, --gaverify-json."""

from __future__ import annotations

from gaverify.report.formats import load_results
from tests.conftest import small_scenario

pytest_plugins = ["pytester"]
# Runs that train go in a subprocess: pytester's in-process runs forget the
# modules imported during them, and torch cannot be imported twice.

# A scenario that runs in about a second, as a mapping a test file can hold.
SMALL = repr(small_scenario(steps=1, batch={"accumulation": [2]}).model_dump(mode="json"))


def test_a_fresh_project_gates_on_the_fixture(pytester):
    """The issue's acceptance test, verbatim, in a subprocess: the plugin is
    found through its entry point, as in any project that installs gaverify."""
    pytester.makepyfile(
        """
        def test_ga(gaverify):
            gaverify("quickstart")

        def test_ga_expecting_naive_to_pass(gaverify):
            gaverify("quickstart", overrides={"variant_expect": {"naive": "pass"}})
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*gaverify quickstart: 1/2 variants not as expected*",
            "*naive: FAIL, expected pass (12/12 rows over tolerance)*",
            "*N=8: mean-of-means (step 1)*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_the_fixture_returns_the_result_and_reports_errors_in_one_line(pytester):
    pytester.makepyfile(
        f"""
        SMALL = {SMALL}

        def test_result(gaverify):
            result = gaverify(SMALL)
            assert result.passed and {{v.variant for v in result.variants}} == {{"naive", "fixed"}}

        def test_cannot_run(gaverify):
            gaverify(SMALL, {{"batch.sise": 4}})
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*gaverify: could not run: scenario mapping 'default': batch.sise: unknown key*"]
    )


def test_the_marker_makes_the_scenario_the_test(pytester):
    pytester.makepyfile(
        f"""
        import pytest

        SMALL = {SMALL}
        ran = []

        @pytest.mark.gaverify(SMALL, steps=1)
        def test_marked():
            ran.append(1)

        @pytest.mark.gaverify(SMALL, **{{"variant_expect.naive": "pass"}})
        def test_marked_missing_its_expectation():
            ran.append(2)  # not reached: the scenario failed the test first

        @pytest.mark.gaverify
        def test_marker_without_a_scenario():
            pass

        def test_body_ran_only_after_a_pass():
            assert ran == [1]
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*naive: FAIL, expected pass*",
            "*@pytest.mark.gaverify takes one scenario*got 0 positional arguments*",
        ]
    )


def test_gaverify_json_keeps_each_result_for_gaverify_report(pytester):
    pytester.makepyfile(
        f"""
        SMALL = {SMALL}

        def test_two(gaverify):
            gaverify(SMALL)
            gaverify(SMALL, {{"steps": 2}})
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gaverify-json", "kept")
    result.assert_outcomes(passed=1)
    kept = sorted(p.name for p in (pytester.path / "kept").iterdir())
    stem = "test_gaverify_json_keeps_each_result_for_gaverify_report.py_test_two"
    assert kept == [f"{stem}-2.json", f"{stem}.json"]
    second = load_results(pytester.path / "kept" / kept[0])
    assert [r.scenario["steps"] for r in second.results] == [2] and second.exit_code == 0


def test_the_option_and_marker_are_documented(pytester):
    result = pytester.runpytest_inprocess("--help")
    result.stdout.fnmatch_lines(["*--gaverify-json=DIR*"])
    result = pytester.runpytest_inprocess("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.gaverify(scenario, [*][*]overrides): run a gaverify scenario*"]
    )
