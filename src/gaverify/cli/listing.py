"""`gaverify list`: bundled scenarios and the names a scenario may use."""

from __future__ import annotations

from gaverify.cli.friendly import friendly_errors
from gaverify.cli.options import DebugOpt


@friendly_errors
def list_(debug: DebugOpt = False) -> None:
    """List bundled scenarios, loss variants, tasks, optimizers and backends."""
    from gaverify.api.catalog import catalog
    from gaverify.report import terminal as render

    render.print_listing(catalog())
