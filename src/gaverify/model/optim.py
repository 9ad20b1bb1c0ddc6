"""Optimizers a scenario can name, behind a registry.

Each entry builds a torch optimizer from the parameters and the scenario's
optimizer section; torch is imported only when one is built.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable
from typing import Any

from gaverify.errors import GaverifyError
from gaverify.registry import Registry

OptimizerFactory = Callable[[Iterable[Any], float, float, dict[str, Any]], Any]
OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer")
# Parameter-sized tensors each optimizer keeps, from its options (backends/memory.py)
STATE_SLOTS: dict[str, Callable[[dict[str, Any]], int]] = {
    "adamw": lambda options: 3 if options.get("amsgrad") else 2,  # moments (+ max)
    "sgd": lambda options: 1 if options.get("momentum") else 0,  # momentum buffer
}


@OPTIMIZERS.register("adamw", "torch.optim.AdamW (lr, weight_decay, options: betas, eps, ...)")
def _adamw(params, lr: float, weight_decay: float, options: dict[str, Any]):
    import torch

    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **options)


@OPTIMIZERS.register("sgd", "torch.optim.SGD (lr, weight_decay, options: momentum, ...)")
def _sgd(params, lr: float, weight_decay: float, options: dict[str, Any]):
    import torch

    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay, **options)


def build_optimizer(spec: Any, params: Iterable[Any]):
    """The scenario's optimizer (an OptimizerSpec) over `params`; options the
    optimizer refuses are exit 2."""
    factory = OPTIMIZERS.get(spec.name)
    try:
        optimizer = factory(params, spec.lr, spec.weight_decay, dict(spec.options))
    except (TypeError, ValueError) as exc:
        raise GaverifyError(f"optimizer.options: {spec.name}: {exc}") from exc
    step = optimizer.step

    def checked_step(self, *args, **kwargs):
        # torch turns the step size into the parameters' dtype: too large a
        # learning rate fails there (a usage error), while a merely large one
        # trains into NaN, which the verdicts report as non-finite rows
        try:
            return step(*args, **kwargs)
        except RuntimeError as exc:
            if "without overflow" not in str(exc):
                raise
            raise GaverifyError(
                f"optimizer.lr: {spec.lr:g} overflows the parameters' dtype in {spec.name}'s "
                f"update ({exc})"
            ) from exc

    # a bound method, as torch's LR schedulers expect when they wrap step in turn
    optimizer.step = types.MethodType(checked_step, optimizer)
    return optimizer
