"""Quiet engines: what the Trainer, TRL and `datasets` print is not gaverify's.

Inside `quiet()` transformers logs errors only, TRL's logger (its advice,
e.g. flash attention for packing) errors only, `datasets` shows no progress
bars while TRL maps its data sets, and deprecation warnings from the
configs are not shown; everything is put back as it was afterwards.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet() -> Iterator[None]:
    """The engines' chatter, off for the block."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    bars = _datasets_bars(False)  # TRL maps its data sets with progress bars
    trl_log = logging.getLogger("trl")  # TRL's advice (flash attention for packing)
    trl_level = trl_log.level
    trl_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecations in TRL's configs
            yield
    finally:
        transformers.logging.set_verbosity(verbosity)
        _datasets_bars(bars)
        trl_log.setLevel(trl_level)


def _datasets_bars(on: bool) -> bool:
    """Switch `datasets`' progress bars on or off; returns whether they were on."""
    try:
        from datasets.utils import logging as ds_logging
    except ImportError:  # no datasets: nothing prints them
        return False
    was = ds_logging.is_progress_bar_enabled()
    (ds_logging.enable_progress_bar if on else ds_logging.disable_progress_bar)()
    return was
