"""What a user can name: bundled scenarios and every registry's entries,
as (name, one-line description) lists for `gaverify list`."""

from __future__ import annotations

from gaverify.backends import BACKENDS
from gaverify.data.sources import ROW_READERS
from gaverify.data.synthetic import LENGTHS
from gaverify.measure.patterns import PATTERNS
from gaverify.model.optim import OPTIMIZERS
from gaverify.report.formats import FORMATS
from gaverify.spec.bundled import bundled
from gaverify.tasks.heads import TASKS

MODES = [
    ("lockstep", "every step starts from the reference parameters: each step's error isolated"),
    ("trajectory", "each run trains on its own: the drift users see in loss curves"),
]


def _variants(backend: str) -> list[tuple[str, str]]:
    known = BACKENDS.get(backend)
    rows = [(name, f"{v.summary}; expected to {v.expected}") for name, v in known.variants.items()]
    if known.own_variant:
        rows.append((known.own_variant, "your function, by import path: the one thing measured"))
    elif known.custom_variants:
        rows.append(("module:function", known.custom_summary))
    if known.setting_variants:
        rows.append(("key=value", "the engine with that config argument set (k=v,k2=v2 for "
                     "several), judged against itself at N=1, e.g. loss_type=dapo"))  # fmt: skip
    return rows


def catalog() -> dict[str, list[tuple[str, str]]]:
    """Sections of named things, each a list of (name, description)."""
    return {
        "bundled scenarios (gaverify run NAME)": [(b.name, b.description) for b in bundled()],
        **{
            f"variants of backend {name} (variants: [...])": _variants(name)
            for name in BACKENDS.names()
        },
        "tasks (model.task)": TASKS.described(),
        "data sources (data.source)": [
            ("synthetic", "random token ids, lengths drawn per sample"),
            *ROW_READERS.described(),
        ],
        "length distributions (data.length.distribution)": LENGTHS.described(),
        "modes (mode)": MODES,
        "optimizers (optimizer.name)": OPTIMIZERS.described(),
        "backends (backend)": BACKENDS.described(),
        "diagnosis patterns (how a failing variant's fitted weights are named)": [
            *PATTERNS.described(),
            ("logged-loss", "the gradient passes, the logged loss does not (e.g. xN)"),
            ("unrecognised", "no pattern fits: the fitted weights are shown, never a guess"),
        ],
        "report formats (run --FORMAT PATH, report -f FORMAT)": FORMATS.described(),
    }
