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
SCRIPTS = sorted(path.name for path in BENCHMARKS.glob("*.py") if path.name != "quick.py")
#: What each script's table starts with, to tell a printed table from an empty run.
TABLE_SIGNS = {
    "accuracy.py": "qhw accuracy by feature map",
    "artifacts.py": "loading a feature set of",
    "adaptive.py": "transfer accuracy [95 %]",
    "braket_results.py": "| reader | seconds | against qhw |",
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
