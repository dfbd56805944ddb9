"""The paper's 5-qubit feature map and the arrays that feed it."""

from __future__ import annotations

import io

import numpy as np

from qhw.records import QUBITS

PARAMETER_NAME = "theta"
REGISTER_NAME = "meas"


def feature_map(num_qubits: int = QUBITS):
    """Ry(theta_i) on qubit i, H on each qubit, CNOT cascade 0->1->...->n-1, measure all.

    Qubit i is measured into classical bit i, so a result's integer has the
    outcome of logical qubit i in bit i (the canonical order of DESIGN.md).
    """
    circuit, theta = _parameterised_circuit(num_qubits, "qhw_feature_map")
    for i in range(num_qubits):
        circuit.ry(theta[i], i)
    for i in range(num_qubits):
        circuit.h(i)
    for i in range(num_qubits - 1):
        circuit.cx(i, i + 1)
    circuit.measure(range(num_qubits), range(num_qubits))
    return circuit


def readout_calibration(num_qubits: int = QUBITS):
    """Rx(phi_i) on qubit i, then measure qubit i into bit i.

    With every phi = 0 it prepares |0...0>, with every phi = pi |1...1>: the
    two states that give each qubit's readout assignment matrix. Being
    parameterised, it runs through the same submit path as the feature map.
    """
    circuit, phi = _parameterised_circuit(num_qubits, "qhw_readout_calibration")
    for i in range(num_qubits):
        circuit.rx(phi[i], i)
    circuit.measure(range(num_qubits), range(num_qubits))
    return circuit


def _parameterised_circuit(num_qubits: int, name: str):
    """An empty circuit with qhw's registers, and its parameter vector."""
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
    from qiskit.circuit import ParameterVector

    circuit = QuantumCircuit(QuantumRegister(num_qubits, "q"), ClassicalRegister(num_qubits, REGISTER_NAME), name=name)
    return circuit, ParameterVector(PARAMETER_NAME, num_qubits)


#: Parameter rows of the readout calibration: all qubits in 0, then all in 1.
def calibration_rows(num_qubits: int = QUBITS) -> np.ndarray:
    return np.array([[0.0] * num_qubits, [np.pi] * num_qubits])


def parameter_rows(angles: np.ndarray, circuits_per_sample: int, circuit) -> np.ndarray:
    """Parameter values for every execution, in the circuit's parameter order.

    Args:
        angles: (n_samples, 5 * K) angles; circuit k takes components 5k..5k+4.
        circuits_per_sample: K.
        circuit: the (transpiled) circuit whose ``parameters`` order the columns.

    Returns:
        (n_samples * K, 5) array; row e is sample e // K, circuit e % K.
    """
    per_circuit = angles.reshape(len(angles) * circuits_per_sample, QUBITS)
    # Transpilation keeps the parameters but their order is the circuit's to choose.
    columns = [parameter.index for parameter in circuit.parameters]
    return np.ascontiguousarray(per_circuit[:, columns], dtype=np.float64)


def counts_from_bitarray(bitarray, num_bits: int = QUBITS) -> np.ndarray:
    """Dense (n, 2**num_bits) counts from a Qiskit BitArray of shape (n,).

    BitArray packs each shot big-endian with clbit 0 as the lowest bit, so the
    packed integer is already the canonical index.
    """
    packed = np.asarray(bitarray.array)  # (n, shots, bytes)
    n = packed.shape[0]
    values = np.zeros(packed.shape[:2], dtype=np.int64)
    for byte in range(packed.shape[2]):
        values = (values << 8) | packed[:, :, byte]
    width = 2**num_bits
    values &= width - 1
    flat = values + (np.arange(n)[:, None] * width)
    return np.bincount(flat.ravel(), minlength=n * width).reshape(n, width)


def to_qpy(circuit) -> bytes:
    from qiskit import qpy

    buffer = io.BytesIO()
    qpy.dump(circuit, buffer)
    return buffer.getvalue()


def from_qpy(data: bytes):
    from qiskit import qpy

    return qpy.load(io.BytesIO(data))[0]


def to_qasm3(circuit) -> str:
    from qiskit import qasm3

    return qasm3.dumps(circuit)
