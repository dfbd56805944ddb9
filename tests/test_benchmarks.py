"""Every script in benchmarks/ runs as its docstring says, in its quick mode.

A benchmark is read when someone measures, which may be months after the API
it calls changed; run here at its smallest sizes (``--quick``), an API change
that breaks one fails the test suite instead. The figures are not looked at
(tests never assert a time); only that each script ends well and prints its table.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(path.name for path in BENCHMARKS.glob("*.py") if path.name not in {"quick.py", "tables.py"})  # helpers, not benchmarks
#: What each script's table starts with, to tell a printed table from an empty run.
TABLE_SIGNS = {
    "accuracy.py": "qhw accuracy by feature map",
    "artifacts.py": "loading a feature set of",
    "adaptive.py": "transfer accuracy [95 %]",
    "braket_results.py": "one results.json of",
    "emulated_hardware.py": "hybrid classifier on emulated IBM devices",
    "ledger.py": "commits",
    "noise.py": "transfer accuracy against --noise scale=F",
    "packing.py": "best error",
    "quality.py": "the exact-answer check in a run's collect",
    "reuse.py": "mean fidelity by position",
    "scale.py": "qhw at scale",
    "simulators.py": "emulated devices, ",  # its second table: printed after the first
}


def test_every_benchmark_is_run_here():
    assert set(SCRIPTS) == set(TABLE_SIGNS), "a new benchmark needs its --quick run here (TABLE_SIGNS)"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_runs_in_its_quick_mode(script, tmp_path):
    env = {**os.environ, "QHW_HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "3", "TMPDIR": str(tmp_path)}
    env.pop("QHW_DB_URL", None)
    # A timeout that only a hang reaches: each quick run takes seconds to a minute or two.
    done = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick"], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert TABLE_SIGNS[script] in done.stdout, done.stdout[-3000:]


def test_a_table_is_written_as_the_markdown_the_docs_include(tmp_path):
    """What the pages include: the table as printed, aligned, with the command
    and the machine that measured it; --quick alone writes nothing."""
    env = {**os.environ, "QHW_HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path)}
    command = [sys.executable, str(BENCHMARKS / "braket_results.py"), "--quick"]
    done = subprocess.run([*command, "--tables", str(tmp_path / "tables"), "--tag", "small"], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    text = (tmp_path / "tables" / "braket_results-read-small.md").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("<!-- Written by `python benchmarks/braket_results.py --quick --tables ")
    assert "| reader | seconds | against qhw |" in lines and "|---|---:|---:|" in lines
    rows = [line for line in lines if line.startswith("| ") and "reader" not in line]
    assert len(rows) == 3 and rows[0].startswith("| qhw: json.loads") and rows[0].endswith("| 1.0x |")
    assert lines[-1].startswith("<small>Measured by") and f"{os.cpu_count()} cores" in lines[-1]
    quiet = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert quiet.returncode == 0 and "written:" not in quiet.stdout


def test_a_cell_with_a_bar_stays_in_its_column(tmp_path, monkeypatch, capsys):
    import argparse

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import tables

    published = tables.Tables(argparse.Namespace(tables=tmp_path, tag=None, quick=False))
    path = published.show("t", "a title", ("what", "n"), [("a|b", "1,024"), ("c", "-")])
    assert "| a\\|b | 1,024 |" in path.read_text() and "|---|---:|" in path.read_text()
    assert "a title" in capsys.readouterr().out
