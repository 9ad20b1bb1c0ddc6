"""`make bench`: start-up and run times of the CLI, the noise floor that the
default tolerances rest on, the diagnosis' cost, and gaverify against the
same check written by hand (benchmarks/handwritten.py) on a GPT-2-small-sized
model. Figures go into BENCHMARKS.md by hand, with the machine they came from.

    python benchmarks/run.py [--repeat 5] [--versus-repeat 1] [--only versus]
    python benchmarks/run.py --only census-full   # every census pair, --jobs 1 and 2
    python benchmarks/run.py --only scaling       # issue 28: 10M to 1.1B parameters
    python benchmarks/run.py --only ranks         # issue 25: per-rank memory, fsdp vs ddp
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
GAVERIFY = str(Path(sys.executable).with_name("gaverify"))


def timed(
    argv: list[str], env: dict[str, str] | None = None, stdout=subprocess.DEVNULL, stderr=None
):
    """Wall seconds, peak RSS (MiB) and exit code of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=stdout, stderr=stderr or subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
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
        ["run", "trainer", "--set", "trainer.args={bf16: true}", "--set", "tolerance=auto"],
        ["run", "bf16-mixed"],
        ["run", "gradient-checkpointing"],
        ["run", "compile"],
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
    from gaverify.runner import run_scenario
    from gaverify.spec.loading import load_scenario

    table = Table(title="noise floor on quickstart (worst over all rows)", title_justify="left")
    for col in ["precision", "mode", "variant", "loss rel", "grad rel-L2", "1-cos", "max |Δp|"]:
        table.add_column(col, justify="right")
    settings = ["dtype=float64", "dtype=float32", "dtype=bfloat16"]
    settings += ["precision=bf16-mixed", "precision=fp16-mixed"]
    for setting in settings:
        for mode in ["lockstep", "trajectory"]:
            scenario = load_scenario(ROOT / "scenarios/quickstart.yaml", [setting, f"mode={mode}"])
            result = run_scenario(scenario)
            for s in result.variants:
                w = s.worst
                table.add_row(
                    setting.partition("=")[2],
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
    from gaverify.measure import fit as sketch
    from gaverify.runner import run_scenario
    from gaverify.spec.loading import load_scenario

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


def _worst(path: Path) -> dict[str, float]:
    """Worst gradient rel-L2 per variant, from gaverify's JSON or the script's."""
    data = json.loads(path.read_text())
    if "worst_grad_rel_l2" in data:
        return data["worst_grad_rel_l2"]
    worst: dict[str, float] = {}
    for s in data["variants"]:
        worst[s["variant"]] = max(worst.get(s["variant"], 0.0), s["worst"]["grad_rel_l2"])
    return worst


def versus_table(repeat: int) -> Table:
    """Issue 8's benchmark: the same lockstep check of naive and fixed at N in
    {2, 4, 8} on GPT-2 small (124M, random init, batch 8, <= 128 tokens, 2
    steps, CPU), by gaverify and by the hand-written script, one after the
    other in each round so both see the same machine. The floor is one plain
    training step (forward, backward, AdamW) of the full batch."""
    gpt2 = ["run", "benchmarks/gpt2-small.yaml", "-q", "--json"]
    script = [sys.executable, "benchmarks/handwritten.py"]
    contenders = {
        "gaverify run benchmarks/gpt2-small.yaml": ([GAVERIFY, *gpt2], {}),
        "  same, GAVERIFY_MALLOC=system": ([GAVERIFY, *gpt2], {"GAVERIFY_MALLOC": "system"}),
        "benchmarks/handwritten.py": (script, {}),
        "benchmarks/handwritten.py --floor": ([*script, "--floor"], {}),
    }
    runs: dict[str, list] = {name: [] for name in contenders}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        for _ in range(repeat):
            for name, (argv, env) in contenders.items():
                if argv[0] == GAVERIFY:  # numbers via --json; the script prints them
                    wall, rss, code = timed([*argv, str(out)], env)
                else:
                    with open(out, "w") as sink:
                        wall, rss, code = timed(argv, env, stdout=sink)
                data = json.loads(out.read_text()) if "floor" in name else _worst(out)
                runs[name].append((wall, rss, code, data))
    median = {name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
              for name, rs in runs.items()}  # fmt: skip
    base_wall, base_rss = median["benchmarks/handwritten.py"]
    floor = runs["benchmarks/handwritten.py --floor"]
    step = statistics.median(s for r in floor for s in r[3]["step_s"])
    table = Table(
        title=f"GPT-2 small, lockstep, N {{2,4,8}} x naive/fixed, 2 steps (median of {repeat}); "
        f"one plain training step: {step:.2f} s",
        title_justify="left",
    )
    for col in ["command", "wall s", "x script", "steps' worth", "peak RSS MiB", "x script",
                "exit", "worst rel-L2 naive / fixed"]:  # fmt: skip
        table.add_column(col, justify="left" if col == "command" else "right")
    for name, rs in runs.items():
        wall, rss = median[name]
        last = rs[-1][3]
        worst = "-" if "floor" in name else f"{last['naive']:.1e} / {last['fixed']:.1e}"
        table.add_row(name, f"{wall:.1f}", f"{wall / base_wall:.2f}", f"{wall / step:.0f}",
                      f"{rss:.0f}", f"{rss / base_rss:.2f}",
                      ",".join(sorted({str(r[2]) for r in rs})), worst)  # fmt: skip
    return table


SCALING = {
    "gpt2-small": "benchmarks/gpt2-small.yaml",  # issue 8's: batch 8, <= 128 tokens, N {2,4,8}
    **{name: f"benchmarks/scaling/{name}.yaml"
       for name in ["gpt2-10m", "gpt2-124m", "gpt2-350m", "llama-1b"]},
}  # fmt: skip


def scaling_table(models: list[str]) -> Table:
    """Issue 28: peak RSS and wall time of lockstep (each plan) and trajectory
    at 10M to 1.1B parameters, next to plain training steps of the same
    batches (benchmarks/plain.py). Passes: full-batch-sized backward passes
    the mode runs (lockstep: the full batch and one sweep per N a step, more
    in turn; trajectory: the reference and every run, every step). The
    time ratio leaves out the start-up both commands share (imports, model
    initialisation, data: plain.py's wall less its steps)."""
    table = Table(title="scaling: benchmarks/scaling/*.yaml (batch 4, lengths <= 64, N in "
                  "[2, 4], naive + fixed, 2 steps) and benchmarks/gpt2-small.yaml",
                  title_justify="left")  # fmt: skip
    for col in ["model", "run", "wall s", "passes", "x (passes x step)", "peak RSS MiB",
                "x plain", "exit", "plan / refusal"]:  # fmt: skip
        table.add_column(
            col, justify="left" if col in ("model", "run", "plan / refusal") else "right"
        )
    runs = [("lockstep", []), ("lockstep in-turn", ["memory_plan=in-turn"]),
            ("lockstep sketched", ["memory_plan=sketched"]),
            ("trajectory", ["mode=trajectory"])]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        for name in models:
            path = SCALING[name]
            with open(out, "w") as sink:
                wall, rss, code = timed([sys.executable, "benchmarks/plain.py", path], stdout=sink)
            floor = json.loads(out.read_text()) if code == 0 else None
            step = statistics.median(floor["step_s"]) if floor else math.nan
            # imports, model initialisation, data: what both commands spend before training
            start_up = wall - sum(floor["step_s"]) if floor else 0.0
            steps = str(len(floor["step_s"])) if floor else "-"
            table.add_row(name, "plain training steps", f"{wall:.1f}", steps, "-", f"{rss:.0f}",
                          "1.00", str(code), f"{step:.1f} s a step")  # fmt: skip
            for label, sets in runs:
                argv = [GAVERIFY, "run", path, "-q", "--json", str(out)]
                argv += [a for kv in sets for a in ("--set", kv)]
                out.unlink(missing_ok=True)
                with open(Path(tmp) / "stdout", "w") as sink:
                    wall, rss_run, code = timed(argv, stdout=sink, stderr=sink)
                passes, plan = _passes(path, label), _plan(out, Path(tmp) / "stdout")
                table.add_row(name, label, f"{wall:.1f}", str(passes),
                              f"{(wall - start_up) / (passes * step):.2f}", f"{rss_run:.0f}",
                              f"{rss_run / rss:.2f}", str(code), plan)  # fmt: skip
    return table


def _passes(path: str, label: str) -> int:
    import yaml

    spec = yaml.safe_load((ROOT / path).read_text())
    steps, ns, variants = spec["steps"], len(spec["batch"]["accumulation"]), 2
    if label == "trajectory":
        return steps * (1 + ns * variants)
    return steps * (1 + ns * (variants if "in-turn" in label else 1))


def _plan(out: Path, stdout: Path) -> str:
    """The plan a run followed, or the guard's refusal, from its JSON or output."""
    if not out.exists():
        text = stdout.read_text().strip().splitlines()
        refused = re.search(r"needs about (\S+ \S+) more .* but (\S+ \S+) is free", text[-1])
        if refused:
            return f"refused by the guard: needs {refused[1]}, {refused[2]} free"
        return text[-1][:160] if text else "no output"
    data = json.loads(out.read_text())
    if data["scenario"]["mode"] == "trajectory":
        return "one run at a time, reference on a tape"
    plan = next((n for n in data["notes"] if n.startswith("memory: lockstep plan")), "shared")
    return plan.removeprefix("memory: lockstep plan ").split(",")[0]


def ranks_table() -> Table:
    """Issue 25: every rank's peak RSS and the wall time of the same scenario
    on ddp and fsdp (2 ranks under torchrun, gaverify joining them), in each mode."""
    table = Table(title="fsdp vs ddp, 2 gloo ranks (benchmarks/ranks/sharding.yaml)",
                  title_justify="left")  # fmt: skip
    for col in ["backend", "mode", "rank 0 peak MiB", "rank 1 peak MiB", "wall s", "exit"]:
        table.add_column(col, justify="left" if col in ("backend", "mode") else "right")
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    for mode in ("lockstep", "trajectory"):
        for backend in ("ddp", "fsdp"):
            with tempfile.TemporaryDirectory() as out:
                scenario = "benchmarks/ranks/sharding.yaml"
                argv = [*torchrun, "benchmarks/ranks/peak.py", out, "run", scenario,
                        "--set", f"backend={backend}", "--set", f"mode={mode}", "-q"]  # fmt: skip
                wall, _, code = timed(argv)
                peaks = [
                    json.loads((Path(out) / f"rank{r}.json").read_text())["peak_mib"]
                    for r in (0, 1)
                ]
            table.add_row(backend, mode, *(f"{p:.0f}" for p in peaks), f"{wall:.1f}", str(code))
    return table


def census_table(full: bool) -> Table:
    """`gaverify census`, each run from an empty cache: the issue's two-type
    selection, and (`--only census-full`) every pair with --jobs 1 and 2."""
    table = Table(title="gaverify census (empty cache)", title_justify="left")
    for col in ["command", "wall s", "peak RSS MiB (largest process)", "exit"]:
        table.add_column(col, justify="left" if col == "command" else "right")
    runs = [["--types", "bert,llama", "--heads", "masked-lm,causal-lm"]]
    if full:
        runs += [["--jobs", "1"], ["--jobs", "2"]]
    for args in runs:
        with tempfile.TemporaryDirectory() as cache:
            wall, rss, code = timed([GAVERIFY, "census", *args], env={"GAVERIFY_CACHE": cache})
        table.add_row("gaverify census " + " ".join(args), f"{wall:.1f}", f"{rss:.0f}", str(code))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each CLI command")
    parser.add_argument("--versus-repeat", type=int, default=1, help="rounds of the GPT-2 race")
    parser.add_argument(
        "--only",
        choices=[
            "cli",
            "noise",
            "diagnosis",
            "versus",
            "scaling",
            "ranks",
            "census",
            "census-full",
        ],
        nargs="*",
        help="tables to run (default: all but census-full, which judges every pair twice)",
    )
    parser.add_argument("--models", nargs="*", choices=list(SCALING), default=list(SCALING),
                        help="the scaling table's models (default: all)")  # fmt: skip
    args = parser.parse_args()
    console = Console(width=160)
    console.print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    tables = {
        "cli": lambda: cli_table(args.repeat),
        "noise": noise_table,
        "diagnosis": diagnosis_table,
        "versus": lambda: versus_table(args.versus_repeat),
        "scaling": lambda: scaling_table(args.models),
        "ranks": ranks_table,
        "census": lambda: census_table(full=False),
        "census-full": lambda: census_table(full=True),
    }
    for name, table in tables.items():
        if (not args.only and name != "census-full") or name in (args.only or []):
            console.print(table())


if __name__ == "__main__":
    main()
