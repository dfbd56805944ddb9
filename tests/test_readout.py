"""The hybrid's observables readout: for each parameter of a feature map, the
Pauli-Z expectation that moves most with it, chosen from the template alone.

The choice is checked against Qiskit's own expectation values: for the paper's
map and the angle map each chosen observable must read its parameter and no
other (|<Z_S>| = |sin theta_j|, cos theta_j), which a wrong ranking, a wrong
bit order or a wrong parity breaks.
"""

from __future__ import annotations

import numpy as np
import pytest

from qhw import feature_maps


def pauli_label(mask: int, num_qubits: int) -> str:
    """Qiskit's label of Z on the qubits of ``mask`` (qubit 0 rightmost)."""
    return "".join("Z" if mask >> qubit & 1 else "I" for qubit in reversed(range(num_qubits)))


def test_z_expectations_is_the_walsh_hadamard_transform():
    from scipy.linalg import hadamard

    rng = np.random.default_rng(3)
    for qubits in range(1, 7):
        probabilities = rng.random((3, 2, 2**qubits))
        assert np.allclose(feature_maps.z_expectations(probabilities), probabilities @ hadamard(2**qubits).T)


def test_the_observable_matrix_gives_qiskit_s_sampled_expectations():
    from qiskit.result import sampled_expectation_value

    rng = np.random.default_rng(4)
    counts = rng.integers(0, 50, 2**4)
    masks = [1, 6, 9, 15]
    frequencies = counts / counts.sum()
    ours = frequencies @ feature_maps.observable_matrix(masks, 4)
    theirs = [sampled_expectation_value({format(x, "04b"): int(c) for x, c in enumerate(counts)}, pauli_label(m, 4)) for m in masks]
    assert np.allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize(
    "name, reads",
    [
        # Before the cascade qubit i reads 1 with probability (1 - sin theta_i)/2.
        ("paper", lambda theta: np.abs(np.sin(theta))),
        # Ry(theta) alone: <Z_i> = cos theta_i.
        ("angle", lambda theta: np.abs(np.cos(theta))),
    ],
)
def test_each_parameter_gets_the_observable_that_reads_it_and_no_other(name, reads):
    from qiskit.quantum_info import Pauli, Statevector

    chosen = feature_maps.resolve(name, qubits=5)
    masks = feature_maps.sensitive_observables(chosen.template, chosen.angle_range)
    assert len(masks) == 5 and len(set(masks)) == 5 and 0 not in masks
    bare = chosen.template.remove_final_measurements(inplace=False)
    rng = np.random.default_rng(7)
    low, high = chosen.angle_range
    for _ in range(4):
        theta = rng.uniform(low, high, 5)
        state = Statevector(bare.assign_parameters(theta))
        values = [state.expectation_value(Pauli(pauli_label(mask, 5))).real for mask in masks]
        assert np.allclose(np.abs(values), reads(theta), atol=1e-9)


def test_every_built_in_map_gets_one_distinct_observable_a_parameter():
    for name in feature_maps.REGISTRY:
        chosen = feature_maps.resolve(name, qubits=4)
        masks = feature_maps.sensitive_observables(chosen.template, chosen.angle_range)
        assert len(masks) == chosen.num_parameters == len(set(masks))
        assert all(0 < mask < 2**4 for mask in masks)
