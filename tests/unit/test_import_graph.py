"""The import graph of Upkeep's own packages: no cycles, and each layer imports only the layers below it.

Layers, lowest first: `upkeep` (core), `tasks`, `flows`, `deployments`; `sandbox` (the local stack)
sits beside them and only the demo starts it. Every `import` / `from … import` counts for the layers,
including the ones inside functions and under `if TYPE_CHECKING:` (a deferred import is still a
dependency). Cycles are looked for among the imports that run: an annotation-only import under
`if TYPE_CHECKING:` is never executed, and type checkers resolve cycles among them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("upkeep", "sandbox", "flows", "tasks", "deployments")

# Imports of `sandbox` allowed outside it: (importing module, enclosing function or None for anywhere in it).
SANDBOX_ALLOWED: dict[tuple[str, str | None], str] = {
    ("deployments.demo", None): "the demo runs the routines against the sandbox it starts, by design",
    ("deployments.cli", "cmd_sandbox"): "`upkeep sandbox up/down/fail`: the command that drives the stack",
    ("deployments.cli", "cmd_demo"): "`upkeep demo` finds the sandbox's default directory before starting the demo",
}


@dataclass(frozen=True)
class Edge:
    importer: str
    target: str
    function: str | None  # the outermost function the import is in; None at module level
    line: int
    annotation_only: bool = False  # under `if TYPE_CHECKING:`

    def where(self) -> str:
        inside = f" (in {self.function})" if self.function else ""
        return f"{self.importer}:{self.line}{inside} imports {self.target}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _targets(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, known: set[str]) -> list[str]:
    """Absolute names of the modules an import statement loads (of ours: `from pkg import mod` names pkg.mod)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        package = importer.split(".") if is_package else importer.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
    return subs if len(subs) == len(node.names) else [base, *subs]


@cache
def edges() -> tuple[Edge, ...]:
    """Every import in our packages of a module in our packages, with where it is."""
    known = set(modules())
    found: list[Edge] = []

    def visit(node: ast.AST, importer: str, is_package: bool, function: str | None, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if function is None and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = child.name
            if isinstance(child, ast.If) and ast.unparse(child.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                for stmt in child.body:  # annotation-only; the `else:` branch runs
                    visit(ast.Module(body=[stmt], type_ignores=[]), importer, is_package, inner, True)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), importer, is_package, inner, typing_only)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _targets(child, importer, is_package, known):
                    if target.split(".")[0] in PACKAGES:
                        found.append(Edge(importer, target, function, child.lineno, typing_only))
            visit(child, importer, is_package, inner, typing_only)

    for name, path in modules().items():
        visit(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py", None, False)
    return tuple(found)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a → … → a) per strongly connected component of more than one module (or a self-import)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:  # Tarjan; the graph is small, recursion is fine
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)

    found = []
    for component in components:
        start = min(component)
        paths = {start: [start]}  # breadth-first inside the component, back to start: a shortest cycle
        queue = [start]
        while queue:
            v = queue.pop(0)
            nxt = sorted(w for w in graph.get(v, ()) if w in component)
            if start in nxt:
                found.append([*paths[v], start])
                break
            for w in nxt:
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    queue.append(w)
    return found


def _graph(all_edges: tuple[Edge, ...]) -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for e in all_edges:
        if e.target in known:
            graph[e.importer].add(e.target)
    return graph


def _layer(module: str) -> str:
    return module.split(".")[0]


def test_cycle_finder_names_the_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert sorted(cycles(graph)) == [["a", "b", "c", "a"], ["e", "e"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_relative_imports_resolve() -> None:
    node = ast.parse("from .model import X\nfrom .. import errors\nfrom . import policy").body
    known = {"upkeep.packages.policy", "upkeep.errors"}
    assert _targets(node[0], "upkeep.packages.apt", False, known) == ["upkeep.packages.model"]
    assert _targets(node[1], "upkeep.packages.apt", False, known) == ["upkeep.errors"]
    assert _targets(node[2], "upkeep.packages", True, known) == ["upkeep.packages.policy"]


def test_no_import_cycles() -> None:
    found = cycles(_graph(tuple(e for e in edges() if not e.annotation_only)))
    assert not found, "import cycles (break each by moving what both sides need lower): " + "; ".join(
        " → ".join(c) for c in found)


def test_upkeep_imports_no_upper_layer() -> None:
    bad = [e.where() for e in edges() if _layer(e.importer) == "upkeep"
           and _layer(e.target) in ("flows", "tasks", "deployments", "sandbox")]
    assert not bad, "upkeep/ is the core: it must not import flows, tasks, deployments or sandbox:\n" + "\n".join(bad)


def test_tasks_import_no_flow_or_deployment() -> None:
    bad = [e.where() for e in edges() if _layer(e.importer) == "tasks" and _layer(e.target) in ("flows", "deployments")]
    assert not bad, "tasks/ must not import flows or deployments:\n" + "\n".join(bad)


def test_only_the_demo_imports_the_sandbox() -> None:
    bad = [e.where() for e in edges()
           if _layer(e.importer) != "sandbox" and _layer(e.target) == "sandbox"
           and (e.importer, None) not in SANDBOX_ALLOWED and (e.importer, e.function) not in SANDBOX_ALLOWED]
    assert not bad, ("only the demo and `upkeep sandbox` may import sandbox (allow-list: SANDBOX_ALLOWED):\n"
                     + "\n".join(bad))


def test_sandbox_allow_list_is_not_stale() -> None:
    used = {(e.importer, None if (e.importer, None) in SANDBOX_ALLOWED else e.function)
            for e in edges() if _layer(e.importer) != "sandbox" and _layer(e.target) == "sandbox"}
    assert set(SANDBOX_ALLOWED) <= used, f"allow-list entries that no import uses any more: {set(SANDBOX_ALLOWED) - used}"
