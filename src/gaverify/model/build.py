"""Building the model a scenario describes.

Three sources, none of which downloads anything:
- config:     any transformers model type, randomly initialised (seeded);
- pretrained: from_pretrained on a directory, on a hub id already in the
              local cache (local_files_only), or on `package:NAME/DIR`, a
              model shipped inside an installed Python package; its
              tokenizer comes along when there is one;
- factory:    `module:function` returning a torch module, for models outside
              transformers (called with model.config as keyword arguments).

Remote code runs only with model.trust_remote_code: true. Dropout is off
unless the scenario keeps it (eval mode), because random dropout masks differ
between a full batch and its micro-batches.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gaverify.errors import GaverifyError, ModelBuildError, UnknownNameError, root_cause
from gaverify.imports import describe, load_object
from gaverify.model.tiny import tiny_config
from gaverify.tasks.heads import Task, TokenSpace

if TYPE_CHECKING:
    from gaverify.spec.sections import ModelSpec


@dataclass
class Built:
    """A model ready to train, with what the data side needs to know about it."""

    model: Any
    tokenizer: Any | None
    notes: list[str] = field(default_factory=list)

    def token_space(self, task: Task, spec: ModelSpec) -> TokenSpace:
        config = getattr(self.model, "config", None)
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        vocab = (
            getattr(config, "vocab_size", None)
            or getattr(text, "vocab_size", None)  # a composite model's text part
            or spec.config.get("vocab_size")
        )
        if not vocab:
            raise GaverifyError(
                "model.config.vocab_size: the model has no config.vocab_size; give it in "
                "model.config so gaverify knows which token ids are valid"
            )
        tok = self.tokenizer
        mask_id = getattr(tok, "mask_token_id", None) if tok is not None else None
        if mask_id is None and task.name == "masked-lm":
            mask_id = vocab - 1  # reserved: synthetic data never draws it as a token
        special = set(tok.all_special_ids) if tok is not None else set()
        special.add(self.pad_id())  # synthetic tokens never look like padding
        return TokenSpace(
            vocab_size=vocab,
            num_labels=getattr(config, "num_labels", 2),
            mask_id=mask_id,
            special_ids=frozenset(special),
        )

    def pad_id(self) -> int:
        for source in (self.tokenizer, getattr(self.model, "config", None)):
            pad = getattr(source, "pad_token_id", None)
            if pad is not None:
                return pad
        return 0


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


def build_model(
    spec: ModelSpec,
    task: Task,
    dtype: str,
    device: str,
    seed: int,
    source_dir: Path | None,
    guard: Callable[[Any], object] | None = None,
) -> Built:
    """The scenario's model for `task`, seeded, on `device` in `dtype`.
    `guard` (memory.check) sees the model before training: a config or
    pretrained model as a shapes-only copy before any weight is allocated or
    read (a mistyped size, or a checkpoint too big for the machine, would
    otherwise be killed mid-load); a factory's, whose code builds it, after."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # stderr belongs to gaverify's own bar
    shapes = _SHAPES.get(spec.source)
    if guard is not None and shapes is not None:
        with torch.device("meta"):
            guard(shapes(spec, task, source_dir).to(dtype=torch_dtype(dtype)))
    torch.manual_seed(seed)  # every newly initialised weight is seeded
    built = _SOURCES[spec.source](spec, task, source_dir)
    if not isinstance(built.model, torch.nn.Module):
        raise GaverifyError(
            f"model.factory: {spec.factory} returned {type(built.model).__name__}, "
            "not a torch.nn.Module"
        )
    built.model.to(device=device, dtype=torch_dtype(dtype))
    if dtype == "float64" and _experts_grouped(built.model):
        built.model.set_experts_implementation("eager")
        built.notes.append("model: experts run eagerly (grouped_mm has no float64 kernel)")
    built.model.train(spec.dropout)
    if guard is not None and shapes is None:
        guard(built.model)
    return built


def _experts_grouped(model: Any) -> bool:
    """Whether a mixture-of-experts model runs its experts with grouped_mm
    (transformers >= 5), which has float32 and 16-bit kernels only."""
    config = getattr(model, "config", None)
    return getattr(config, "_experts_implementation", None) == "grouped_mm" and hasattr(
        model, "set_experts_implementation"
    )


def _from_config(spec: ModelSpec, task: Task, source_dir: Path | None) -> Built:
    import transformers
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    if spec.type not in CONFIG_MAPPING_NAMES:
        raise UnknownNameError("model.type", spec.type, CONFIG_MAPPING_NAMES)
    try:
        shrunk = tiny_config(spec.type) if spec.tiny else {}
    except Exception as exc:  # a config class with no usable defaults
        raise ModelBuildError(
            f"model.tiny: cannot shrink '{spec.type}': {type(exc).__name__}: {root_cause(exc)}"
        ) from exc
    kwargs = {**shrunk, **task.config_defaults, **task.config_required, **spec.config}
    # The config and model constructors are where user-supplied sizes are
    # checked (by transformers, with many exception types, and some models
    # need an optional package): any failure there is a problem with
    # model.config or the environment, reported by its root cause.
    try:
        config = AutoConfig.for_model(spec.type, **kwargs)
    except Exception as exc:
        raise ModelBuildError(
            f"model.config: invalid for '{spec.type}': {root_cause(exc)}"
        ) from exc
    try:
        model = getattr(transformers, task.auto_class).from_config(config)
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc):
            raise ModelBuildError(
                f"model.type: '{spec.type}' has no {task.name} model in transformers "
                f"{transformers.__version__} ({task.auto_class} does not support it)"
            ) from exc
        raise ModelBuildError(_cannot_build(spec, exc)) from exc
    except Exception as exc:
        raise ModelBuildError(_cannot_build(spec, exc)) from exc
    origin = "its default config shrunk (model.tiny)" if spec.tiny else "model.config"
    return Built(model, None, [f"model: {spec.type}, random init from {origin}"])


def _cannot_build(spec: ModelSpec, exc: Exception) -> str:
    cause = root_cause(exc)
    kind = (
        "" if isinstance(exc, ValueError | TypeError | RuntimeError) else f"{type(exc).__name__}: "
    )
    return f"model.config: cannot build '{spec.type}': {kind}{cause}"


def locate_pretrained(path: str, source_dir: Path | None) -> str:
    """A directory for `package:NAME/DIR` or a relative directory; else `path`
    unchanged (a hub id, looked up in the local cache only)."""
    if path.startswith("package:"):
        package, _, sub = path.removeprefix("package:").partition("/")
        found = importlib.util.find_spec(package) if package.isidentifier() else None
        if found is None or not found.submodule_search_locations:
            raise GaverifyError(
                f"model.path: Python package '{package}' is not installed "
                f"(pip install {package.replace('_', '-')})"
            )
        return str(Path(next(iter(found.submodule_search_locations))) / sub)
    if source_dir is not None and (source_dir / path).is_dir():
        return str(source_dir / path)
    return path


def _pretrained_config(spec: ModelSpec, task: Task, source_dir: Path | None):
    """(location, config, loading options) of a pretrained model."""
    from transformers import AutoConfig

    location = locate_pretrained(spec.path or "", source_dir)
    options = {"local_files_only": True, "trust_remote_code": spec.trust_remote_code}
    with _load_errors(spec):
        config = AutoConfig.from_pretrained(
            location, **options, **{**task.config_required, **spec.config}
        )
    return location, config, options


def _pretrained_shapes(spec: ModelSpec, task: Task, source_dir: Path | None):
    """The pretrained model's architecture from its config alone (no weights read)."""
    import transformers

    _, config, options = _pretrained_config(spec, task, source_dir)
    auto = getattr(transformers, task.auto_class)
    with _load_errors(spec):
        return auto.from_config(config, trust_remote_code=options["trust_remote_code"])


@contextmanager
def _load_errors(spec: ModelSpec) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise GaverifyError(
            f"model.path: '{spec.path}' is not a model directory and not in the local "
            "Hugging Face cache; gaverify never downloads: fetch it once (hf download "
            f"{spec.path}) or give a directory ({root_cause(exc)})"
        ) from exc
    except ValueError as exc:
        raise GaverifyError(f"model.path: cannot load '{spec.path}': {root_cause(exc)}") from exc


def _pretrained(spec: ModelSpec, task: Task, source_dir: Path | None) -> Built:
    import transformers
    from transformers import AutoTokenizer

    location, config, options = _pretrained_config(spec, task, source_dir)
    with _load_errors(spec):
        auto = getattr(transformers, task.auto_class)
        # pickled (.bin) checkpoints load as plain tensors only: say so, whatever the default
        known = inspect.signature(transformers.PreTrainedModel.from_pretrained).parameters
        safe = {"weights_only": True} if "weights_only" in known else {}
        model, info = auto.from_pretrained(
            location, config=config, output_loading_info=True, **options, **safe
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **options)
    except (OSError, ValueError, TypeError):
        tokenizer = None
    fresh = len(info.get("missing_keys", []))
    notes = [
        f"model: pretrained {spec.path} ({type(model).__name__}"
        + (f"; {fresh} tensors newly initialised: the task head" if fresh else "")
        + ")",
        f"tokenizer: {type(tokenizer).__name__}" if tokenizer else "tokenizer: none",
    ]
    return Built(model, tokenizer, notes)


def _factory(spec: ModelSpec, task: Task, source_dir: Path | None) -> Built:
    path = spec.factory or ""
    make = load_object(path, "model.factory", [source_dir] if source_dir else [])
    try:
        model = make(**spec.config)
    except Exception as exc:  # the user's code
        raise GaverifyError(
            f"model.factory: {path} raised {type(exc).__name__}: {root_cause(exc)}"
        ) from exc
    return Built(model, None, [f"model: user code ran: {describe(make, path)}"])


_SOURCES = {"config": _from_config, "pretrained": _pretrained, "factory": _factory}
# the architecture alone, for the memory guard before any weight exists
_SHAPES = {
    "config": lambda spec, task, source_dir: _from_config(spec, task, source_dir).model,
    "pretrained": _pretrained_shapes,
}
