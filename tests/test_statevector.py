"""The statevector backend: exact probabilities, against Qiskit and the closed form."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.quantum_info import Statevector

from qhw import circuits, runs
from qhw.backend import get_backend
from qhw.backends.statevector import outcome_probabilities
from qhw.features import build_features
from qhw.store.arrays import load_arrays

from conftest import circuit_distribution


@pytest.fixture(scope="module")
def statevector():
    return get_backend("statevector", seed=0)


def _exact(template, row) -> np.ndarray:
    bound = template.assign_parameters(dict(zip(template.parameters, row, strict=True)))
    return Statevector(bound.remove_final_measurements(inplace=False)).probabilities()


def test_the_feature_map_agrees_with_qiskits_statevector_and_the_closed_form(statevector):
    template = circuits.feature_map()
    executable = statevector.transpile(template, seed=0)
    rows = np.random.default_rng(1).uniform(-np.pi / 2, np.pi / 2, (40, 5))
    probabilities = outcome_probabilities(executable.circuit, rows)
    assert max(np.abs(_exact(template, row) - p).max() for row, p in zip(rows, probabilities, strict=True)) < 1e-10
    assert np.abs(probabilities - circuit_distribution(rows)).max() < 1e-10


def test_the_readout_calibration_prepares_all_zeros_and_all_ones(statevector):
    executable = statevector.transpile(circuits.readout_calibration(5), seed=0)
    probabilities = outcome_probabilities(executable.circuit, circuits.calibration_rows(5))
    expected = np.zeros((2, 32))
    expected[0, 0] = expected[1, 31] = 1
    assert np.abs(probabilities - expected).max() < 1e-10


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_random_twelve_qubit_circuit_agrees_with_qiskit(statevector, seed):
    from qiskit import QuantumCircuit
    from qiskit.circuit import ParameterVector
    from qiskit.circuit.random import random_circuit

    angles = ParameterVector("a", 12)
    template = QuantumCircuit(12, 12)
    for qubit in range(12):
        template.ry(angles[qubit], qubit)
    template.compose(random_circuit(12, 6, max_operands=3, seed=seed), inplace=True)
    template.measure(range(12), range(12))
    executable = statevector.transpile(template, seed=0)
    rows = np.random.default_rng(seed).uniform(-1, 1, (3, 12))
    probabilities = outcome_probabilities(executable.circuit, rows)
    assert probabilities.shape == (3, 4096)
    assert max(np.abs(_exact(template, row) - p).max() for row, p in zip(rows, probabilities, strict=True)) < 1e-10


def test_measurements_into_other_classical_bits_land_on_their_bits(statevector):
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(3, 4)
    circuit.x(0)  # qubit 0 reads 1, into classical bit 2; qubit 1 into bit 0; qubit 2 unmeasured
    circuit.h(2)
    circuit.measure([0, 1], [2, 0])
    probabilities = outcome_probabilities(statevector.transpile(circuit).circuit, np.zeros((1, 0)))
    assert probabilities.shape == (1, 16) and probabilities[0, 0b0100] == pytest.approx(1)


def test_shots_repeat_with_the_seed_and_only_with_it(statevector):
    executable = statevector.transpile(circuits.feature_map(), seed=0)
    rows = np.random.default_rng(2).uniform(-np.pi / 2, np.pi / 2, (20, 5))
    first, again, other = (
        statevector.run(executable, rows, 500, seed=seed).counts for seed in (7, 7, 8)
    )
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert (first.sum(axis=1) == 500).all()


def test_a_run_of_two_circuits_a_sample_agrees_with_the_closed_form_and_with_aer(store):
    feature_set = build_features(store, components=10, limit_train=60, limit_test=40, epochs=1)
    exact_run = runs.submit(store, backend_name="statevector", feature_set_id=feature_set.id, split="test", shots=4000).run
    aer_run = runs.submit(store, backend_name="aer_simulator", feature_set_id=feature_set.id, split="test", shots=4000).run
    angles = load_arrays(store.artifacts, feature_set).angles_test
    exact, aer = store.results.run_counts(exact_run.id), store.results.run_counts(aer_run.id)
    assert exact.counts.shape == (40, 2, 32)
    for circuit in (0, 1):
        expected = circuit_distribution(angles[exact.sample_index, 5 * circuit : 5 * circuit + 5])
        measured = exact.counts[:, circuit, :] / 4000
        assert (0.5 * np.abs(measured - expected).sum(axis=1)).max() < 0.06  # shot noise only
        between = 0.5 * np.abs(measured - aer.counts[:, circuit, :] / 4000).sum(axis=1)
        assert between.mean() < 0.06  # two independent 4,000-shot samples of one distribution


def test_a_circuit_it_cannot_simulate_fails_its_job_with_the_reason(statevector):
    from qiskit import QuantumCircuit

    from qhw.backend import Executable
    from qhw.errors import JobFailedError

    circuit = QuantumCircuit(1, 1)
    circuit.measure(0, 0)
    circuit.x(0)  # a gate after the measurement
    with pytest.raises(JobFailedError, match="only final measurements"):
        statevector.run(Executable(circuit, (0,)), np.zeros((1, 0)), 10)


def test_statevector_simulates_at_most_20_qubits_and_refuses_more_in_one_line():
    from qiskit import QuantumCircuit

    from qhw.errors import BackendError

    backend = get_backend("statevector")
    wide = QuantumCircuit(20, 20)
    wide.h(19)
    wide.measure(range(20), range(20))
    assert backend.transpile(wide).circuit.num_qubits == 20  # the documented limit is reached, not only stated
    wider = QuantumCircuit(21, 21)
    wider.measure(range(21), range(21))
    with pytest.raises(BackendError, match="^statevector simulates at most 20 qubits; the circuit has 21$"):
        backend.transpile(wider)
