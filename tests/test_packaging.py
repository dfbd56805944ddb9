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
    assert "qhw = qhw.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
