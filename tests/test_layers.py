"""The layer contract, enforced: which package may import which (docs/architecture.md).

Every ``import`` in ``prunekit/`` — at module top or inside a function — is read with
``ast``. A package may import the kernel modules and the packages listed for it in
``ALLOWED`` (its layers below); nothing imports a private module (``_name``) of another
package; the package graph has no cycle. A new dependency is a deliberate edit here and
in docs/architecture.md, not an accident.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "prunekit"

#: modules every package may use: they import nothing of prunekit but each other
KERNEL = {"inputs", "layout", "progress", "result"}

#: package (or top-level module) -> the prunekit packages it may import, lowest first
ALLOWED: dict[str, set[str]] = {
    "inputs": set(), "layout": set(), "progress": set(), "result": set(),
    "sparsity": set(),
    "estimators": {"sparsity"},
    "graph": set(),
    "surgery": {"graph"},
    "importance": set(),
    "reconstruct": {"importance", "surgery"},
    "measure": set(),
    "data": set(),
    "structures": {"graph", "surgery", "importance", "measure", "sparsity", "reconstruct"},
    "hardware": {"graph", "surgery", "importance", "measure", "structures"},
    "api": {"graph", "surgery", "importance", "measure", "structures", "hardware",
            "reconstruct"},
    "methods": {"sparsity", "graph", "surgery", "importance", "measure", "hardware"},
    "io": {"graph", "surgery", "structures"},
    "diagnose": {"graph", "surgery", "importance", "measure", "methods"},
    "eval": {"data", "measure"},
    "apps": {"sparsity", "estimators", "measure"},
    "report": {"measure", "diagnose"},
    "recipes": {"api", "io", "graph", "surgery", "importance", "measure", "methods", "reconstruct",
                "structures", "hardware", "data", "report", "diagnose"},
    "demo": {"api", "io", "measure", "methods", "recipes", "data", "hardware", "report"},
    "cli": {"api", "io", "measure", "methods", "recipes", "data", "hardware", "report",
            "demo", "structures", "graph"},
    "__init__": {"api", "io", "graph", "surgery", "importance", "measure", "sparsity",
                 "structures", "methods", "hardware", "estimators"},
    "__main__": {"cli"},
}


def _owner(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[tuple[str, int]]:
    """``(imported prunekit module, line)`` for every import in the file."""
    tree = ast.parse(path.read_text(), str(path))
    rel = path.relative_to(ROOT).with_suffix("")
    here = ["prunekit", *rel.parts]
    if here[-1] == "__init__":
        here = here[:-1]
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(block.test)
                   for stmt in block.body for n in ast.walk(stmt)}
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:  # annotations only: no import at run time
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.startswith("prunekit")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = here[: len(here) - node.level + (1 if path.name == "__init__.py" else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("prunekit"):
                if name == "prunekit":  # from prunekit import structures -> the package
                    out += [(f"prunekit.{a.name}", node.lineno) for a in node.names]
                else:
                    out.append((name, node.lineno))
    return out


def _edges() -> list[tuple[str, str, str, Path, int]]:
    edges = []
    for path in sorted(ROOT.rglob("*.py")):
        src = _owner(path)
        for name, line in _imports(path):
            parts = name.split(".")
            if len(parts) < 2:
                continue
            edges.append((src, parts[1], name, path, line))
    return edges


def test_every_package_is_in_the_table():
    owners = {_owner(p) for p in ROOT.rglob("*.py")}
    assert owners <= set(ALLOWED), f"add to ALLOWED: {sorted(owners - set(ALLOWED))}"


def test_imports_follow_the_layers():
    bad = [f"{path.relative_to(ROOT.parent)}:{line} ({src}) imports {name}"
           for src, dst, name, path, line in _edges()
           if dst != src and dst not in KERNEL and dst not in ALLOWED.get(src, set())]
    assert not bad, "imports against the layer contract:\n" + "\n".join(bad)


def test_no_private_module_of_another_package():
    bad = []
    for src, dst, name, path, line in _edges():
        private = [p for p in name.split(".")[1:] if p.startswith("_") and p != "__init__"]
        if private and dst != src:
            bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {name}")
    assert not bad, "private modules imported across packages:\n" + "\n".join(bad)


def test_kernel_imports_nothing_above_it():
    for src, dst, name, path, line in _edges():
        if src in KERNEL:
            assert dst in KERNEL, f"{path}:{line}: kernel module imports {name}"


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for src, dst, *_ in _edges():
        if src != dst:
            graph.setdefault(src, set()).add(dst)
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join([*trail, node, nxt])}"
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
