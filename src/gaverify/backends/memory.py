"""The resource guard: will a run fit in memory? Answered before it trains.

A run holds parameter-sized tensors (the model, its gradient, the
optimizer's state, and what its backend keeps: the lockstep reference and
shared buffers, a copy per trajectory run, the Trainer's saved references)
and, at its peak, the activations of the full batch's forward pass. This
module adds those up from the built model and the scenario, compares the sum
with 95 % of the memory the device has free (allocators fragment), and
refuses a run that cannot fit with a message giving both figures, instead
of letting the kernel kill it (or CUDA raise) halfway through. The estimate
is deliberately plain arithmetic (documented in the README) and errs high;
`memory_check: false` skips it.

A backend that can trade buffers for time or exactness (the reference
backend's lockstep plans: shared, in-turn, sketched) declares its plans; with
`memory_plan: auto` the guard takes the first that fits and says so. A run
that records a tape on disk (trajectory) is checked against the free disk.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gaverify.errors import GaverifyError
from gaverify.model.optim import STATE_SLOTS
from gaverify.spec.backends import BACKENDS

GIB = 1 << 30
# Activation elements kept per token per layer for the backward: Korthikanti
# et al. (2022) count 34*h bytes at 2 bytes an element for a transformer layer
# (17 elements of the hidden size), plus 2.5 per attention head and position.
PER_TOKEN_HIDDEN, PER_HEAD_POSITION = 17, 2.5
LOGIT_COPIES = 3  # logits, their float32 log-softmax, and its gradient
OVERHEAD = 0.5 * GIB  # the interpreter, torch and transformers themselves
TOKEN_BYTES = 40  # a token id in a Python list of samples (pointer + int object)
SIGN_BYTES = 1  # per trainable element: the diagnosis sketch's cached random signs (int8)
HEADROOM = 0.95  # of the free memory a run may plan to fill: allocators fragment


@dataclass(frozen=True)
class Estimate:
    """What a run is expected to need, in bytes, and its parts."""

    state: int  # parameter-sized tensors, over all processes
    activations: int  # the full batch's forward pass, kept for the backward
    resident: int  # already allocated: the built model in this process
    data: int  # the samples, as token lists (at most samples x longest)
    disk: int = 0  # a tape written to the temporary folder
    plan: str | None = None  # the lockstep plan it was counted for (None: no choice)
    passed_over: list[str] = field(default_factory=list)  # plans that did not fit, and why

    @property
    def needed(self) -> int:
        """Bytes still to be allocated."""
        return self.state + self.activations + self.data + OVERHEAD - self.resident


def estimate(scenario: Any, model: Any, processes: int = 1) -> Estimate:
    """The memory `scenario` will take with `model` built (see the module docstring)."""
    params = list(model.parameters())
    size = sum(p.numel() * p.element_size() for p in params)
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    opts = scenario.optimizer.options
    backend = BACKENDS.get(scenario.backend)
    copies = backend.copies(scenario, STATE_SLOTS[scenario.optimizer.name](opts))
    signs = SIGN_BYTES * sum(p.numel() for p in params if p.requires_grad)
    state = processes * (size + copies * trainable + signs)
    resident = 0 if params and params[0].is_meta else size  # a shapes-only model holds nothing
    data = scenario.data.samples * scenario.data.length.max * TOKEN_BYTES
    element = params[0].element_size() if params else 4
    disk = backend.tape(scenario) * size if backend.tape else 0
    plan = scenario.memory_plan if scenario.memory_plan != "auto" else None
    return Estimate(state, _activations(scenario, model, element), resident, data, disk, plan)


def _activations(scenario: Any, model: Any, element: int) -> int:
    config = getattr(model, "config", None)
    width = getattr(config, "hidden_size", None)
    layers = getattr(config, "num_hidden_layers", None)
    heads = getattr(config, "num_attention_heads", None) or 1
    seq = scenario.data.length.max
    tokens = scenario.batch.size * seq
    total = 0
    if width and layers:
        per_token = PER_TOKEN_HIDDEN * width + PER_HEAD_POSITION * heads * seq
        total += int(layers * tokens * per_token * element)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    outputs = getattr(head, "out_features", 0) or 0
    total += tokens * outputs * 4 * LOGIT_COPIES  # the loss upcasts logits to float32
    return total


def available(device: str) -> int | None:
    """Bytes free for this process on `device` (None: cannot tell)."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info()[0])
    free = _meminfo_available()
    limit = _cgroup_room()
    options = [b for b in (free, limit) if b is not None]
    return min(options) if options else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_room() -> int | None:
    """A container's memory limit less what it already uses (cgroup v2)."""
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((base / "memory.current").read_text())
    except (OSError, ValueError):
        return None


def check(scenario: Any, model: Any, *, device: str, processes: int = 1) -> Estimate:
    """Refuse (GaverifyError, exit 2) a run whose estimate exceeds the free
    memory of `device`; return the estimate otherwise. W processes share the
    machine's memory, but on CUDA each rank has a GPU of its own: there the
    check is per device."""
    free = available(device)
    passed_over: list[str] = []
    for plan in plans(scenario):
        trial = scenario if plan is None else scenario.model_copy(update={"memory_plan": plan})
        guess = estimate(trial, model, 1 if device.startswith("cuda") else processes)
        guess = replace(guess, passed_over=list(passed_over))
        if not scenario.memory_check or free is None or guess.needed <= free * HEADROOM:
            break
        passed_over.append(f"{plan} needs about {_size(guess.needed)}")
    if scenario.memory_check and free is not None and guess.needed > free * HEADROOM:
        raise GaverifyError(
            f"memory: this run needs about {_size(guess.needed)} more on {device} "
            f"(parameter-sized state {_size(guess.state)}, activations "
            f"{_size(guess.activations)}, data {_size(guess.data)}, torch itself "
            f"{_size(OVERHEAD)}) but {_size(free)} is free (a run may fill "
            f"{HEADROOM:.0%} of it); lower batch.size or data.length.max, use a smaller "
            "model, or set memory_check: false to try anyway"
            + (f" (lockstep plans tried: {'; '.join(passed_over)})" if len(passed_over) > 1 else "")
        )
    room = shutil.disk_usage(tempfile.gettempdir()).free
    if scenario.memory_check and guess.disk > room:
        raise GaverifyError(
            f"memory: mode trajectory records the reference run on a tape of about "
            f"{_size(guess.disk)} in {tempfile.gettempdir()} (2 x parameters x steps) but "
            f"{_size(room)} is free there; set TMPDIR to a bigger disk, lower steps, or use "
            "mode: lockstep"
        )
    return guess


def plans(scenario: Any) -> list[str | None]:
    """The lockstep plans the guard may choose from, in order: the one the
    scenario forces, every plan of its backend (auto), or none to choose."""
    if scenario.memory_plan != "auto":
        return [scenario.memory_plan]
    offered = BACKENDS.get(scenario.backend).plans
    return list(offered) if offered and scenario.mode == "lockstep" else [None]


def _size(n: int) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / (1 << 20):.0f} MiB"
