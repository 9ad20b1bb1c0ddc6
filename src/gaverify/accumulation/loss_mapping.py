"""The loss_type route: your loss function reached through the model's own loss.

transformers (4.46 and later) computes a model's loss with
`self.loss_function`, looked up in `LOSS_MAPPING` by the model's loss type;
that is the accumulation fix's second mechanism for user losses: register a
function under a name, point the model's loss type at it, and the model's
forward calls it with num_items_in_batch. The fix (4.46) read the loss type from
`config.loss_type`; transformers 5.23.0 sets `model.loss_type` from the class
name when the model is built and never reads the config again (its warning
still speaks of the config). `route` tries the config first, then the
attribute, checks that the model's `loss_function` really is the user's
function, and says which way worked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaverify.errors import GaverifyError
from gaverify.imports import describe, load_object

ROUTES = ("config.loss_type", "model.loss_type")
_MISSING = object()


@dataclass(frozen=True)
class Route:
    """The user's function registered as LOSS_MAPPING[name], reached by `via`."""

    name: str
    via: str  # one of ROUTES
    origin: str  # for the report: which function, from which file, and how it was reached

    @contextmanager
    def pointed(self, model: Any) -> Iterator[None]:
        """The model's loss type set to `name` (the other variants share the
        model, so it is put back afterwards)."""
        holder = model.config if self.via == "config.loss_type" else model
        saved = getattr(holder, "loss_type", _MISSING)
        holder.loss_type = self.name
        try:
            yield
        finally:
            if saved is _MISSING:
                delattr(holder, "loss_type")
            else:
                holder.loss_type = saved

    def call(self, loss: Callable[[Any], Any], window: Any) -> Any:
        """loss(window) (the model's own loss, as the Trainer gets it) with the
        model's loss type pointed at the user's function."""
        with self.pointed(window.model):
            return loss(window)


def route(path: str, search: list[Path], model: Any) -> Route:
    """Register `path` in LOSS_MAPPING and find how this transformers release
    lets a model dispatch to it; exit 2 naming the release when it cannot."""
    import transformers

    version = transformers.__version__
    try:
        from transformers.loss.loss_utils import LOSS_MAPPING
    except ImportError:
        raise GaverifyError(
            f"variants: loss-type needs transformers' LOSS_MAPPING (4.46 or later); "
            f"transformers {version} has none"
        ) from None
    if not any(isinstance(k.__dict__.get("loss_function"), property) for k in type(model).__mro__):
        raise GaverifyError(
            f"variants: loss-type needs a transformers model with a loss_function dispatch; "
            f"{type(model).__name__} has none"
        )
    func = load_object(path, "loss.loss_type", search)
    name = f"gaverify:{path}"
    LOSS_MAPPING[name] = func
    for via in ROUTES:
        candidate = Route(name, via, f"{describe(func, path)} as LOSS_MAPPING['{name}'] via {via}")
        with candidate.pointed(model):
            if model.loss_function is func:
                return candidate
    raise GaverifyError(
        f"variants: loss-type: transformers {version} does not dispatch the model's loss "
        f"through LOSS_MAPPING by {' or '.join(ROUTES)}"
    )
