"""The shape of the package: no file under src/ over 400 lines, and no import cycle between
dgslm modules, counting imports inside functions (the lazy ones) and under TYPE_CHECKING."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((SRC / "dgslm").rglob("*.py"))}


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The dgslm modules that importing (or calling into) ``name`` imports: every ``import`` and
    ``from ... import`` anywhere in the file, a name imported from a package counted as its
    submodule when it is one, and each imported module's parent packages (which Python runs
    first), except ``name``'s own, which have been run before it."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    targets = set()
    for module in found:
        parts = module.split(".")
        targets.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
    return {t for t in targets if t in modules and t not in own}


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_source_file_over_400_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_no_import_cycle():
    graph = import_graph()
    assert "dgslm.lm.model" in graph["dgslm.lm.checkpoint"]  # the graph sees module-level imports,
    assert "dgslm.lm.trainer" in graph["dgslm.cli.train"]  # imports inside functions,
    assert "dgslm.vocoder" in graph["dgslm.models.convert"]  # and the packages Python runs first
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b", "c"}, "b": set(), "c": {"c"}}, ["c", "c"]),
    ],
)
def test_cycle_finder(graph, expected):
    assert find_cycle(graph) == expected


def test_function_level_imports_count(tmp_path):
    (tmp_path / "a.py").write_text("def f():\n    from dgslm.b import g\n")
    modules = {"dgslm": tmp_path / "__init__.py", "dgslm.a": tmp_path / "a.py", "dgslm.b": tmp_path / "b.py"}
    assert imported_modules("dgslm.a", tmp_path / "a.py", modules) == {"dgslm.b"}
