"""The allocator setting: applied in a process of its own, opt-out honoured."""

import subprocess
import sys

import pytest

from gaverify import allocator
from gaverify.report import environment

APPLY = "from gaverify import allocator; print(allocator.keep_freed_memory())"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_glibc_keeps_freed_memory_in_a_process_of_its_own():
    out = subprocess.run([sys.executable, "-c", APPLY], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "glibc, freed memory kept for reuse"


def test_gaverify_malloc_system_leaves_the_allocator_alone(monkeypatch):
    monkeypatch.setattr(allocator, "_state", allocator.describe())  # restored after
    monkeypatch.setenv("GAVERIFY_MALLOC", "system")
    assert allocator.keep_freed_memory() == "system defaults (GAVERIFY_MALLOC=system)"
    assert environment.collect()["allocator"] == "system defaults (GAVERIFY_MALLOC=system)"


def test_the_cli_in_a_host_process_does_not_touch_the_allocator():
    from typer.testing import CliRunner

    from gaverify.cli import app

    before = allocator.describe()
    CliRunner().invoke(app, ["run", "quickstart", "--set", "steps=1", "-q"])
    assert allocator.describe() == before
