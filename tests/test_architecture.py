"""The package's layers (docs/architecture.md): no import cycle, and no module
imports from a layer above its own, lazy imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Every module's layer (docs/architecture.md); qhw.backends.* and qhw.store.* by their package.
LAYERS = {
    0: ["errors", "checks", "settings", "files", "boundary", "progress", "providers", "schema", "config", "retrying"],
    1: ["records", "jobstates", "pricing", "noise", "device_mitigation"],
    2: ["feature_maps", "circuits", "packing"],
    3: ["store"],
    4: ["backend", "backends"],
    5: ["planning", "executables", "quality"],
    6: ["worker", "parallel", "repair"],
    7: ["rounds", "training", "adaptive", "features", "mitigation", "datasets"],
    8: ["runs", "compare", "overview", "export", "report", "tracking"],
    9: ["cli", "cli_options", "demo"],
}
LAYER = {name: layer for layer, names in LAYERS.items() for name in names}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in ((ROOT / "qhw", "qhw"), (ROOT / "backends", "qhw.backends")):
        for path in folder.rglob("*.py"):
            parts = [part for part in path.relative_to(folder).with_suffix("").parts if part != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The qhw modules a module imports, anywhere in it (a function's lazy imports too)."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            candidates = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        imported |= {candidate for candidate in candidates if candidate in known and candidate != name}
    return imported


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts == ["qhw"] or parts[1] == "migrations":
        return None  # the package itself; Alembic's environment (outside the layers)
    return LAYER[parts[1]]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def test_every_module_has_a_layer():
    missing = [name for name in _graph() if name != "qhw" and name.split(".")[1] != "migrations" and name.split(".")[1] not in LAYER]
    assert not missing, f"add these to LAYERS (and docs/architecture.md): {missing}"


def test_no_module_imports_from_a_higher_layer():
    graph = _graph()
    upward = [
        f"{name} (layer {_layer(name)}) imports {target} (layer {_layer(target)})"
        for name, targets in graph.items()
        for target in targets
        if _layer(name) is not None and _layer(target) is not None and _layer(target) > _layer(name)
    ]
    assert not upward, "\n".join(sorted(upward))


def test_there_is_no_import_cycle():
    graph = _graph()
    cycles, done, path = [], set(), []

    def visit(module: str) -> None:
        if module in path:
            cycles.append(path[path.index(module):] + [module])
            return
        if module in done:
            return
        path.append(module)
        for target in sorted(graph.get(module, ())):
            visit(target)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    # The package __init__ and a module's own submodules are not a cycle of ideas.
    cycles = [cycle for cycle in cycles if "qhw" not in cycle]
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_the_store_keeps_no_module_state():
    """What a command uses is passed in (Store(url, artifacts=...)), never set
    in a module: no ``global`` statement in qhw/store, and no module-level
    name bound to a mutable container."""
    mutable_calls = {"dict", "list", "set", "defaultdict", "OrderedDict", "deque"}
    found = []
    for path in sorted((ROOT / "qhw" / "store").glob("*.py")):
        tree = ast.parse(path.read_text())
        found += [f"{path.name}:{node.lineno}: global" for node in ast.walk(tree) if isinstance(node, ast.Global)]
        for node in tree.body:
            value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
            mutable = isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)) or (
                isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in mutable_calls
            )
            if mutable:
                found.append(f"{path.name}:{node.lineno}: a mutable module-level value")
    assert not found, "\n".join(found)
