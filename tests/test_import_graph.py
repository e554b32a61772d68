"""The layering holds: flows → tasks → (core, schemas, storage), no import pointing back up and no
import circle anywhere, counting the imports made inside functions too (a deferred import still
ties two modules together)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("flows", "tasks", "schemas", "storage")

# What each layer may import of the project, by module prefix; the first matching rule applies.
ALLOWED = [
    ("flows", ("flows", "tasks", "schemas", "storage")),
    ("tasks.core", ("tasks.core", "schemas")),
    ("tasks", ("tasks", "schemas", "storage")),
    # storage registers the RNN's custom layer before loading a network: a core module, not a task
    ("storage", ("storage", "schemas", "tasks.core")),
    ("schemas", ("schemas",)),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports anywhere in its body: ``from a.b import c`` counts as
    ``a.b.c`` where that is a module, else as ``a.b``."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in modules else node.module)
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    names = set(modules)
    return {name: imported_modules(path, names) - {name} for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    def within(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + ".")

    wrong = []
    for source, targets in sorted(graph.items()):
        allowed = next(rule for layer, rule in ALLOWED if within(source, layer))
        wrong += [f"{source} -> {t}" for t in sorted(targets) if not any(within(t, prefix) for prefix in allowed)]
    return wrong


def test_the_project_has_no_import_circle():
    assert circles(import_graph()) == []


def test_no_module_imports_a_layer_above_it():
    assert upward_imports(import_graph()) == []


def test_the_graph_sees_deferred_imports():
    graph = import_graph()
    # flows.common imports the RNN chunk at the top; the registry imports the Keras layer in a function
    assert "flows.rnn" in graph["flows.common"]
    assert "tasks.core.models.rnn.layers" in graph["storage.registry"]


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ],
)
def test_circle_finder_reports_exactly_the_circles(graph, expected):
    assert circles(graph) == expected


def test_an_upward_import_is_reported():
    assert upward_imports({"tasks.core.models.naive": {"storage.fs", "tasks.forecast", "flows.common"}}) == [
        "tasks.core.models.naive -> flows.common",
        "tasks.core.models.naive -> storage.fs",
        "tasks.core.models.naive -> tasks.forecast",
    ]
