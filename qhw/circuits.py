"""The paper's feature map, the readout calibration, packing, and the arrays that feed a template.

Other feature maps are built (or read from a file) in :mod:`qhw.feature_maps`,
in the same form: parameters ``theta[i]``, qubit i measured into bit i of ``meas``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import numpy as np

from qhw.records import ceil_div

V = TypeVar("V")


class PerCircuit(Generic[V]):
    """What is made from a circuit once a process (a compiled program, its
    copies' circuits, its Braket translation): a run's jobs share one circuit
    object, so the circuit's identity is the key.

    Keyed by ``id`` because a QuantumCircuit defines equality without a hash
    (no WeakKeyDictionary, no lru_cache); each entry keeps its circuit alive,
    so the id cannot be reused by another circuit while the entry lives. At
    most ``size`` circuits are kept (a worker runs one run at a time), the
    extra keys (a copy, a position) each a value of their own.
    """

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._entries: dict[tuple, tuple[Any, V]] = {}

    def get(self, circuit: Any, make: Callable[[], V], *extra: object) -> V:
        key = (id(circuit), *extra)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is circuit:
            return entry[1]
        if len(self._entries) >= self._size:
            self._entries.clear()
        value = make()
        self._entries[key] = (circuit, value)
        return value

    def clear(self) -> None:
        self._entries.clear()

#: Qubits of the paper's feature map (one per PCA component).
PAPER_QUBITS = 5
PARAMETER_NAME = "theta"
REGISTER_NAME = "meas"


def feature_map(num_qubits: int = PAPER_QUBITS):
    """Ry(theta_i) on qubit i, H on each qubit, CNOT cascade 0->1->...->n-1, measure all.

    Qubit i is measured into classical bit i, so a result's integer has the
    outcome of logical qubit i in bit i (the canonical order of docs/design.md).
    """
    circuit, theta = parameterised_circuit(num_qubits, "qhw_feature_map")
    paper_gates(circuit, theta, num_qubits)
    circuit.measure(range(num_qubits), range(num_qubits))
    return circuit


def paper_gates(circuit, theta, num_qubits: int) -> None:
    """The paper's gates onto ``circuit``: Ry(theta_i) on qubit i, H on each, the CNOT cascade."""
    for i in range(num_qubits):
        circuit.ry(theta[i], i)
    for i in range(num_qubits):
        circuit.h(i)
    for i in range(num_qubits - 1):
        circuit.cx(i, i + 1)


def readout_calibration(num_qubits: int):
    """Rx(phi_i) on qubit i, then measure qubit i into bit i.

    With every phi = 0 it prepares |0...0>, with every phi = pi |1...1>: the
    two states that give each qubit's readout assignment matrix. Being
    parameterised, it runs through the same submit path as the feature map.
    """
    circuit, phi = parameterised_circuit(num_qubits, "qhw_readout_calibration")
    for i in range(num_qubits):
        circuit.rx(phi[i], i)
    circuit.measure(range(num_qubits), range(num_qubits))
    return circuit


def parameterised_circuit(num_qubits: int, name: str, *, parameters: int | None = None):
    """An empty circuit with qhw's registers, and its parameter vector
    (``parameters`` long, one a qubit by default)."""
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
    from qiskit.circuit import ParameterVector

    circuit = QuantumCircuit(QuantumRegister(num_qubits, "q"), ClassicalRegister(num_qubits, REGISTER_NAME), name=name)
    return circuit, ParameterVector(PARAMETER_NAME, num_qubits if parameters is None else parameters)


def packed(template, copies: int, reuse: int = 1):
    """``copies`` copies of ``template`` side by side on disjoint qubits, each
    run ``reuse`` times in a row in one shot: copy c on qubits c*n .. c*n+n-1;
    position p of every copy measured, then its qubits reset before position
    p + 1 (the last is not reset). Each *slot* s = p * copies + c (a copy at a
    position) has parameters of its own (``theta_c<s>``, in the template's
    order) and its own classical register (``meas<s>``), so that each slot's
    outcomes can be read apart (see :func:`demultiplexed`). Slot 0 keeps the
    template's register name, so one slot is the template.

    Raises:
        ValueError: fewer than one copy or position.
    """
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
    from qiskit.circuit import ParameterVector

    if copies < 1 or reuse < 1:
        raise ValueError(f"copies and reuse must be 1 or more, got {copies} and {reuse}")
    width = template.num_qubits
    slots = copies * reuse
    registers = [ClassicalRegister(template.num_clbits, copy_register(s)) for s in range(slots)]
    name = f"{template.name}_x{copies}" + (f"_r{reuse}" if reuse > 1 else "")
    circuit = QuantumCircuit(QuantumRegister(width * copies, "q"), *registers, name=name)
    ordered = sorted(template.parameters, key=lambda p: (getattr(getattr(p, "vector", None), "name", p.name), getattr(p, "index", 0)))
    for position in range(reuse):
        if position:
            circuit.reset(range(width * copies))  # each copy's qubits back to |0> for its next sample
        for c in range(copies):
            slot = position * copies + c
            vector = ParameterVector(f"{PARAMETER_NAME}_c{slot}", len(ordered))
            bound = template.assign_parameters(dict(zip(ordered, vector, strict=True)), inplace=False)
            circuit.compose(bound, qubits=range(c * width, (c + 1) * width), clbits=registers[slot], inplace=True)
    return circuit


def copy_register(slot: int) -> str:
    """The classical register of slot ``slot`` (a copy at a position) of a packed circuit."""
    return REGISTER_NAME if slot == 0 else f"{REGISTER_NAME}{slot}"


def packed_rows(rows: np.ndarray, copies: int, circuit) -> np.ndarray:
    """Parameter rows of a packed circuit: logical execution e runs as slot
    e % slots of packed execution e // slots (``copies``: its slots, copies
    times reuse). The last packed execution is filled with copies of its last
    row (their outcomes are never read).

    Args:
        rows: (executions, parameters) rows in the template's parameter order
            (index i of the feature map's vector).
        circuit: the (transpiled) packed circuit, whose ``parameters`` order the columns.

    Returns:
        (ceil(executions / copies), copies * parameters) array.
    """
    executions, width = rows.shape
    packed_executions = ceil_div(executions, copies)
    padded = np.concatenate([rows, np.repeat(rows[-1:], packed_executions * copies - executions, axis=0)])
    by_copy = padded.reshape(packed_executions, copies, width)
    columns = []
    for parameter in circuit.parameters:
        copy = int(parameter.vector.name.rsplit("_c", 1)[1])
        columns.append(by_copy[:, copy, parameter.index])
    return np.ascontiguousarray(np.stack(columns, axis=1), dtype=np.float64)


def copy_circuit(circuit, copy: int, *, copies: int = 1, reuse: int = 1, compact: bool = False):
    """Copy ``copy`` of a (transpiled) packed circuit alone, at every position:
    the same qubits (so a device's noise still acts on the copy's own physical
    qubits), only the instructions of that copy (its resets between positions
    included), its parameters, and the registers of its slots renamed by
    position (``meas``, ``meas1``, ...). A simulator runs it as it runs the
    template (reused ``reuse`` times); the copies of a packed circuit share no
    gate, so running them apart changes no outcome on a device model without
    crosstalk.

    A copy is the set of qubits linked by multi-qubit gates to a qubit
    measured into one of its registers; gates, measurements, resets and
    delays on those qubits are kept, barriers dropped (they order nothing
    within one copy). ``compact`` keeps only the copy's own qubits, in their
    order (for an ideal simulator, which has no physical qubits to keep apart).

    Raises:
        ValueError: no such copy, or a gate links two copies (they are not apart).
    """
    from qiskit import ClassicalRegister, QuantumCircuit

    names = [copy_register(position * copies + copy) for position in range(reuse)]
    by_name = {r.name: r for r in circuit.cregs}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise ValueError(f"the circuit has no register {missing[0]!r} (copy {copy})")
    registers = [by_name[name] for name in names]
    parent = list(range(circuit.num_qubits))

    def root(q: int) -> int:
        while parent[q] != q:
            parent[q] = parent[parent[q]]
            q = parent[q]
        return q

    for instruction in circuit.data:
        if instruction.operation.name == "barrier" or len(instruction.qubits) < 2:
            continue
        first, *others = (circuit.find_bit(q).index for q in instruction.qubits)
        for other in others:
            parent[root(other)] = root(first)
    position_of = {register.name: position for position, register in enumerate(registers)}
    mine: set[int] = set()
    for instruction in circuit.data:
        if instruction.operation.name == "measure":
            bit = circuit.find_bit(instruction.clbits[0])
            if any(reg.name in position_of for reg, _ in bit.registers):
                mine.add(root(circuit.find_bit(instruction.qubits[0]).index))
    if compact:
        kept = [q for q in range(circuit.num_qubits) if root(q) in mine]
        place = {q: i for i, q in enumerate(kept)}
    else:
        place = {q: q for q in range(circuit.num_qubits)}
    alone = QuantumCircuit(len(place), name=f"{circuit.name}_copy{copy}")
    renamed = [ClassicalRegister(register.size, copy_register(position)) for position, register in enumerate(registers)]
    for register in renamed:
        alone.add_register(register)
    for instruction in circuit.data:
        if instruction.operation.name == "barrier":
            continue
        qubits = [circuit.find_bit(q).index for q in instruction.qubits]
        inside = [root(q) in mine for q in qubits]
        if not any(inside):
            continue
        clbits = []
        for clbit in instruction.clbits:
            places = [(position_of[reg.name], i) for reg, i in circuit.find_bit(clbit).registers if reg.name in position_of]
            if not places:
                raise ValueError(f"copy {copy} writes a classical bit of another copy: the copies are not apart")
            position, index = places[0]
            clbits.append(renamed[position][index])
        alone.append(instruction.operation, [alone.qubits[place[q]] for q in qubits], clbits)
    return alone


def position_circuit(circuit, position: int):
    """Position ``position`` of one copy's circuit (as :func:`copy_circuit`
    gives it) alone: the instructions between its qubits' ``position``-th
    reset and the next, measured into ``meas``. Each position starts from
    |0...0> (a reset makes it so), so on an ideal simulator a position alone
    has the very distribution it has in the reused circuit.

    Raises:
        ValueError: a gate spans qubits at different positions (no reused copy).
    """
    from qiskit import ClassicalRegister, QuantumCircuit

    register = next((r for r in circuit.cregs if r.name == copy_register(position)), None)
    if register is None:
        raise ValueError(f"the circuit has no position {position}")
    resets = [0] * circuit.num_qubits
    alone = QuantumCircuit(circuit.num_qubits, name=f"{circuit.name}_position{position}")
    meas = ClassicalRegister(register.size, REGISTER_NAME)
    alone.add_register(meas)
    for instruction in circuit.data:
        qubits = [circuit.find_bit(q).index for q in instruction.qubits]
        name = instruction.operation.name
        if name == "barrier":
            continue
        if name == "reset":
            for q in qubits:
                resets[q] += 1
            continue
        at = {resets[q] for q in qubits}
        if len(at) != 1:
            raise ValueError(f"{name} on qubits {qubits} spans positions {sorted(at)}")
        if at.pop() != position:
            continue
        clbits = []
        for clbit in instruction.clbits:
            places = [i for reg, i in circuit.find_bit(clbit).registers if reg.name == register.name]
            if not places:
                raise ValueError(f"position {position} writes a bit of another position's register")
            clbits.append(meas[places[0]])
        alone.append(instruction.operation, [alone.qubits[q] for q in qubits], clbits)
    return alone


def circuit_rows(rows: np.ndarray, circuit, slots: int = 1) -> np.ndarray:
    """Logical rows (executions x parameters, index i of the template's
    vector in column i) as the rows a circuit is given: its own parameter
    order, and packed ``slots`` to a row (:func:`packed_rows`)."""
    if slots > 1:
        return packed_rows(rows, slots, circuit)
    # Transpilation keeps the parameters but their order is the circuit's to choose.
    columns = [parameter.index for parameter in circuit.parameters]
    return np.ascontiguousarray(rows[:, columns], dtype=np.float64)


def copy_columns(packed_circuit, copy_circuit) -> list[int]:
    """Where each parameter of one copy's circuit is among the packed circuit's."""
    position = {parameter.name: i for i, parameter in enumerate(packed_circuit.parameters)}
    return [position[parameter.name] for parameter in copy_circuit.parameters]


def demultiplexed(counts_by_copy: np.ndarray, executions: int) -> np.ndarray:
    """Per-slot counts (packed executions x slots x outcomes) as the logical
    executions' own counts (executions x outcomes), dropping the fill."""
    packed_executions, copies, outcomes = counts_by_copy.shape
    return counts_by_copy.reshape(packed_executions * copies, outcomes)[:executions]


#: States the readout calibration prepares: all qubits in 0, then all in 1.
CALIBRATION_STATES = 2


def calibration_rows(num_qubits: int) -> np.ndarray:
    """Parameter rows of the readout calibration (CALIBRATION_STATES of them)."""
    return np.array([[0.0] * num_qubits, [np.pi] * num_qubits])


def logical_rows(angles: np.ndarray, circuits_per_sample: int) -> np.ndarray:
    """Every execution's parameter values, index i of the vector in column i:
    (n_samples * K, P); row e is sample e // K, circuit e % K, which takes
    components P*k .. P*k+P-1 of the sample."""
    width = angles.shape[1] // circuits_per_sample
    return np.ascontiguousarray(angles.reshape(len(angles) * circuits_per_sample, width), dtype=np.float64)


def parameter_rows(angles: np.ndarray, circuits_per_sample: int, circuit) -> np.ndarray:
    """Parameter values for every execution, in the circuit's parameter order.

    Args:
        angles: (n_samples, P * K) angles; circuit k takes components P*k .. P*k+P-1.
        circuits_per_sample: K.
        circuit: the (transpiled) circuit whose ``parameters`` order the columns.

    Returns:
        (n_samples * K, P) array; row e is sample e // K, circuit e % K.
    """
    return circuit_rows(logical_rows(angles, circuits_per_sample), circuit)


def counts_from_bitarray(bitarray, num_bits: int) -> np.ndarray:
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
