"""`make bench`: start-up and run times of the CLI, and the noise floor that
the default tolerances rest on. Figures go into BENCHMARKS.md by hand, with
the machine they came from.

    python benchmarks/run.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
GAVERIFY = str(Path(sys.executable).with_name("gaverify"))


def timed(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS (MiB) and exit code of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def cli_table(repeat: int) -> Table:
    table = Table(title=f"CLI (median of {repeat} runs)", title_justify="left")
    for col in ["command", "wall s", "peak RSS MiB", "exit"]:
        table.add_column(col, justify="left" if col == "command" else "right")
    commands = [
        ["--help"],
        ["validate", "quickstart"],
        ["run", "quickstart"],
        ["run", "quickstart", "--set", "mode=trajectory"],
        ["run", "quickstart", "--set", "tolerance=auto"],
        ["run", "trainer", "--set", "tolerance=auto"],
        ["run", "ddp"],  # 2 processes; RSS is the largest single process's
        ["run", "trainer-ddp"],
    ]
    for args in commands:
        runs = [timed([GAVERIFY, *args]) for _ in range(repeat)]
        table.add_row(
            "gaverify " + " ".join(args),
            f"{statistics.median(r[0] for r in runs):.2f}",
            f"{statistics.median(r[1] for r in runs):.0f}",
            ",".join(sorted({str(r[2]) for r in runs})),
        )
    return table


def noise_table() -> Table:
    """Worst divergence of each variant on the quickstart data, by dtype and
    mode: a correct (fixed) loop shows pure rounding noise."""
    from gaverify.loading import load_scenario
    from gaverify.runner import run_scenario

    table = Table(title="noise floor on quickstart (worst over all rows)", title_justify="left")
    for col in ["dtype", "mode", "variant", "loss rel", "grad rel-L2", "1-cos", "max |Δp|"]:
        table.add_column(col, justify="right")
    for dtype in ["float64", "float32", "bfloat16"]:
        for mode in ["lockstep", "trajectory"]:
            scenario = load_scenario(
                ROOT / "scenarios/quickstart.yaml", [f"dtype={dtype}", f"mode={mode}"]
            )
            result = run_scenario(scenario)
            for s in result.variants:
                w = s.worst
                table.add_row(
                    dtype,
                    mode,
                    s.variant,
                    f"{w['loss_rel']:.1e}",
                    f"{w['grad_rel_l2']:.1e}",
                    f"{w['cosine_distance']:.1e}",
                    f"{w['param_max_abs']:.1e}" if "param_max_abs" in w else "-",
                )
    return table


def diagnosis_table() -> Table:
    """What the diagnosis costs: time spent fitting diverging gradients
    (micro-batch backward passes and sketches) within whole runs."""
    from gaverify import sketch
    from gaverify.loading import load_scenario
    from gaverify.runner import run_scenario

    spent = [0.0]
    fit = sketch.GradientFitter.fit

    def timed_fit(self, *args, **kwargs):
        start = time.perf_counter()
        fit(self, *args, **kwargs)
        spent[0] += time.perf_counter() - start

    table = Table(title="diagnosis cost (in-process)", title_justify="left")
    for col in ["scenario", "parameters", "diagnoses", "run s", "fitting s"]:
        table.add_column(col, justify="right")
    sketch.GradientFitter.fit = timed_fit
    try:
        for name in ["quickstart", "trainer-masked-lm", "pretrained-bert"]:
            spent[0] = 0.0
            scenario = load_scenario(ROOT / f"scenarios/{name}.yaml", [])
            start = time.perf_counter()
            result = run_scenario(scenario)
            total = time.perf_counter() - start
            table.add_row(name, f"{result.parameters:,}", str(len(result.diagnoses)),
                          f"{total:.2f}", f"{spent[0]:.2f}")  # fmt: skip
    finally:
        sketch.GradientFitter.fit = fit
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    console = Console(width=120)
    console.print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    console.print(cli_table(args.repeat))
    console.print(noise_table())
    console.print(diagnosis_table())


if __name__ == "__main__":
    main()
