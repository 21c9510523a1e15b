"""The house rules that a machine can check, read from the source with ``ast`` (nothing runs).

- no import cycle among the project's modules, imports deferred inside functions included;
- packages depend one way: pipeline <- encoders <- jobs, pipeline <- mixer <- jobs;
- no file over 300 lines and no function over 60 lines in the four packages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "encoders", "mixer", "jobs")
# What each package may import from the others (a package may always import itself).
ALLOWED = {
    "pipeline": set(),
    "encoders": {"pipeline"},
    "mixer": {"pipeline"},
    "jobs": {"pipeline", "encoders", "mixer"},
}
# encoders runs on workers without the data path: it may use pipeline's leaf modules only.
ENCODERS_MAY_USE = {"pipeline", "pipeline.sampling", "pipeline.config"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules whose names ``name`` imports (at top level or inside functions)."""
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package upwards
                package = name.split(".") if is_pkg else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        # `from a.b import c` reads module a.b (and a.b.c when c is a module). Parent packages
        # are not edges: by the time a submodule runs, its package is already being imported.
        found.update(t for t in targets if t in known and t != name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_sees_a_deferred_import_cycle(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    # A deferred import inside a function counts like a top-level one.
    (tmp_path / "m.py").write_text("def f():\n    from pipeline.store import FeatureStore\n")
    assert "pipeline.store" in _imports("x", tmp_path / "m.py", {"pipeline", "pipeline.store"})


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_packages_depend_one_way():
    wrong = []
    for module, targets in _graph().items():
        pkg = module.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if other != pkg and other not in ALLOWED[pkg]:
                wrong.append(f"{module} imports {target}")
            if pkg == "encoders" and other == "pipeline" and target not in ENCODERS_MAY_USE:
                wrong.append(f"{module} imports {target} (encoders may use {ENCODERS_MAY_USE})")
    assert not wrong, "\n".join(sorted(wrong))


@pytest.mark.parametrize("package", PACKAGES)
def test_files_and_functions_stay_readable(package):
    too_long = []
    for path in sorted((ROOT / package).rglob("*.py")):
        source = path.read_text()
        if source.count("\n") > 300:
            too_long.append(f"{path.relative_to(ROOT)}: {source.count(chr(10))} lines (max 300)")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 60:
                    too_long.append(
                        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}(): "
                        f"{length} lines (max 60)"
                    )
    assert not too_long, "\n".join(too_long)
