"""The layout of the code: every module imports, the layering holds (pages -> ui -> core; the core imports
neither ui, pages nor bench), no module imports itself back through a cycle, and no core or ui module is
longer than about 300 lines."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("diffusion_core", "ui", "bench", "deploy")
MAX_LINES = 320  # "about 300": the bound, with room for a docstring


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(module_name(p) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
                 if "__pycache__" not in p.parts and p.name != "__main__.py")


def imports_of(name: str) -> set[str]:
    """The project modules that module ``name`` imports (absolute names; relative imports resolved)."""
    path = ROOT / Path(*name.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m in MODULES}


GRAPH = {name: imports_of(name) for name in MODULES}


@pytest.mark.parametrize("name", [m for m in MODULES if m.startswith(("diffusion_core", "ui"))])
def test_every_module_imports(name):
    importlib.import_module(name)


def test_the_core_imports_no_ui_pages_or_bench():
    bad = {m: sorted(i for i in deps if not i.startswith("diffusion_core"))
           for m, deps in GRAPH.items() if m.startswith("diffusion_core")}
    assert not {m: d for m, d in bad.items() if d}


def test_ui_imports_no_pages_or_bench():
    bad = {m: sorted(i for i in deps if i.startswith(("bench", "deploy"))) for m, deps in GRAPH.items() if m.startswith("ui")}
    assert not {m: d for m, d in bad.items() if d}


def test_no_import_cycles():
    """Depth-first search over the module graph (a package's import of its own submodules excepted:
    ``pkg/__init__`` re-exporting ``pkg.mod`` is how a package shows its names)."""
    def deps(m):
        return {d for d in GRAPH[m] if not d.startswith(m + ".")}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(m, stack):
        state[m] = 1
        for d in deps(m):
            if state.get(d) == 1:
                cycle.extend(stack[stack.index(d):] + [d] if d in stack else [m, d])
                return True
            if d not in state and visit(d, stack + [d]):
                return True
        state[m] = 2
        return False

    for m in MODULES:
        if m not in state and visit(m, [m]):
            break
    assert not cycle, " -> ".join(cycle)


def test_a_cycle_is_found(monkeypatch):
    """The cycle check can fail: a planted edge back from the schedules to the samplers is caught."""
    monkeypatch.setitem(GRAPH, "diffusion_core.process.schedules",
                        GRAPH["diffusion_core.process.schedules"] | {"diffusion_core.samplers.ddim"})
    with pytest.raises(AssertionError):
        test_no_import_cycles()


@pytest.mark.parametrize("folder", ["diffusion_core", "ui"])
def test_no_module_is_too_long(folder):
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / folder).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long
