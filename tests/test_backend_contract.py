"""One contract, run against every backend that runs on this machine."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from qhw.backend import DEVICE_KINDS, LocalBackend, RemoteBackend, get_backend
from qhw.circuits import feature_map

from conftest import circuit_distribution, expected_index

LOCAL_BACKENDS = ["aer_simulator", "statevector", "fake_manila", "fake_lima", "braket_local", "braket_dm", "braket_emulator"]
NOISY = {"fake_manila", "fake_lima", "braket_emulator"}
#: Largest total variation from the exact distribution each noisy backend may
#: show on 4,000 shots: IBM's fakes about 0.1; the test document's emulated
#: device (5 % readout error a qubit, 2 % a CZ: see device_documents) about 0.2.
NOISE_BOUND = {"fake_manila": 0.2, "fake_lima": 0.2, "braket_emulator": 0.35}


@pytest.fixture(scope="module")
def emulated_device(tmp_path_factory):
    from device_documents import write_garnet_like

    return write_garnet_like(tmp_path_factory.mktemp("devices") / "garnet.json")


@pytest.fixture(scope="module", params=LOCAL_BACKENDS)
def compiled(request):
    name = request.param
    if name == "braket_emulator":
        name = f"braket_emulator:{request.getfixturevalue('emulated_device')}"
    backend = get_backend(name, seed=7)
    return backend, backend.transpile(feature_map(), seed=0)


def _short(backend) -> str:
    return backend.name.split(":", 1)[0]


def test_backend_satisfies_the_protocol(compiled):
    backend, executable = compiled
    assert isinstance(backend, LocalBackend) and not isinstance(backend, RemoteBackend) and backend.is_local
    profile = backend.profile()
    assert profile == backend.profile(offline=True)  # a local device is all known here
    assert backend.num_qubits == profile.qubits >= 5
    assert profile.limits.max_shots >= 1024
    assert profile.limits.circuits_per_job(1024) >= 1
    assert len(set(executable.layout)) == 5
    if _short(backend) == "braket_emulator":  # the document numbers its qubits 1..6, as IQM does
        assert all(1 <= q <= backend.num_qubits for q in executable.layout)
    else:
        assert all(0 <= q < backend.num_qubits for q in executable.layout)
    assert backend.kind in DEVICE_KINDS and backend.description
    assert not backend.is_paid and backend.credentials_configured is None  # local simulators are free
    snapshot = backend.calibration(executable.layout)
    if _short(backend) in NOISY:
        assert backend.kind == "emulation"
        assert len(snapshot.qubits) == 5 and snapshot.calibrated_at is not None
        assert all(q.readout_error is not None and q.t1_us > 0 for q in snapshot.qubits)
    else:
        assert backend.kind == "simulator" and snapshot is None


def test_every_basis_pattern_lands_on_its_canonical_index(compiled):
    """Angles of +-pi/2 make each outcome deterministic; all 32 patterns are checked."""
    backend, executable = compiled
    patterns = np.array(list(itertools.product([np.pi / 2, -np.pi / 2], repeat=5)))
    result = backend.run(executable, patterns, 400, seed=3)
    assert result.complete
    counts = result.counts
    assert counts.shape == (32, 32)
    assert (counts.sum(axis=1) == 400).all()
    expected = np.array([expected_index(np.sign(row)) for row in patterns])
    assert sorted(expected) == list(range(32))  # the patterns reach every outcome
    if _short(backend) in NOISY:
        # Calibrated noise flips some shots; the right outcome must still dominate.
        assert (counts.argmax(axis=1) == expected).all()
        # The emulated document's 5 % readout error a qubit leaves about 0.95**5 = 77 %
        # of the shots right, less its gate errors (unseeded: Braket's simulators take no seed).
        floor = 0.5 if _short(backend) == "braket_emulator" else 0.6
        assert (counts[np.arange(32), expected] > floor * 400).all()
    else:
        assert (counts[np.arange(32), expected] == 400).all()


def test_distributions_match_the_exact_circuit(compiled):
    backend, executable = compiled
    angles = np.random.default_rng(1).uniform(-np.pi / 2, np.pi / 2, size=(6, 5))
    shots = 4000
    measured = backend.run(executable, angles, shots, seed=5).counts / shots
    exact = circuit_distribution(angles)
    distance = 0.5 * np.abs(measured - exact).sum(axis=1)
    # Shot noise alone gives about 0.03 here; device noise adds more on fakes.
    assert (distance < NOISE_BOUND.get(_short(backend), 0.06)).all(), distance


@pytest.mark.parametrize("name", ["aer_simulator", "fake_manila"])
def test_a_seeded_run_repeats_in_a_new_process(name):
    """Seed 0 included: Runtime's local mode once dropped it silently."""
    import subprocess
    import sys

    code = (
        "import numpy as np, time\nfrom qhw.backend import get_backend\nfrom qhw.circuits import feature_map\n"
        f"b = get_backend({name!r}, seed=0)\nex = b.transpile(feature_map(), seed=0)\n"
        "print(b.run(ex, np.random.default_rng(0).uniform(-1.5, 1.5, (50, 5)), 256, seed=0).counts.tolist())\n"
    )
    first, second = (subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout for _ in range(2))
    assert first == second and first.strip()


def test_the_device_graph_is_the_device_the_calibration_describes(compiled):
    """What qhw.packing partitions: a simulator has no topology; a device's graph
    has its qubits by the device's own labels, couplers where it can run a
    two-qubit gate, and the same figures as its calibration snapshot."""
    backend, executable = compiled
    graph = backend.profile().graph
    if backend.kind == "simulator":
        assert graph is None
        return
    snapshot = backend.calibration(executable.layout)
    assert set(executable.layout) <= set(graph.qubits) and len(graph.qubits) == backend.num_qubits
    for qubit in snapshot.qubits:
        assert graph.readout_error.get(qubit.qubit) == pytest.approx(qubit.readout_error)
        if qubit.t1_us is not None:
            assert graph.t1_us[qubit.qubit] == pytest.approx(qubit.t1_us)
    for pair in snapshot.pairs:
        assert frozenset(pair.qubits) in graph.couplers
    expected = {
        "fake_manila": [(0, 1), (1, 2), (2, 3), (3, 4)],  # IBM's Falcon r5.11L: a line
        "fake_lima": [(0, 1), (1, 2), (1, 3), (3, 4)],  # a T
        "braket_emulator": [(1, 2), (2, 3), (3, 4), (4, 5), (5, 6)],  # the document's line, numbered from 1
    }[_short(backend)]
    assert graph.couplers == {frozenset(pair) for pair in expected}


def test_a_local_job_that_fails_is_its_own_error_not_a_wait_for_ever():
    """A primitive job's done() is true only for a success: waiting for it
    until done() waited for ever on a job that failed (a collect hung so in
    CI). A failed job in this process is a JobFailedError naming its error."""
    import threading

    from qiskit.primitives.primitive_job import PrimitiveJob

    from qhw.backends._qiskit_jobs import local_job_counts
    from qhw.errors import JobFailedError

    def fails():
        raise RuntimeError("the simulator ran out of memory")

    job = PrimitiveJob(fails)
    job._submit()
    outcome: list[BaseException] = []
    waiter = threading.Thread(target=lambda: outcome.extend(_raised(lambda: local_job_counts(job, None, 1))), daemon=True)
    waiter.start()
    waiter.join(30)
    assert not waiter.is_alive(), "still waiting for a job that failed"
    assert len(outcome) == 1 and isinstance(outcome[0], JobFailedError), outcome
    assert "the simulator ran out of memory" in str(outcome[0])


def _raised(call) -> list[BaseException]:
    try:
        call()
    except BaseException as err:  # noqa: BLE001 - handed back to the test's thread
        return [err]
    return []
