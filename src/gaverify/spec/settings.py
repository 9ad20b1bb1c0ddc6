"""The numeric settings a run is judged under: precision, checkpointing, compile.

They are read once, here, from the scenario's own fields (`precision`,
`model.gradient_checkpointing`, `model.compile`) or, on the trainer
backend, from the TrainingArguments switches that mean the same
(`bf16`, `fp16`, `gradient_checkpointing`, `torch_compile`), so the
tolerances, `tolerance: auto`'s calibration and the reports all see what is
in force however the user spelled it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gaverify.model.precision import PRECISIONS

if TYPE_CHECKING:
    from gaverify.spec.schema import Scenario


def precision_name(value: Any) -> Any:
    """`precision: 32` (a YAML int) read as "32"; names are checked by the registry."""
    value = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(value, str):
        PRECISIONS.get(value)
    return value


def settings_problem(scenario: Scenario) -> str | None:
    """Settle the settings from trainer.args where the trainer backend reads
    them (noting what was read), and return what is inconsistent, if anything."""
    if scenario.backend == "trainer":
        problem = _from_trainer_args(scenario)
        if problem:
            return problem
    if scenario.precision != "32" and scenario.dtype != "float32":
        return (
            f"precision: {scenario.precision} autocasts over float32 master weights, so dtype "
            f"must be float32, not {scenario.dtype}"
        )
    return None


def _from_trainer_args(scenario: Scenario) -> str | None:
    args, model = scenario.trainer.args, scenario.model
    switched = [name for name, p in PRECISIONS.items() if p.trainer_args and _on(args, p)]
    if len(switched) > 1:
        return "trainer.args: bf16 and fp16 are both true; set one (or precision:)"
    if switched:
        name = switched[0]
        if scenario.precision not in ("32", name):
            return (
                f"trainer.args: {', '.join(PRECISIONS.get(name).trainer_args)} means precision "
                f"{name}, but precision is {scenario.precision}"
            )
        if scenario.precision != name:
            scenario.precision = name
            scenario._notes.append(f"precision: {name}, from trainer.args")
    if args.get("gradient_checkpointing") and not model.gradient_checkpointing:
        model.gradient_checkpointing = True
        scenario._notes.append("model.gradient_checkpointing: on, from trainer.args")
    if args.get("torch_compile") or args.get("torch_compile_backend"):
        compiler = args.get("torch_compile_backend") or "inductor"
        if compiler not in ("aot_eager", "inductor"):
            return (
                f"trainer.args: torch_compile_backend {compiler}: gaverify runs aot_eager or "
                "inductor (model.compile)"
            )
        if model.compile not in (None, compiler):
            return (
                f"trainer.args: torch_compile_backend {compiler} but model.compile is "
                f"{model.compile}; set one"
            )
        model.compile = compiler
    return None


def _on(args: dict[str, Any], precision: Any) -> bool:
    return any(args.get(key) is True for key in precision.trainer_args)


def settings_of(scenario: Scenario) -> dict[str, Any]:
    """What the reports state: the settings in force."""
    return {
        "precision": scenario.precision,
        "gradient_checkpointing": scenario.model.gradient_checkpointing,
        "compile": scenario.model.compile,
    }
