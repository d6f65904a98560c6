"""The layering of the package (docs/architecture.md), checked on its import graph.

Every import counts, including those inside function bodies (they hide circles, not remove them); only
imports under ``if TYPE_CHECKING:`` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sofie_rdf

ROOT = Path(sofie_rdf.__file__).parent

# Layers from the bottom up: a module may import its own layer and those below, never one above.
LAYERS = [
    ("errors", "_version", "_root", "_cache", "ir"),
    ("ops",),
    ("passes",),
    ("planning",),
    ("targets",),
    ("custom", "parsers"),
    ("profiling", "session", "_native", "_cuda", "_specialise"),
    ("model", "api"),
    ("compile", "precision"),
    ("columnar", "rdf", "_functor", "_rdf_distributed", "gnn", "reader", "_runner", "cli", "compat", "_compat", "__init__",
     "__main__"),
]


# Imports naming no module of the package (a relative import gone wrong when a module moved).
UNRESOLVED: list[str] = []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, modules: set[str], type_checking: bool = False) -> set[str]:
    """The package modules ``path`` imports (``from . import x`` names module ``x`` when it is one); with
    ``type_checking``, those imported for annotations only (under ``if TYPE_CHECKING:``) as well."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node) and not type_checking:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("sofie_rdf"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("sofie_rdf"):
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    found.add(sub if sub in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    found.discard(name)
    if not type_checking:
        UNRESOLVED.extend(f"{name} imports {m}" for m in sorted(found - modules))
    return {m for m in found if m in modules}


def import_graph(type_checking: bool = False) -> dict[str, set[str]]:
    paths = [p for p in ROOT.rglob("*.py") if "kernels" not in p.parts]
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, modules, type_checking) for p in paths}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "__init__"
    for k, names in enumerate(LAYERS):
        if top in names:
            return k
    raise AssertionError(f"module {module} is in no layer of tests/test_architecture.py")


GRAPH = import_graph()


def test_graph_is_read() -> None:
    """The parser sees the imports it must (a broken parser would pass every check below)."""
    assert "sofie_rdf.planning.planned" in GRAPH["sofie_rdf.model"] or "sofie_rdf.planning" in GRAPH["sofie_rdf.model"]
    assert "sofie_rdf.session" in GRAPH["sofie_rdf.compile"]
    assert len(GRAPH) > 80


def test_every_import_resolves() -> None:
    assert UNRESOLVED == []


def test_no_import_circle() -> None:
    assert _cycles(GRAPH) == []


def test_no_circle_inside_ops_even_for_annotations() -> None:
    """Operators and their numpy references share the convolution and pooling geometry through
    ``ops/geometry.py``: no module of ``ops/`` needs another back, not even under ``if TYPE_CHECKING:``,
    where a circle hides a module split in the wrong place."""
    ops = {m: {i for i in imports if i.startswith("sofie_rdf.ops.")}
           for m, imports in import_graph(type_checking=True).items() if m.startswith("sofie_rdf.ops.")}
    assert _cycles(ops) == []


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_layers_point_down(module: str) -> None:
    """Front ends -> IR -> passes and planning -> operators -> targets -> Session -> integrations, one way."""
    up = sorted(m for m in GRAPH[module] if _layer(m) > _layer(module))
    assert not up, f"{module} imports {up} from a layer above it"


def test_operators_and_ir_know_no_target() -> None:
    for module, imports in GRAPH.items():
        if module.startswith(("sofie_rdf.ops", "sofie_rdf.ir", "sofie_rdf.passes", "sofie_rdf.planning")):
            assert not [m for m in imports if m.startswith("sofie_rdf.targets")], module


# What the targets writing C++ share (names, types, expressions): a package of targets/, not a target.
SHARED = "_cxx"


def test_no_target_imports_another() -> None:
    for module, imports in GRAPH.items():
        if module.startswith("sofie_rdf.targets."):
            own = module.split(".")[2]
            others = [m for m in imports if m.startswith("sofie_rdf.targets.") and m.split(".")[2] not in (own, SHARED)]
            assert not others, f"{module} imports {others}"


def test_operators_write_no_cpp() -> None:
    """Operators are meaning: no kernel calls, no emit methods, no compiler names."""
    for path in (ROOT / "ops").glob("*.py"):
        text = path.read_text()
        assert "kernels::" not in text, path.name
        assert "def emit(" not in text, path.name
        assert '"native"' not in text and "'native'" not in text, path.name
