"""One contract, run against every backend that runs on this machine."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from qhw.backend import Backend, get_backend
from qhw.circuits import feature_map
from qhw.errors import JobNotFoundError
from qhw.records import JobState

from conftest import circuit_distribution, expected_index

LOCAL_BACKENDS = ["aer_simulator", "fake_manila", "fake_lima", "braket_local", "braket_dm"]
NOISY = {"fake_manila", "fake_lima"}


def _wait(backend: Backend, job_id: str) -> JobState:
    for _ in range(2000):
        state = backend.status(job_id).state
        if state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED):
            return state
        time.sleep(0.01)
    raise AssertionError("job did not finish")


@pytest.fixture(scope="module", params=LOCAL_BACKENDS)
def compiled(request):
    backend = get_backend(request.param, seed=7)
    return backend, backend.transpile(feature_map(), seed=0)


def test_backend_satisfies_the_protocol(compiled):
    backend, executable = compiled
    assert isinstance(backend, Backend)
    assert backend.num_qubits >= 5
    assert backend.limits.max_shots >= 1024
    assert backend.limits.circuits_per_job(1024) >= 1
    assert len(set(executable.layout)) == 5
    assert all(0 <= q < backend.num_qubits for q in executable.layout)
    assert backend.estimate_cost(10, 100) is None  # local simulators are free


def test_every_basis_pattern_lands_on_its_canonical_index(compiled):
    """Angles of +-pi/2 make each outcome deterministic; all 32 patterns are checked."""
    backend, executable = compiled
    patterns = np.array(list(itertools.product([np.pi / 2, -np.pi / 2], repeat=5)))
    job_id = backend.submit(executable, patterns, 400, ["test"], seed=3)
    assert _wait(backend, job_id) is JobState.DONE
    counts = backend.result(job_id)
    assert counts.shape == (32, 32)
    assert (counts.sum(axis=1) == 400).all()
    expected = np.array([expected_index(np.sign(row)) for row in patterns])
    assert sorted(expected) == list(range(32))  # the patterns reach every outcome
    if backend.name in NOISY:
        # Calibrated noise flips some shots; the right outcome must still dominate.
        assert (counts.argmax(axis=1) == expected).all()
        assert (counts[np.arange(32), expected] > 0.6 * 400).all()
    else:
        assert (counts[np.arange(32), expected] == 400).all()


def test_distributions_match_the_exact_circuit(compiled):
    backend, executable = compiled
    angles = np.random.default_rng(1).uniform(-np.pi / 2, np.pi / 2, size=(6, 5))
    shots = 4000
    job_id = backend.submit(executable, angles, shots, ["test"], seed=5)
    _wait(backend, job_id)
    measured = backend.result(job_id) / shots
    exact = circuit_distribution(angles)
    distance = 0.5 * np.abs(measured - exact).sum(axis=1)
    # Shot noise alone gives about 0.03 here; device noise adds more on fakes.
    assert (distance < (0.2 if backend.name in NOISY else 0.06)).all(), distance


def test_unknown_job_id_is_reported_as_not_found(compiled):
    backend, _ = compiled
    with pytest.raises(JobNotFoundError):
        backend.status("no-such-job")


@pytest.mark.parametrize("name", ["aer_simulator", "fake_manila"])
def test_a_seeded_run_repeats_in_a_new_process(name):
    """Seed 0 included: Runtime's local mode once dropped it silently."""
    import subprocess
    import sys

    code = (
        "import numpy as np, time\nfrom qhw.backend import get_backend\nfrom qhw.circuits import feature_map\n"
        f"b = get_backend({name!r}, seed=0)\nex = b.transpile(feature_map(), seed=0)\n"
        "j = b.submit(ex, np.random.default_rng(0).uniform(-1.5, 1.5, (50, 5)), 256, ['t'], seed=0)\n"
        "while b.status(j).state.value != 'done': time.sleep(0.01)\nprint(b.result(j).tolist())\n"
    )
    first, second = (subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout for _ in range(2))
    assert first == second and first.strip()
