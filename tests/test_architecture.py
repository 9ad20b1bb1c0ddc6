"""The package's shape: layers that only point down, no cycles, small modules.

The architecture (README, "Architecture") is checked here, not only by
review: import-linter's contracts in pyproject.toml, module-level cycles
(function-local imports included), the size of the top of the package, and
what a backend may load.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "gaverify"
# Function-local imports of gaverify modules keep start-up fast, nowhere else:
# `gaverify --help` (pydantic, YAML and rich load only when a command runs),
# `import gaverify` (the API loads on first use) and pytest's start in every
# project that installs gaverify (the plugin loads the API when a test uses it).
LAZY_ALLOWED = ("cli", "__init__.py", "pytest_plugin.py")


def test_import_linter_contracts_hold():
    code = "import sys; from importlinter.cli import lint_imports as f; sys.exit(f(no_cache=True))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parents[1]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 2 kept, 0 broken." in proc.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return out


def test_no_import_cycle_between_modules_function_local_imports_included():
    graph = grimp.build_graph("gaverify", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_function_local_gaverify_imports_only_keep_the_cli_fast():
    strays = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = path.relative_to(PACKAGE).parts[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for sub in ast.walk(node):
                module = getattr(sub, "module", None) if isinstance(sub, ast.ImportFrom) else None
                names = [a.name for a in sub.names] if isinstance(sub, ast.Import) else [module]
                if any(n and n.startswith("gaverify") for n in names) and part not in LAZY_ALLOWED:
                    strays.append(f"{path.relative_to(PACKAGE)}:{sub.lineno}")
    assert strays == []


def test_the_top_of_the_package_is_small_and_modules_stay_readable():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 330
    }
    assert long == {}


def test_every_package_says_what_it_owns():
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 40, init


def test_backend_lightning_does_not_load_the_transformers_trainer():
    pytest.importorskip("lightning")
    code = (
        "import sys\n"
        "from gaverify.runner import run_scenario\n"
        "from tests.conftest import small_scenario\n"
        "run_scenario(small_scenario(backend='lightning', steps=1,"
        " batch={'accumulation': [2]}))\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('transformers.trainer',"
        " 'gaverify.backends.trainer')))\n"
        "print(loaded)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parents[1]
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
