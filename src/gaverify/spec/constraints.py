"""Checks that span a scenario's sections: what no single field can check alone.

Each returns what is wrong (one line, as the user will read it) or None.
What a backend or a variant accepts is read from its declaration
(spec/backends.py, accumulation/declaration.py), so a new backend or
variant needs no new branch here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gaverify.spec.backends import BACKENDS
from gaverify.tasks.heads import TASKS

if TYPE_CHECKING:
    from gaverify.spec.schema import Scenario


def process_problem(scenario: Scenario) -> str | None:
    """What is wrong with the number of processes for this backend and batch, if anything."""
    default, least, most = BACKENDS.get(scenario.backend).processes
    spec = scenario.distributed
    if spec.processes is None:
        spec.processes = default
    w = spec.processes
    if most == 1 and w > 1:
        several = " or ".join(name for name, b in BACKENDS.items() if b.processes[2] > 1)
        return (
            f"distributed.processes: backend '{scenario.backend}' runs in one process; "
            f"use backend: {several} for several"
        )
    if w < least:
        return f"distributed.processes: backend '{scenario.backend}' needs {least} or more, not {w}"
    known = BACKENDS.get(scenario.backend).variants
    for name in scenario.variants or []:
        if name in known and known.get(name).processes > w:
            return f"variants: {name} compares counts across processes: set distributed.processes"
    for n in scenario.batch.accumulation:
        if scenario.batch.size % (w * n):
            return (
                f"batch.accumulation: N={n} on {w} processes needs batch.size divisible by "
                f"{w * n} (W x N micro-batches), not {scenario.batch.size}"
            )
    return None


def plan_problem(scenario: Scenario) -> str | None:
    """Whether the backend and mode can run the lockstep plan the scenario forces."""
    if scenario.memory_plan == "auto":
        return None
    offered = BACKENDS.get(scenario.backend).plans
    if not offered:
        with_plans = ", ".join(name for name, b in BACKENDS.items() if b.plans)
        return (
            f"memory_plan: backend '{scenario.backend}' has no lockstep plans to choose from "
            f"(backends with plans: {with_plans}); leave it auto"
        )
    if scenario.mode != "lockstep":
        return f"memory_plan: {scenario.memory_plan} is a lockstep plan; mode is {scenario.mode}"
    return None


def task_problem(scenario: Scenario) -> str | None:
    """What the task cannot do with this data or these variants, if anything."""
    task = TASKS.get(scenario.model.task)
    data = scenario.data
    if not task.columns and data.source != "synthetic":
        return f"data.source: {task.name} runs on synthetic data only, not {data.source}"
    strays = sorted(set(data.columns) - set(task.columns))
    if data.source == "synthetic" and data.columns:
        return "data.columns is not used with source: synthetic"
    if strays:
        return f"data.columns: {task.name} reads columns {list(task.columns)}, not {strays}"
    if data.source == "text" and task.columns != ("text",):
        return (
            f"data.source: a text file has no {' or '.join(task.columns[1:])} column for "
            f"{task.name}; use source: jsonl or datasets"
        )
    if data.packed and not task.packable:
        return f"data.packed: {task.name} cannot be packed (its attention sees every token)"
    smoothing = scenario.loss.label_smoothing
    if smoothing and not task.smoothable:
        return f"loss.label_smoothing: {task.name} has no cross-entropy to smooth"
    return _variant_problem(scenario)


def value_at(scenario: Scenario, key: str) -> object:
    """The value at a dotted scenario key (section.field)."""
    section, _, field = key.partition(".")
    part = getattr(scenario, section)
    # a field named after a Python keyword (trainer.class) is stored as class_
    return getattr(part, field) if hasattr(part, field) else getattr(part, f"{field}_")


def other_backends_keys(scenario: Scenario) -> str | None:
    """A key set that only another backend reads (declared in spec/backends.py)."""
    for name, backend in BACKENDS.items():
        keys = [*backend.reads, *([backend.own_variant] if backend.own_variant else [])]
        for key in keys:
            if name != scenario.backend and value_at(scenario, key):
                return f"{key} is only used with backend: {name}"
    return None


def _variant_problem(scenario: Scenario) -> str | None:
    """What a chosen variant's declaration refuses, or a key set that only a
    variant not chosen reads."""
    known = BACKENDS.get(scenario.backend).variants
    for name in scenario.variants or []:
        if name not in known:
            continue
        variant = known.get(name)
        if variant.reads and not value_at(scenario, variant.reads):
            return f"variants: {name} needs {variant.reads}: module:function"
        problem = variant.check(scenario) if variant.check else None
        if problem:
            return problem
    for backend_name, backend in BACKENDS.items():
        for name, variant in backend.variants.items():
            chosen = backend_name == scenario.backend and name in (scenario.variants or [])
            if variant.reads and value_at(scenario, variant.reads) and not chosen:
                return (
                    f"{variant.reads} is only used by the {name} variant of backend {backend_name}"
                )
    return None
