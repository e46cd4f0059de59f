"""The code's rooms by job (docs/layout.md): the pure rooms never reach live I/O, and no import circle.

Imports are read from the source, the ones inside functions included, so a
lazy import cannot hide a dependency or a circle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"

# Rooms whose every module is pure: no namespaces, no sockets to the kernel, no pyroute2.
PURE_ROOMS = ("lab.tcp", "lab.script", "lab.judge", "lab.views")
# Pure modules of mixed rooms: offline checking of captures, the course's content (an experiment's own
# module drives the kernel; the package that names them does not), the errors.
PURE_MODULES = ("lab", "lab.errors", "lab.course", "lab.course.experiments", "lab.capture.check", "lab.capture.compare", "lab.capture.diff",
                "lab.capture.pcapfile", "lab.capture.pcapng", "lab.course.catalogue", "lab.course.claims",
                "lab.course.labels", "lab.course.releases")
LIVE = ("pyroute2", "netns", "lab.live", "lab.cli", "lab.capture.fixtures", "lab.course.experiments",
        "lab.course.first_handshake", "lab.privileges", "lab.pytest_plugin")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for folder in ("lab", "netns") for path in (ROOT / folder).rglob("*.py")}


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _is_pure(name: str) -> bool:
    return _within(name, PURE_ROOMS) or name in PURE_MODULES


def imports_of(module: str) -> set[str]:
    """Every lab, netns or pyroute2 module ``module`` imports, anywhere in its source."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found.update(name for name in names if _within(name, ("lab", "netns", "pyroute2")))
    return found


@pytest.mark.parametrize("module", sorted(name for name in MODULES if _is_pure(name)))
def test_a_pure_module_imports_only_pure_ones(module):
    reached = imports_of(module)
    live = sorted(name for name in reached if _within(name, LIVE) and not _is_pure(name))
    unplaced = sorted(name for name in reached if name not in live and not _is_pure(name))
    assert not live, f"{module} (a pure room) imports live I/O: {live}"
    assert not unplaced, f"{module} imports modules no pure room holds: {unplaced}"


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle():
    graph = {module: {name for name in imports_of(module) if name in MODULES and name != module} for module in MODULES}
    assert circles(graph) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_room_check_sees_a_lazy_live_import(tmp_path, monkeypatch):
    """A pure module importing live I/O inside a function is caught."""
    bad = tmp_path / "lazy.py"
    bad.write_text("def later():\n    from netns import inside\n    from lab.live import runner\n")
    monkeypatch.setitem(MODULES, "lab.judge.lazy", bad)
    assert imports_of("lab.judge.lazy") == {"netns", "lab.live.runner"}


def _verify_without_pyroute2(*args: str) -> subprocess.CompletedProcess:
    """``tcplab verify ARGS`` in a Python where pyroute2 cannot be imported, as if it were not installed."""
    program = ("import sys; sys.modules['pyroute2'] = None; "
               "from lab.cli import main; sys.argv = ['tcplab', 'verify', *sys.argv[1:]]; main()")
    return subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_verify_works_with_pyroute2_unimportable():
    fixture = str(CAPTURES / "close-3-segments.pcapng")
    good = _verify_without_pyroute2(fixture, "--against", "close-3-segments")
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("PASS")
    wrong = _verify_without_pyroute2(fixture, "--against", "close-4-segments")
    assert wrong.returncode == 1, wrong.stderr
    assert wrong.stdout.startswith("FAIL") and "Traceback" not in wrong.stderr
