"""The layout holds: every module imports, no import cycle, imports run only down the layers ARCHITECTURE.md
draws, and only the model package imports torch.

Imports are read from the source (``ast``), at any depth: an import inside a function is an import all the same,
and hiding a cycle there is exactly what this test refuses.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parents[2] / "backend"

#: What each part of ``backend`` may import (besides itself and ``strategies``). Entry points are modules.
MAY_IMPORT = {
    "core": set(),
    "labelstudio": {"core"},
    "store": {"core"},
    "models": {"core", "store"},
    "learning": {"core", "store", "models"},
    "jobs": {"core", "labelstudio", "store", "models", "learning"},
    "web": {"core", "labelstudio", "store", "models", "learning", "jobs"},
    "simulation": {"core", "models", "learning"},
    "ops": {"core", "labelstudio"},
    "app": {"core", "labelstudio", "store", "web"},
    "worker": {"core", "jobs"},
}
#: Frameworks that only the model package imports: everything else stays light and testable without them.
HEAVY = {"torch", "transformers", "setfit", "sentence_transformers"}


def module_name(path: Path) -> str:
    parts = path.relative_to(BACKEND.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(BACKEND.rglob("*.py"))}


def imports_of(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` names, resolved to a module where it names one."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in MODULES)
    return found


GRAPH = {name: {target for target in imports_of(path) if target in MODULES and target != name} for name, path in MODULES.items()}


def part_of(module: str) -> str:
    return module.split(".")[1] if module.count(".") else module


@pytest.mark.parametrize("module", sorted(name for name in MODULES if not name.endswith("__main__")))
def test_every_module_imports(module):
    importlib.import_module(module)


def test_no_import_cycle():
    # Tarjan's strongly connected components: any component of more than one module is a cycle.
    index, low, on_stack, stack, cycles, counter = {}, {}, set(), [], [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in GRAPH[node]:
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
                cycles.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    assert cycles == []


def test_imports_run_only_down_the_layers():
    upward = [
        f"{source} -> {target}"
        for source, targets in GRAPH.items()
        for target in targets
        if part_of(target) != part_of(source) and part_of(source) != "backend" and part_of(target) not in MAY_IMPORT[part_of(source)]
    ]
    assert upward == []


def test_only_the_model_package_imports_torch_and_transformers():
    heavy = {
        name: sorted(found)
        for name, path in MODULES.items()
        if part_of(name) != "models" and (found := {imported.split(".")[0] for imported in imports_of(path)} & HEAVY)
    }
    assert heavy == {}


def test_every_part_is_known():
    assert {part_of(name) for name in MODULES} - {"backend"} == set(MAY_IMPORT)
