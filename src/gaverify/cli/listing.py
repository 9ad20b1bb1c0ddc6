"""`gaverify list`: bundled scenarios and the names a scenario may use."""

from __future__ import annotations

from gaverify.cli.errors import friendly_errors
from gaverify.cli.options import DebugOpt


@friendly_errors
def list_(debug: DebugOpt = False) -> None:
    """List bundled scenarios, loss variants, tasks, optimizers and backends."""
    from gaverify import render
    from gaverify.catalog import catalog

    render.print_listing(catalog())
