"""gaverify: is gradient-accumulated training really equivalent to full-batch training?

From Python (nothing printed; see gaverify.api):

    import gaverify
    result = gaverify.verify("quickstart", {"batch.accumulation": [2, 4]})
    result.passed, result.exit_code       # every variant as its scenario expects; 0 or 1
    gaverify.assert_equivalent("scenarios/my-trainer.yaml")   # AssertionError with the diagnosis

From the shell: `gaverify run SCENARIO`; from pytest: the `gaverify` fixture.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gaverify.errors import GaverifyError

# The one source of the version (pyproject.toml reads it from here). Below the
# CLI the package reads it from the installed metadata: this root loads the
# API, so a module the API loads must not import it.
__version__ = "0.1.0"
__all__ = ["GaverifyError", "Result", "Results", "assert_equivalent", "verify", "verify_all"]

if TYPE_CHECKING:
    from gaverify.api import Result, Results, assert_equivalent, verify, verify_all


def __getattr__(name: str) -> Any:
    """The API loads on first use (PEP 562): `import gaverify` and `gaverify
    --help` stay fast, and neither imports torch."""
    if name in __all__:
        from gaverify import api

        return getattr(api, name)
    raise AttributeError(f"module 'gaverify' has no attribute {name!r}")
