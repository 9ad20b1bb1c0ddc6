"""Building the model a scenario describes, on the device and dtype it asks for.

Models are initialised from a transformers config (`AutoConfig.for_model`),
so nothing is downloaded. Dropout is off unless the scenario keeps it: the
model runs in eval mode, because random dropout masks differ between a full
batch and its micro-batches and the two runs could never agree.
"""

from __future__ import annotations

from typing import Any

from gaverify.errors import GaverifyError, UnknownNameError
from gaverify.scenario import ModelSpec
from gaverify.tasks import Task


def resolve_device(requested: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; 'cuda' must be available."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise GaverifyError(
            f"device: 'cuda' was requested but torch {torch.__version__} ({build}) sees no GPU; "
            "use --device cpu or --device auto"
        )
    return requested


def torch_dtype(name: str):
    """The torch dtype a scenario's `dtype` names (float32, float64, bfloat16)."""
    import torch

    return getattr(torch, name)


def build_model(spec: ModelSpec, task: Task, dtype: str, device: str, seed: int) -> Any:
    """A randomly initialised model for `task`, seeded, on `device` in `dtype`."""
    import torch
    import transformers
    from transformers import AutoConfig

    transformers.logging.set_verbosity_error()
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    if spec.type not in CONFIG_MAPPING_NAMES:
        raise UnknownNameError("model.type", spec.type, CONFIG_MAPPING_NAMES)
    # The config and model constructors are where user-supplied sizes are
    # checked (by transformers, with several exception types): any failure
    # there is a problem with model.config, reported by its root cause.
    try:
        config = AutoConfig.for_model(spec.type, **spec.config)
    except Exception as exc:
        raise GaverifyError(f"model.config: invalid for '{spec.type}': {_cause(exc)}") from exc
    auto_class = getattr(transformers, task.auto_class)
    torch.manual_seed(seed)
    try:
        model = auto_class.from_config(config)
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc):
            raise GaverifyError(
                f"model.type: '{spec.type}' has no {task.name} model in transformers "
                f"{transformers.__version__} ({task.auto_class} does not support it)"
            ) from exc
        raise GaverifyError(f"model.config: cannot build '{spec.type}': {_cause(exc)}") from exc
    except (TypeError, RuntimeError) as exc:
        raise GaverifyError(f"model.config: cannot build '{spec.type}': {_cause(exc)}") from exc
    model.to(device=device, dtype=torch_dtype(dtype))
    model.train(spec.dropout)
    return model


def _cause(exc: BaseException) -> str:
    """The first line of the innermost cause (transformers wraps its own checks)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
