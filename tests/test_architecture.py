"""docs/ARCHITECTURE.md's layer contract, checked on the source: imports point down (or sideways inside a layer),
no import cycles (function-level imports included), and no stage imports another stage."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "labkit"
LAYERS = {
    "labkit.types": 0, "labkit.paths": 0, "labkit.errors": 0, "labkit.jsonl": 0, "labkit.store": 0,
    "labkit.records": 0, "labkit.modes": 0, "labkit.jsonscan": 0, "labkit.plotting": 0, "labkit.progress": 0,
    "labkit.bounds": 0,
    "labkit.tools": 1, "labkit.formats": 1, "labkit.templating": 1, "labkit.templates": 1, "labkit.parsing": 1,
    "labkit.chat": 1,
    "labkit.llm": 2,
    "labkit.agent": 3,
    "labkit.data": 4, "labkit.train": 4, "labkit.evaluate": 4,
    "labkit.meta": 4.5,  # L4b: above the stages, calls their public APIs
    "labkit.exercises": 5, "labkit.course": 5,
    "labkit.display": 5, "labkit.cli": 5, "labkit.labs": 5, "labkit.build": 5, "labkit.figures": 5,
    "labkit.expected": 5, "labkit": 5,
}
STAGES = ("labkit.data", "labkit.train", "labkit.evaluate")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str:
    """The layer table's entry a module belongs to (its top-level labkit package or module)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


MODULE_NAMES = [module_name(p) for p in ROOT.rglob("*.py")]


def imports(path: Path) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            subs = {f"{base}.{a.name}" for a in node.names} & set(MODULE_NAMES)
            # `from pkg import submodule` depends on the submodule; `from pkg import name` on pkg itself
            found |= subs | ({base} if len(subs) < len(node.names) else set())
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m == "labkit" or m.startswith("labkit.")}


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}
GRAPH = {name: {m for m in imports(p) if m in MODULES and m != name} for name, p in MODULES.items()}


def test_every_import_points_down_or_sideways() -> None:
    bad = [f"{src} -> {dst}" for src, deps in GRAPH.items() for dst in deps
           if unit(src) != "labkit" and LAYERS[unit(dst)] > LAYERS[unit(src)]]
    assert not bad, bad


def test_no_stage_imports_another_stage() -> None:
    bad = [f"{src} -> {dst}" for src, deps in GRAPH.items() for dst in deps
           if unit(src) in STAGES and unit(dst) in STAGES and unit(src) != unit(dst)]
    assert not bad, bad


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_the_layer_table_knows_every_module() -> None:
    assert {unit(m) for m in MODULES} <= set(LAYERS)
