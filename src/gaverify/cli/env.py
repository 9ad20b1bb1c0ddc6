"""`gaverify env`: versions and hardware, ready to paste into a bug report."""

from __future__ import annotations

from gaverify.cli.friendly import friendly_errors
from gaverify.cli.options import DebugOpt


@friendly_errors
def env(debug: DebugOpt = False) -> None:
    """Print versions of gaverify, Python, torch, transformers and the device."""
    from gaverify.report import environment
    from gaverify.report import terminal as render

    render.print_environment(environment.collect())
