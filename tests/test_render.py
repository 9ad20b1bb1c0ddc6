from rich.console import Console

from gaverify.measure.results import Measurement, RunResult
from gaverify.measure.verdict import exit_code, judge_row, summarise
from gaverify.report import terminal as render
from gaverify.spec.schema import Scenario


def _result(mode="lockstep", variants=("naive", "fixed")) -> RunResult:
    scenario = Scenario(
        mode=mode, batch={"size": 8, "accumulation": [2]}, steps=1, variants=list(variants)
    )
    rows = [
        judge_row(
            Measurement(
                step=1,
                n=2,
                variant=v,
                items_full=8,
                items_micro=[3, 5],
                loss_full=2.0,
                loss_ga=2.0 + err,
                grad_norm_full=1.0,
                grad_norm_ga=1.0 + err,
                grad_rel_l2=err,
                grad_cosine=1.0 - err,
                param_max_abs=err if mode == "trajectory" else None,
            ),
            scenario.tolerance,
        )
        for v, err in zip(variants, [0.25, 1e-8], strict=True)
    ]
    groups, summaries = summarise(rows, scenario)
    return RunResult(
        gaverify_version="0",
        scenario=scenario.model_dump(mode="json"),
        environment={},
        device="cpu",
        parameters=10,
        notes=["dropout: off"],
        warnings=["N=2: careful"],
        tolerance=scenario.tolerance.limits(),
        rows=rows,
        groups=groups,
        variants=summaries,
        exit_code=exit_code(groups),
        timings={"total_s": 0.5},
    )


def _text(result: RunResult, width=300) -> str:
    console = Console(width=width, record=True, color_system=None)
    render.print_result(result, console)
    return console.export_text()


def test_report_has_table_notes_warnings_and_summaries():
    text = _text(_result())
    assert "note: dropout: off" in text
    assert "warning: N=2: careful" in text
    assert "grad" in text and "rel-L2" in text and "2.5e-01" in text
    assert "naive: FAIL, as expected (expect fail): 1/1 rows over tolerance" in text
    assert "over tolerance: cosine_distance, grad_norm_rel, grad_rel_l2, loss_rel" in text
    assert "fixed: PASS, as expected" in text
    assert "OK: 2/2 variants as expected (exit 0)" in text
    assert "|Δp|" not in text


def test_lockstep_table_fits_an_80_column_terminal():
    table = render.result_table(_result())
    assert Console(width=200).measure(table).maximum <= 80


def test_trajectory_table_adds_parameter_drift():
    assert "|Δp|" in _text(_result("trajectory"))


def test_progress_bar_stays_silent_off_a_terminal():
    bar = render.ProgressBar(enabled=True)  # pytest's stderr is not a TTY
    bar.start(3)
    for _ in range(3):
        bar.advance("x")
    bar.close()
    assert not bar.enabled and bar._bar is None


def test_user_losses_show_their_function_name_in_the_table_and_full_path_below():
    result = _result(variants=("naive", "my_pkg.losses:token_mean"))
    table = render.result_table(result)
    assert Console(width=200).measure(table).maximum <= 80
    text = _text(result)
    assert " token_mean " in text and "my_pkg.losses:token_mean: PASS" in text


def test_a_scenario_stating_its_verdict_is_told_whether_the_run_agrees():
    result = _result()  # exit 0: a pass
    assert "verdict" not in _text(result).splitlines()[-1]  # a per-variant expect says nothing
    result.scenario["expect"] = "pass"
    assert "verdict pass: as the scenario states (expect: pass)" in _text(result)
    result.scenario["expect"] = "fail"
    assert "verdict pass: NOT as the scenario states (expect: fail)" in _text(result)
