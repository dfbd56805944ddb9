"""``statevector``: exact, batched, ideal simulation in NumPy.

The transpiled circuit's state is computed for every parameter row of a job
at once (an array of shape rows x 2**qubits), gate by gate, with the gate
matrices Qiskit gives (``Gate.to_matrix``); parameters are bound per row,
vectorised. Shots are then drawn from the exact outcome probabilities with
NumPy's multinomial, from a generator seeded by the job's seed, so a run
repeats exactly and costs no per-shot memory. It is the fast ideal reference
for ``qhw compare``.

Any circuit of unitary gates and final measurements works (the feature map,
the readout calibration, K circuits a sample), up to about 20 qubits (rows
are processed in chunks of at most 2**22 amplitudes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from qhw.backend import Backend, BackendEntry, BackendLimits, DeviceProfile, Executable, JobResult, LocalBackend, OneEngine
from qhw.backends._sampling import multinomial_counts
from qhw.circuits import PerCircuit
from qhw.errors import BackendError, JobFailedError, ResultMappingError

if TYPE_CHECKING:
    from qhw.store.artifacts import ArtifactStore

NAME = "statevector"
#: The basis the circuit is transpiled to: its only parameterised gate is rz,
#: which is diagonal, so binding a parameter per row is a cheap outer product.
BASIS = ("rz", "sx", "x", "cx")
MAX_QUBITS = 20
#: Amplitudes held at once (rows x 2**qubits): about 64 MB of complex numbers.
CHUNK_AMPLITUDES = 2**22
#: A job of the ideal simulator: counts only, no per-shot memory, so jobs can be large.
CIRCUITS_PER_JOB = 10_000
MAX_SHOTS = 10**9
LIMITS = BackendLimits(max_shots=MAX_SHOTS, max_circuits_per_job=CIRCUITS_PER_JOB)


def backend_names() -> list[str]:
    return [NAME]


def catalogue() -> list[BackendEntry]:
    return [BackendEntry(NAME, "numpy", "simulator", MAX_QUBITS, False, None)]


def create(name: str, *, seed: int | None = None, artifacts: ArtifactStore | None = None) -> Backend | None:
    return StatevectorBackend(seed=seed) if name == NAME else None


class StatevectorBackend(OneEngine, LocalBackend):
    """Exact probabilities, then multinomial shots: an ideal simulator (a LocalBackend)."""

    name = NAME
    provider = "numpy"
    kind = "simulator"
    description = "exact state vectors in NumPy, ideal (no noise); shots drawn from the exact probabilities"
    is_paid = False
    is_local = True
    num_qubits = MAX_QUBITS
    credentials_configured = None
    runs_copies_in_one_job = False

    def __init__(self, seed: int | None = None) -> None:
        self._seed = seed

    def check_credentials(self) -> None:
        pass  # none needed

    def profile(self, *, offline: bool = False, document: str | None = None) -> DeviceProfile:
        return DeviceProfile(NAME, MAX_QUBITS, LIMITS, live=True, mid_circuit_reset=True)  # a simulator: no topology, nothing to read

    def transpile(self, template, *, seed: int | None = None, initial_layout: Sequence[int] | None = None) -> Executable:
        from qiskit.transpiler import generate_preset_pass_manager

        if template.num_qubits > MAX_QUBITS:
            raise BackendError(f"{NAME} simulates at most {MAX_QUBITS} qubits; the circuit has {template.num_qubits}")
        manager = generate_preset_pass_manager(optimization_level=1, basis_gates=list(BASIS), seed_transpiler=seed)
        circuit = manager.run(template)
        return Executable(circuit=circuit, layout=tuple(range(template.num_qubits)))

    def calibration(self, layout: Sequence[int]) -> None:
        return None  # ideal

    def shot_timing(self, profile: DeviceProfile, template, reuse: int = 1, rep_delay: float | None = None) -> None:
        return None  # a simulator: no device time

    def use_threads(self, threads: int | None) -> None:
        pass  # NumPy, vectorised over the rows

    def run(self, executable: Executable, parameter_values: np.ndarray, shots: int, *, seed: int | None = None) -> JobResult:
        seed = seed if seed is not None else self._seed
        try:
            counts = sample_counts(executable.circuit, np.asarray(parameter_values, dtype=float), shots, seed)
        except (ValueError, NotImplementedError) as err:
            raise JobFailedError(f"{NAME} cannot run this circuit: {err}") from err
        if counts.shape[0] != len(parameter_values):
            raise ResultMappingError(f"{NAME} gave {counts.shape[0]} results for {len(parameter_values)} executions")
        return JobResult(counts)


# --- the simulation -------------------------------------------------------------------------------


def sample_counts(circuit, values: np.ndarray, shots: int, seed: int | None) -> np.ndarray:
    """Counts (rows, 2**clbits) in the canonical order, from a seeded multinomial
    over the exact probabilities of every row."""
    return multinomial_counts(outcome_probabilities(circuit, values), shots, seed)


def outcome_probabilities(circuit, values: np.ndarray) -> np.ndarray:
    """Exact probabilities (rows, 2**clbits): index bit j is classical bit j."""
    values = np.atleast_2d(values)
    program = _compile(circuit)
    if values.shape[1] != len(program.parameters):
        raise ValueError(f"the circuit has {len(program.parameters)} parameters, the rows {values.shape[1]}")
    rows = max(1, CHUNK_AMPLITUDES // 2**program.qubits)
    return np.concatenate([_probabilities(program, values[start : start + rows]) for start in range(0, len(values), rows)])


@dataclass(frozen=True)
class _OneQubitBlock:
    """Consecutive single-qubit gates on one qubit, fused: a 2x2 matrix per row."""

    qubit: int
    factors: tuple  # in circuit order: fixed 2x2 matrices, or rz angle functions of the rows


@dataclass(frozen=True)
class _Gate:
    """A fixed multi-qubit gate: a permutation of basis states (cx, swap, ...) or a matrix."""

    qubits: tuple[int, ...]
    matrix: np.ndarray
    permutation: np.ndarray | None  # new_state[:, i] = state[:, permutation[i]], when it is one


@dataclass(frozen=True)
class _Program:
    qubits: int
    parameters: tuple[str, ...]
    steps: tuple
    measured: tuple[tuple[int, int], ...]  # (qubit, classical bit), by classical bit
    clbits: int


def _compile(circuit) -> _Program:
    return _programs.get(circuit, lambda: _compiled(circuit))


def _compiled(circuit) -> _Program:
    q = circuit.num_qubits
    parameters = tuple(parameter.name for parameter in circuit.parameters)
    steps: list = []
    pending: dict[int, list] = {}
    measured: dict[int, int] = {}

    def flush(qubit: int) -> None:
        factors = pending.pop(qubit, None)
        if factors:
            steps.append(_OneQubitBlock(qubit, tuple(factors)))

    for instruction in circuit.data:
        operation = instruction.operation
        qubits = tuple(circuit.find_bit(bit).index for bit in instruction.qubits)
        name = operation.name
        if name in ("barrier", "delay"):
            continue
        if name == "measure":
            measured[qubits[0]] = circuit.find_bit(instruction.clbits[0]).index
            continue
        if any(qubit in measured for qubit in qubits):
            raise NotImplementedError(f"{name} after a measurement (only final measurements are simulated)")
        if name == "rz" and _is_symbolic(operation.params[0]):
            pending.setdefault(qubits[0], []).append(_angle_function(operation.params[0], parameters))
            continue
        if operation.is_parameterized():
            raise NotImplementedError(f"parameterised {name}: transpile to {', '.join(BASIS)} first")
        try:
            matrix = np.asarray(operation.to_matrix(), dtype=complex)
        except Exception as err:  # reset, initialize and other non-unitary instructions
            raise NotImplementedError(f"{name} is not a unitary gate") from err
        if len(qubits) == 1:
            pending.setdefault(qubits[0], []).append(matrix)
            continue
        # Everything pending came earlier in the circuit; flushing it all now
        # lets consecutive permutations (a CNOT cascade) compose into one.
        for qubit in sorted(pending):
            flush(qubit)
        permutation = _as_permutation(matrix, qubits, q)
        if permutation is not None and steps and isinstance(steps[-1], _Gate) and steps[-1].permutation is not None:
            previous = steps.pop()
            # Applying p1 then p2: new[i] = old[p1[p2[i]]].
            permutation = previous.permutation[permutation]
            qubits = tuple(sorted(set(previous.qubits) | set(qubits)))
        steps.append(_Gate(qubits, matrix, permutation))
    for qubit in sorted(pending):
        flush(qubit)
    program = _Program(
        qubits=q,
        parameters=parameters,
        steps=tuple(steps),
        measured=tuple(sorted(measured.items(), key=lambda item: item[1])),
        clbits=circuit.num_clbits,
    )
    return program


_programs: PerCircuit[_Program] = PerCircuit()


def _is_symbolic(value) -> bool:
    return hasattr(value, "parameters") and len(value.parameters) > 0


def _angle_function(expression, parameters: tuple[str, ...]):
    """The angle as a vectorised function of the parameter columns.

    The transpiler's angles are affine in the parameters (theta + pi, -theta,
    ...): their coefficients are read by binding, and the affine form is
    checked at a random point. Anything else goes through sympy, slower.
    """
    by_name = {parameter.name: parameter for parameter in expression.parameters}

    def value_at(point: np.ndarray) -> float:
        bound = expression.bind({by_name[name]: float(x) for name, x in zip(parameters, point, strict=True) if name in by_name})
        return float(bound)

    width = len(parameters)
    constant = value_at(np.zeros(width))
    slopes = np.array([value_at(np.eye(width)[i]) - constant for i in range(width)])
    probe = np.random.default_rng(0).uniform(-2, 2, width)
    if np.isclose(value_at(probe), constant + slopes @ probe, rtol=0, atol=1e-12):
        return lambda values: constant + values @ slopes
    import sympy

    symbols = [sympy.Symbol(name) for name in parameters]
    function = sympy.lambdify(symbols, expression.sympify(), "numpy", dummify=True)
    return lambda values: np.broadcast_to(np.asarray(function(*values.T), dtype=float), (len(values),))


def _as_permutation(matrix: np.ndarray, qubits: tuple[int, ...], q: int) -> np.ndarray | None:
    """The whole-register basis permutation of a gate that only permutes basis
    states with unit phases of 1 (cx, swap, ccx), or None."""
    if not np.allclose(np.abs(matrix), np.round(np.abs(matrix))) or not np.allclose(matrix, np.abs(matrix)):
        return None
    if not (np.abs(matrix).sum(axis=0) == 1).all():
        return None
    source_of = np.argmax(np.abs(matrix), axis=1)  # new local state r comes from local state source_of[r]
    index = np.arange(2**q)
    local = sum(((index >> qubit) & 1) << i for i, qubit in enumerate(qubits))
    source_local = source_of[local]
    cleared = index.copy()
    for i, qubit in enumerate(qubits):
        cleared &= ~(1 << qubit)
        cleared |= ((source_local >> i) & 1) << qubit
    return cleared


def _block_matrices(block: _OneQubitBlock, values: np.ndarray) -> tuple[np.ndarray, ...]:
    """The fused 2x2 matrix of every row, as its four entries (each one value a
    row): later gates multiply on the left. Written out entry by entry, as
    NumPy's stacked 2x2 products cost far more than the arithmetic."""
    n = len(values)
    a, b = np.ones(n, dtype=complex), np.zeros(n, dtype=complex)
    c, d = np.zeros(n, dtype=complex), np.ones(n, dtype=complex)
    for factor in block.factors:
        if isinstance(factor, np.ndarray):
            (f00, f01), (f10, f11) = factor
            a, b, c, d = f00 * a + f01 * c, f00 * b + f01 * d, f10 * a + f11 * c, f10 * b + f11 * d
        else:  # rz(angle) = diag(e^{-i angle/2}, e^{i angle/2}) scales the rows
            phase = np.exp(0.5j * factor(values))
            a, b, c, d = a / phase, b / phase, c * phase, d * phase
    return a, b, c, d


def _probabilities(program: _Program, values: np.ndarray) -> np.ndarray:
    n, q = len(values), program.qubits
    steps = list(program.steps)
    # The register starts in |0...0>: while gates act on one qubit each, the
    # state stays a product, kept as one column a qubit and multiplied out once.
    columns = [np.array([[1.0 + 0j, 0j]]).repeat(n, axis=0) for _ in range(q)]
    touched: set[int] = set()
    while steps and isinstance(steps[0], _OneQubitBlock) and steps[0].qubit not in touched:
        block = steps.pop(0)
        m00, _, m10, _ = _block_matrices(block, values)
        columns[block.qubit] = np.stack([m00, m10], axis=1)  # the matrix times |0>
        touched.add(block.qubit)
    state = np.ones((n, 1), dtype=complex)  # index bit j is qubit j (Qiskit's order)
    for column in reversed(columns):
        state = (state[:, :, None] * column[:, None, :]).reshape(n, -1)
    for step in steps:
        if isinstance(step, _OneQubitBlock):
            m00, m01, m10, m11 = (entry[:, None, None] for entry in _block_matrices(step, values))
            # Views, not copies: axis 2 is the qubit's bit.
            view = state.reshape(n, 2 ** (q - step.qubit - 1), 2, 2**step.qubit)
            zero, one = view[:, :, 0, :].copy(), view[:, :, 1, :]
            view[:, :, 0, :] = m00 * zero + m01 * one
            view[:, :, 1, :] = m10 * zero + m11 * one
        elif step.permutation is not None:
            state = state[:, step.permutation]
        else:
            state = _apply(state.reshape((n,) + (2,) * q), step.matrix, [1 + (q - 1 - j) for j in step.qubits]).reshape(n, -1)
    probabilities = state.real**2 + state.imag**2
    measured = [qubit for qubit, _ in program.measured]
    clbits = [clbit for _, clbit in program.measured]
    if measured == list(range(q)) and clbits == list(range(q)):
        return probabilities  # the usual case: qubit j into classical bit j
    # Sum over the unmeasured qubits; put classical bit j at index bit j.
    out = np.zeros((n, 2**program.clbits))
    index = np.arange(2**q)
    target = np.zeros(2**q, dtype=np.int64)
    for qubit, clbit in program.measured:
        target |= ((index >> qubit) & 1) << clbit
    for source, destination in enumerate(target):
        out[:, destination] += probabilities[:, source]
    return out


def _apply(psi: np.ndarray, matrix: np.ndarray, axes: list[int]) -> np.ndarray:
    """Apply a k-qubit matrix (Qiskit's order: its index bit i is the gate's i-th qubit)."""
    k = len(axes)
    # The matrix's row index, as bits, is (qubit k-1, ..., qubit 0): move those axes to the end in that order.
    targets = list(reversed(axes))
    moved = np.moveaxis(psi, targets, list(range(psi.ndim - k, psi.ndim)))
    shape = moved.shape
    flat = moved.reshape(-1, 2**k) @ matrix.T
    return np.moveaxis(flat.reshape(shape), list(range(psi.ndim - k, psi.ndim)), targets)
