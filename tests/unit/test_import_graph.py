"""The layers of docs/architecture.md, checked on the code: ``viewsvc -> discovery -> goka``,
viewsvc's rooms (``cli -> nodes -> server | client | web -> wire``, never ``client <-> server``),
and no import circle between modules (imports inside functions count; those only for type
checking do not)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("goka", "discovery", "viewsvc")
LAYER = {"goka": 0, "discovery": 1, "viewsvc": 2}
ROOM = {"wire": 0, "client": 1, "server": 1, "web": 1, "nodes": 2, "cli": 3}
"""viewsvc's rooms: a room imports its own modules and those of lower rooms; client, web and
server share a rank, so neither imports the other."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def runtime_imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports when it runs."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for other in child.orelse:
                    visit(other)
                continue
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                names = [child.module] + [f"{child.module}.{a.name}" for a in child.names]
            for name in names:
                while name and name not in modules:
                    name = name.rpartition(".")[0]
                if name:
                    found.add(name)
            visit(child)

    visit(tree)
    found.discard(module_name(path))
    return found


def graph() -> dict[str, set[str]]:
    files = [
        p for package in PACKAGES for p in (ROOT / package).rglob("*.py") if "v1" not in p.parts
    ]
    modules = {module_name(p) for p in files}
    edges = {module_name(p): runtime_imports(p, modules) for p in files}
    # a package's __init__ is imported with any of its modules: not a circle of its own
    return {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in edges.items()}


def test_the_graph_is_read() -> None:
    edges = graph()
    assert "goka.processor" in edges["goka"]
    assert "discovery.announcer" in edges["discovery._processor_observer"]
    assert "viewsvc.wire.channels" in edges["viewsvc.client.client"]
    assert "viewsvc.server.grpc_server" in edges["viewsvc.nodes.standalone"]


def room(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else ""


def test_every_viewsvc_module_is_in_a_room() -> None:
    outside = [
        m
        for m in graph()
        if m.startswith("viewsvc.") and m != "viewsvc.__main__" and room(m) not in ROOM
    ]
    assert outside == []


def test_viewsvc_rooms_import_only_lower_rooms() -> None:
    wrong = [
        f"{module} imports {dep}"
        for module, deps in graph().items()
        if module.startswith("viewsvc.") and room(module) in ROOM
        for dep in deps
        if dep == "viewsvc"  # the package's public names are for users, not for its rooms
        or (
            dep.startswith("viewsvc.")
            and room(dep) != room(module)
            and ROOM[room(dep)] >= ROOM[room(module)]
        )
    ]
    assert wrong == []


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{module} imports {dep}"
        for module, deps in graph().items()
        for dep in deps
        if LAYER[dep.split(".")[0]] > LAYER[module.split(".")[0]]
    ]
    assert upward == []


def test_no_import_circle() -> None:
    edges = graph()
    circles: list[list[str]] = []

    def walk(module: str, path: list[str]) -> None:
        for dep in sorted(edges.get(module, ())):
            if dep in path:
                circle = path[path.index(dep) :]
                if min(circle) == dep:  # each circle once, from its smallest member
                    circles.append([*circle, dep])
            elif len(path) < 12:
                walk(dep, [*path, dep])

    for module in sorted(edges):
        walk(module, [module])
    assert circles == []
