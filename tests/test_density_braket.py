"""braket_emulator: on the noisy engine, against Braket's own density-matrix simulator.

The reference is what Braket's LocalEmulator computes: the circuit with the
noise model Braket builds from the device document written in by Braket
(EmulatedDevice.noisy), on Braket's density-matrix simulator (braket_dm), with
a Probability result type for the register's qubits instead of shots: exact.
The engine must give the same probabilities to 1e-8.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qhw import circuits
from qhw.backends import _density
from qhw.backends._density import ROTATIONS, Unsupported

from conftest import engine_agreement

TOLERANCE = 1e-8


def _document(tmp_path: Path, qubits: int = 6) -> Path:
    """A Garnet-like document whose qubits differ (RB and readout fidelities
    by qubit, CZ by pair), so that a copy reading another's channels would show."""
    from device_documents import garnet_like

    data = json.loads(garnet_like(qubits).json())
    for label, figures in data["standardized"]["oneQubitProperties"].items():
        for fidelity in figures["oneQubitFidelity"]:
            offset = 0.004 if fidelity["fidelityType"]["name"] == "READOUT" else 0.0003
            fidelity["fidelity"] -= offset * int(label)
    for pair, figures in data["standardized"]["twoQubitProperties"].items():
        for gate in figures["twoQubitGateFidelity"]:
            gate["fidelity"] -= 0.002 * int(pair.split("-")[0])
    data["qhw_device"] = {"name": "iqm_garnet"}
    path = tmp_path / "garnet.json"
    path.write_text(json.dumps(data))
    return path


def _backend(path: Path):
    from qhw.backend import get_backend

    return get_backend(f"braket_emulator:{path}")


def braket_dm_probabilities(backend, executable, row, slot: int = 0) -> np.ndarray:
    """Braket's density-matrix simulator on the emulator's noisy circuit: the
    register of ``slot``'s outcome probabilities, index bit j its bit j,
    exactly (a Probability result type, no shots)."""
    from braket.circuits import Circuit
    from braket.circuits.measure import Measure
    from braket.devices import LocalSimulator
    from qiskit_braket_provider.providers.adapter import rename_parameter

    names = [rename_parameter(p) for p in executable.circuit.parameters]
    noisy = backend._noisy(executable)  # (with what --noise adds, if the executable has any)
    bound = noisy.make_bound_circuit(dict(zip(names, map(float, row), strict=True)))
    measured = backend._measured(executable)[slot]
    reference = Circuit()
    for instruction in bound.instructions:
        if not isinstance(instruction.operator, Measure):
            reference.add_instruction(instruction)
    reference.probability(target=measured)
    values = np.asarray(LocalSimulator("braket_dm").run(reference, shots=0).result().values[0])
    # Braket's first target is the highest bit; register bit j is measured[j].
    n = len(measured)
    index = np.arange(2**n)
    reversed_bits = sum(((index >> j) & 1) << (n - 1 - j) for j in range(n))
    return values[reversed_bits]


def _rows(executable, n, seed=0):
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, (n, len(executable.circuit.parameters)))


@pytest.mark.parametrize("template", [circuits.feature_map(), circuits.feature_map(2)], ids=["paper map", "two qubits"])
def test_the_engine_equals_braket_dm_on_an_emulated_device(tmp_path, template):
    backend = _backend(_document(tmp_path))
    executable = backend.transpile(template, seed=1)
    assert backend.engine_for(executable, None).engine == "density"
    rows = _rows(executable, 3)
    engine = _density.probabilities(backend._engine_program(executable), rows, ["meas"])
    for r in range(3):
        assert np.abs(engine[r, 0] - braket_dm_probabilities(backend, executable, rows[r])).max() < TOLERANCE
    # The document's noise is there: the ideal distribution is not the engine's.
    from qhw.backend import get_backend
    from qhw.backends.statevector import outcome_probabilities

    ideal = outcome_probabilities(get_backend("statevector").transpile(template).circuit, rows[:1])
    assert np.abs(engine[0, 0] - ideal[0]).max() > 1e-3


def test_each_packed_copy_has_its_own_qubits_noise(tmp_path):
    """Three copies on a 17-qubit line: each copy, as the run computes it (a
    part of its own), equals braket_dm on its own qubits, and the copies'
    distributions differ (their qubits' fidelities do)."""
    from dataclasses import replace

    from qhw.executables import packed_executable
    from qhw.parallel import part_executable
    from qhw.planning import plan_packing

    backend = _backend(_document(tmp_path, 17))
    template = circuits.feature_map()
    plan = plan_packing(backend, backend.profile(), 3, 1, template=template)
    packed = packed_executable(backend, plan, 1, template=template)
    assert packed.copies == 3 and backend.engine_for(packed, None).engine == "density"
    packed = replace(packed, engine="density")
    row = _rows(packed, 1, seed=3)
    found = []
    for copy in range(3):
        part = part_executable(backend, packed, copy)
        rows = np.ascontiguousarray(row[:, circuits.copy_columns(packed.circuit, part.circuit)])
        engine = _density.probabilities(backend._engine_program(part), rows, [circuits.copy_register(0)])[0, 0]
        assert np.abs(engine - braket_dm_probabilities(backend, part, rows[0])).max() < TOLERANCE
        found.append(engine)
    assert np.abs(found[0] - found[2]).max() > 1e-3


def test_a_braket_circuit_with_asymmetric_gates_and_noise_equals_braket_dm():
    """Braket's order of a matrix's qubits (its first target the highest bit)
    read right: a CNot, a two-qubit Kraus channel that is not symmetric in its
    qubits, free-parameter angles (one an expression), on qubits labelled out of order."""
    from braket.circuits import Circuit, FreeParameter
    from braket.devices import LocalSimulator

    from qhw.backends._braket_devices import engine_program

    a, b = FreeParameter("alpha"), FreeParameter("beta")
    # Amplitude damping of the first target only.
    damp = [np.kron(np.diag([1, np.sqrt(0.9)]), np.eye(2)), np.kron(np.sqrt(0.1) * np.array([[0, 1], [0, 0]]), np.eye(2))]
    circuit = (
        Circuit().rx(7, a).prx(3, 0.4, 2 * b + 0.3).cnot(7, 3).kraus([7, 3], damp).gpi2(3, b)
        .depolarizing(7, 0.02).bit_flip(3, 0.05).measure([7, 3])
    )
    program = engine_program(circuit, ["alpha", "beta"], [("meas", [3, 7])])
    rows = np.random.default_rng(2).uniform(-np.pi, np.pi, (3, 2))
    engine = _density.probabilities(program, rows, ["meas"])
    for r, (x, y) in enumerate(rows):
        reference = Circuit()
        for instruction in circuit.make_bound_circuit({"alpha": x, "beta": y}).instructions[:-2]:  # the two measures
            reference.add_instruction(instruction)
        reference.probability(target=[7, 3])  # register bit 0 is qubit 3: Braket's lowest bit is its last target
        values = np.asarray(LocalSimulator("braket_dm").run(reference, shots=0).result().values[0])
        assert np.abs(engine[r, 0] - values).max() < TOLERANCE


def _matrix_up_to_phase(a: np.ndarray, b: np.ndarray) -> float:
    phase = np.vdot(b.reshape(-1), a.reshape(-1))
    return np.abs(a - b * phase / abs(phase)).max()


def _rotation_matrix(name: str, angles: list[float]) -> np.ndarray:
    """The product of a ROTATIONS entry, as the engine applies it."""
    total = np.eye(2, dtype=complex)
    for step in ROTATIONS[name]:
        if isinstance(step, np.ndarray):
            total = step @ total
        else:
            _, index, sign = step
            a = sign * angles[index]
            total = np.diag([np.exp(-0.5j * a), np.exp(0.5j * a)]) @ total
    return total


def test_every_rotation_the_engine_binds_is_its_gate():
    """Each parameterised gate, as fixed gates and rz, is the gate itself (up to
    a global phase): Qiskit's for IBM's, Braket's for the others (IQM's prx,
    IonQ's gpi and gpi2)."""
    from braket.circuits import gates as braket
    from qiskit.circuit import library as qiskit

    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.uniform(-4, 4, 2)
        gates = {
            "rz": qiskit.RZGate(a).to_matrix(),
            "p": qiskit.PhaseGate(a).to_matrix(),
            "rx": qiskit.RXGate(a).to_matrix(),
            "ry": qiskit.RYGate(a).to_matrix(),
            "phaseshift": braket.PhaseShift(a).to_matrix(),
            "prx": braket.PRx(a, b).to_matrix(),
            "gpi": braket.GPi(a).to_matrix(),
            "gpi2": braket.GPi2(a).to_matrix(),
        }
        assert set(gates) == set(ROTATIONS)
        for name, matrix in gates.items():
            assert _matrix_up_to_phase(_rotation_matrix(name, [a, b]), matrix) < 1e-12, name
        assert _matrix_up_to_phase(_rotation_matrix("rx", [a]), braket.Rx(a).to_matrix()) < 1e-12


def test_parameterised_gates_the_engine_cannot_bind_are_refused():
    from qiskit import QuantumCircuit
    from qiskit.circuit import Parameter

    theta = Parameter("t")
    for gate in ("u", "rzz", "square"):
        circuit = QuantumCircuit(2, 2)
        if gate == "u":
            circuit.u(theta, 0, 0, 0)
        elif gate == "rzz":
            circuit.rzz(theta, 0, 1)
        else:
            circuit.rz(theta * theta, 0)
        circuit.measure([0, 1], [0, 1])
        with pytest.raises(Unsupported, match="parameterised|not affine"):
            _density.compile_circuit(circuit, _density.NoiseChannels())


# --- in qhw's runs --------------------------------------------------------------------------------------


def _submit(store, backend: str, **options):
    from qhw import runs

    return runs.submit(store, backend_name=backend, split="test", seed=5, **options)



def test_braket_emulator_runs_the_density_engine_by_default_and_braket_on_request(featured_store, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from qhw.backends import _braket_devices
    from qhw.cli import main

    document = _document(tmp_path)
    ran = []
    real_run = _braket_devices.EmulatedDevice.run
    monkeypatch.setattr(_braket_devices.EmulatedDevice, "run", lambda self, *a, **kw: ran.append(1) or real_run(self, *a, **kw))
    name = f"braket_emulator:{document}"
    density = _submit(featured_store, name, shots=4096, limit=10, workers=1)
    assert not ran, "the engine ran the jobs, not LocalEmulator"
    braket = _submit(featured_store, name, shots=4096, limit=10, engine="braket", workers=1)
    assert len(ran) == 10, "--engine braket runs LocalEmulator, one bound circuit a sample"
    ideal = _submit(featured_store, "braket_local", shots=4096, limit=10)
    assert (density.run.engine, braket.run.engine) == ("density", "braket")
    shown = json.loads(CliRunner().invoke(main, ["runs", "show", str(density.run.id), "--json"]).stdout)
    assert (shown["engine"], shown["engine_note"]) == ("density", None)
    between_engines, noise = engine_agreement(featured_store, density.run.id, braket.run.id, ideal.run.id)
    assert between_engines < 0.03, between_engines
    assert noise > 2 * between_engines, (noise, between_engines)


def test_a_braket_circuit_the_engine_cannot_represent_runs_on_localemulator_and_says_why(featured_store, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from qhw.backends import _braket_devices
    from qhw.cli import main

    def refuse(*args, **kwargs):
        raise Unsupported("the noise kraus has free parameters")

    monkeypatch.setattr(_braket_devices, "engine_program", refuse)
    document = _document(tmp_path)
    result = CliRunner().invoke(
        main, ["submit", "--backend", f"braket_emulator:{document}", "--split", "test", "--limit", "3", "--workers", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["engine"] == "braket"
    assert "free parameters" in result.stderr and "runs on Braket's LocalEmulator" in result.stderr
    run = featured_store.ledger.run(None)
    assert run.engine == "braket" and "free parameters" in run.engine_note
    assert featured_store.results.run_counts(run.id).counts.shape[0] == 3
