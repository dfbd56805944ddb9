"""The wheel ships the adapters and migrations inside the qhw package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_migrations_and_adapters_under_qhw(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("qhw-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "qhw/cli.py",
        "qhw/backends/aer.py",
        "qhw/backends/ibm.py",
        "qhw/migrations/env.py",
        "qhw/migrations/script.py.mako",
        "qhw/migrations/versions/0001_initial_schema.py",
    ):
        assert required in names, required
    assert not any(name.startswith(("backends/", "migrations/", "tests/")) for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "qhw = qhw.cli:run" in zipfile.ZipFile(wheel).read(entry_points).decode()


def _qhw_imports(everywhere: bool) -> dict[str, set[str]]:
    """qhw's modules and the qhw modules each imports (at module level, or ``everywhere``)."""
    import ast

    root = Path(__file__).resolve().parent.parent
    modules = {}
    for prefix, folder in (("qhw", root / "qhw"), ("qhw.backends", root / "backends")):
        for path in folder.rglob("*.py"):
            modules[".".join([prefix, *path.relative_to(folder).with_suffix("").parts]).removesuffix(".__init__")] = path
    imports = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        nodes = ast.walk(tree) if everywhere else tree.body
        found = set()
        for node in nodes:
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        imports[name] = {module for module in found if module in modules and module != name}
    return imports


def test_the_package_has_no_import_cycle():
    import networkx as nx

    graph = nx.DiGraph([(module, other) for module, others in _qhw_imports(everywhere=False).items() for other in others])
    assert list(nx.simple_cycles(graph)) == []
    everywhere = _qhw_imports(everywhere=True)
    # The price tables and the backend contract: the contract uses prices, prices never ask the contract.
    assert "qhw.backend" not in everywhere["qhw.pricing"] and "qhw.pricing" in everywhere["qhw.backend"]
