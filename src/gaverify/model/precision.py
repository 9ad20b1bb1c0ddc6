"""How a model computes: mixed precision, gradient checkpointing, torch.compile.

`precision:` names an entry of PRECISIONS: autocast over float32 master
weights, spelled the way each engine spells it (the Trainer's bf16/fp16,
Lightning's precision flag, torch.autocast for gaverify's own loops). The
other two settings change how the forward and backward run, not the
mathematics: `apply_settings` puts all three on a built model, so every
backend that calls the model gets them.

Autocast wraps the model's forward the way accelerate does it (a method
bound to the model), so a deep copy of the model autocasts too, and backward
runs outside it, as torch recommends.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from types import MethodType
from typing import Any

from gaverify.errors import GaverifyError
from gaverify.registry import Registry


@dataclass(frozen=True)
class Precision:
    """One `precision:` value: the autocast dtype and each engine's switch."""

    summary: str
    autocast: str | None = None  # torch dtype name under autocast; None: no autocast
    trainer_args: dict[str, bool] = field(default_factory=dict)  # TrainingArguments switches
    lightning: str | None = None  # Lightning's precision flag; None: from dtype
    cpu_engines: bool = True  # whether the Trainer and Lightning run it on the CPU


PRECISIONS: Registry[Precision] = Registry("precision")
PRECISIONS.add("32", Precision("no autocast: every operation in the scenario's dtype"))
PRECISIONS.add(
    "bf16-mixed",
    Precision(
        "autocast to bfloat16 over float32 master weights (Trainer bf16, Lightning bf16-mixed)",
        "bfloat16",
        {"bf16": True},
        "bf16-mixed",
    ),
)
PRECISIONS.add(
    "fp16-mixed",
    Precision(
        "autocast to float16 over float32 master weights (Trainer fp16, Lightning 16-mixed)",
        "float16",
        {"fp16": True},
        "16-mixed",
        # on the CPU, Lightning turns 16-mixed into bf16-mixed and the Trainer
        # trains without autocast: both refused there
        cpu_engines=False,
    ),
)


def apply_settings(
    model: Any, device: str, precision: str, checkpointing: bool, compiler: str | None
) -> list[str]:
    """Put the scenario's precision (autocast; "32" for none), gradient
    checkpointing and compile settings on `model`, in place; returns the
    notes for the report."""
    import torch

    notes = []
    if checkpointing:
        enable_checkpointing(model)
        notes.append("model: gradient checkpointing on (each layer recomputed in backward)")
    forward = type(model).forward
    dtype = PRECISIONS.get(precision).autocast
    if dtype is not None:
        device_type = torch.device(device).type
        forward = torch.autocast(device_type=device_type, dtype=getattr(torch, dtype))(forward)
    if compiler is not None:
        _check_compiler(compiler)
        forward = torch.compile(forward, backend=compiler)
        notes.append(f"model: forward compiled by torch.compile(backend={compiler!r})")
    if forward is not type(model).forward:
        # bound to the model, so a deep copy of it is bound to the copy
        model.forward = MethodType(forward, model)
    return notes


def enable_checkpointing(model: Any) -> None:
    """transformers' gradient checkpointing, in force in eval mode too.

    Layers checkpoint only while `training`; gaverify keeps models in eval
    mode (dropout off), so the checkpointing modules alone are marked as
    training: their forward is recomputed in backward, their children's
    dropout stays off. `mark_checkpointing` marks them again after a train()
    or eval() call resets them."""
    if not getattr(model, "supports_gradient_checkpointing", True):
        raise GaverifyError(
            f"model.gradient_checkpointing: {type(model).__name__} does not support it"
        )
    enable = getattr(model, "activation_checkpointing_enable", None)  # transformers >= 5.24
    kwargs = {"use_reentrant": False}  # what torch recommends; works on inputs without grad
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    elif hasattr(model, "gradient_checkpointing_enable"):
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    else:
        raise GaverifyError(
            f"model.gradient_checkpointing: {type(model).__name__} has no "
            "gradient_checkpointing_enable (a transformers model has)"
        )
    mark_checkpointing(model)


def mark_checkpointing(model: Any) -> None:
    """Mark the modules that checkpoint as training (see enable_checkpointing)."""
    for module in model.modules():
        if getattr(module, "gradient_checkpointing", False) is True:
            module.training = True


def _check_compiler(compiler: str) -> None:
    if compiler == "inductor" and not any(shutil.which(cc) for cc in ("cc", "gcc", "clang")):
        raise GaverifyError(
            "model.compile: inductor needs a C/C++ compiler on the CPU and none is on PATH; "
            "use model.compile: aot_eager"
        )
