"""What differs between the transformers releases the trainer backend supports
(4.41 up to the current 5.x), handled in one place and never skipped silently.

- Loss kwargs: from 4.46 the Trainer passes num_items_in_batch to models that
  accept it (`model_accepts_loss_kwargs`); before, every release applied the
  mean of means, so there `installed` already is `pre-fix`.
- compute_loss_func: a Trainer argument from 4.46; older releases cannot run
  a user's loss function, which is an error, not a skipped variant.
- The logged loss: some releases round it to 4 decimals, and a NaN/inf step is
  replaced in the log by an average (logging_nan_inf_filter). The loss that
  gaverify compares is the logged one whenever the log can be trusted to the
  tolerances; otherwise the exact value the log was computed from, with a note.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from gaverify.errors import GaverifyError
from gaverify.model.precision import PRECISIONS
from gaverify.spec.schema import Scenario


def installed_version() -> str:
    import transformers

    return transformers.__version__


def takes_compute_loss_func() -> bool:
    """Whether the installed Trainer has a compute_loss_func argument (>= 4.46)."""
    from transformers import Trainer

    return "compute_loss_func" in inspect.signature(Trainer.__init__).parameters


def training_arguments(
    scenario: Scenario,
    classes: Any,
    n: int,
    output_dir: str,
    cpu: bool,
    world: int = 1,
    variant_args=(),
) -> Any:
    """The config (classes.config: TrainingArguments or a subclass) for one
    run: batch B/(W*n) per device with n accumulation steps, a step logged
    every step, nothing saved or reported, plus the scenario's own
    trainer.args and the variant's. A value the config refuses is exit 2."""
    fixed = {
        "output_dir": output_dir,
        "per_device_train_batch_size": scenario.batch.size // (world * n),
        "gradient_accumulation_steps": n,
        "max_steps": scenario.steps,
        "seed": scenario.seed,
        "data_seed": scenario.seed,
        "learning_rate": scenario.optimizer.lr,
        "weight_decay": scenario.optimizer.weight_decay,
        "lr_scheduler_type": "constant",
        "label_smoothing_factor": scenario.loss.label_smoothing,
        "logging_strategy": "steps",
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "remove_unused_columns": False,
        "use_cpu": cpu,
    }
    # Defaults the user may override: no clipping (it rescales the applied
    # gradient and can hide a loss-scale bug), no pinned memory on CPU.
    # The family's own (TRL: float32, not its bf16 default) come next.
    defaults = {
        "max_grad_norm": 0.0,
        "dataloader_pin_memory": not cpu,
        **classes.family.defaults,
        **_settings(scenario, cpu),
    }
    config = classes.config
    try:
        return config(**{**defaults, **scenario.trainer.args, **dict(variant_args), **fixed})
    except TypeError as exc:
        raise GaverifyError(
            f"trainer.args: {config.__qualname__} of transformers {installed_version()}: {exc}"
        ) from exc
    except ValueError as exc:
        raise GaverifyError(f"trainer.args: {exc}") from exc


def _settings(scenario: Any, cpu: bool) -> dict[str, Any]:
    """The scenario's precision, checkpointing and compile settings as the
    Trainer's own switches (spec/settings.py read trainer.args into them)."""
    model, precision = scenario.model, PRECISIONS.get(scenario.precision)
    if cpu and not precision.cpu_engines:
        raise GaverifyError(
            f"precision: {scenario.precision} (the Trainer's {', '.join(precision.trainer_args)}) "
            "runs on CUDA only: on the CPU the Trainer trains without autocast; use bf16-mixed "
            "(bf16) or device: cuda"
        )
    args: dict[str, Any] = dict(precision.trainer_args)
    if model.gradient_checkpointing:
        args["gradient_checkpointing"] = True
        args["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    if model.compile:
        args.update(torch_compile=True, torch_compile_backend=model.compile)
    return args


def force_loss_kwargs(trainer: Any, value: bool) -> str:
    """Make the Trainer (not) pass num_items_in_batch to the model; returns
    what was done, for the run's notes."""
    if not hasattr(trainer, "model_accepts_loss_kwargs"):
        return (
            f"pre-fix: transformers {installed_version()} predates loss kwargs (4.46), "
            "so its Trainer always averages per micro-batch: nothing to force"
        )
    trainer.model_accepts_loss_kwargs = value
    return f"pre-fix: Trainer.model_accepts_loss_kwargs forced to {value}"


def logged_loss(logged: float | None, returned: list[float]) -> tuple[float, str | None]:
    """The loss to compare for one optimizer step: the Trainer's logged loss,
    unless the log hides what the training steps returned (their sum is what
    the log is computed from). Returns the value and, when it is not the
    logged one, why."""
    exact = math.fsum(returned)
    if logged is None:
        return exact, "the Trainer logged no loss for a step: compared its training steps' sum"
    if not math.isfinite(exact):
        if math.isfinite(logged):
            return exact, "the Trainer's log replaced a non-finite loss (logging_nan_inf_filter)"
        return logged, None
    # float32 sums of terms of unit scale: a zero-mean loss (GRPO) is off by ~1e-8
    if math.isclose(logged, exact, rel_tol=1e-6, abs_tol=1e-7):
        return logged, None
    # Rounding moves it at most half the 4th decimal; float32 summation a little more.
    if logged == round(logged, 4) and abs(logged - exact) <= 5e-5 + 1e-6 * abs(exact):
        return exact, "this transformers rounds its logged loss to 4 decimals: compared unrounded"
    raise GaverifyError(
        f"trainer: the Trainer logged loss {logged!r} but its training steps returned "
        f"{exact!r} in total; gaverify does not know how transformers "
        f"{installed_version()} computes its log: please report it"
    )
