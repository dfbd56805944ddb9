"""The noisy engine: exact noisy outcome probabilities of every row of a job at once.

An emulated device's noise model (Aer's ``NoiseModel``, as the fake device
builds it) is applied as Aer's ``density_matrix`` method applies it, with no
shots: each instruction's superoperator, then its quantum error (local to its
qubits, else the model's all-qubit error for it), on the density matrices of
every parameter row at once; readout errors as assignment matrices on the
recorded bits. Shots are then drawn from the exact probabilities by a seeded
multinomial, as the ``statevector`` simulator does for ideal runs.

What keeps it small: a circuit's qubits fall apart into *components* that no
gate links, and a reset starts a qubit afresh (a new *virtual qubit*: the
reset's output does not depend on its input, so what came before it can be
traced out). A packed copy at one position of a reused run is then a
component of its own: a 5-qubit copy is a 32 x 32 density matrix, whatever
the device's size, and each component reads only its own qubits' channels.
Single-qubit instructions between two multi-qubit ones are fused into one
4 x 4 superoperator a row (the parameterised ``rz`` is diagonal, so its rows
cost a phase each), and a qubit's state stays a product until its first
multi-qubit gate.

A circuit the engine cannot treat exactly raises :class:`Unsupported` with the
reason (an instruction after a measurement without a reset, a delay, a
parameterised gate other than rz, a correlated readout error, ...), and the
adapter falls back to Aer and says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

#: Complex entries a worker holds for one component's rows at once: 2**24 is
#: 256 MB of density matrices (a 12-qubit component is exactly one row of it,
#: updated in place a slice at a time: see SLICE_ENTRIES).
CHUNK_ENTRIES = 2**24
#: Past this many entries a superoperator is applied a slice at a time, in place (32 MB a slice).
SLICE_ENTRIES = 2**21
#: Instructions that order nothing in a simulation.
IGNORED = ("barrier",)


class Unsupported(Exception):
    """The engine cannot compute this circuit's noisy distribution exactly; the message says why."""


# --- the noise model, read as channels --------------------------------------------------------


def _superop(kraus: list[np.ndarray]) -> np.ndarray:
    """The superoperator of a channel on vec(rho) in row-major order (index
    i * d + j for rho[i, j]): vec(K rho K^dagger) = (K kron conj(K)) vec(rho)."""
    return np.sum([np.kron(k, k.conj()) for k in kraus], axis=0)


def _unitary_superop(matrix: np.ndarray) -> np.ndarray:
    return np.kron(matrix, matrix.conj())


def thermal_relaxation_superop(t1: float, t2: float, time: float) -> np.ndarray:
    """One qubit's thermal relaxation for ``time`` (T2 at most 2 T1; the
    ground state's equilibrium population 1, Aer's at temperature 0):
    rho_00 gains p rho_11, rho_11 keeps 1 - p, coherences e^{-t/T2}."""
    reset = 0.0 if t1 == np.inf else 1 - np.exp(-time / t1)
    coherence = 1.0 if t2 == np.inf else np.exp(-time / t2)
    return np.array(
        [[1, 0, 0, reset], [0, coherence, 0, 0], [0, 0, coherence, 0], [0, 0, 0, 1 - reset]], dtype=complex
    )


def depolarizing_superop(parameter: float, qubits: int) -> np.ndarray:
    """Aer's depolarizing error: rho -> (1 - p) rho + p Tr(rho) I / d."""
    d = 2**qubits
    identity = np.eye(d, dtype=complex).reshape(-1)
    return (1 - parameter) * np.eye(d * d, dtype=complex) + parameter / d * np.outer(identity, identity)


def tensor_superops(superops: list[np.ndarray]) -> np.ndarray:
    """One-qubit superoperators on qubits 0, 1, ... (Qiskit's order) as one."""
    k = len(superops)
    columns = np.eye(4**k, dtype=complex).reshape((4**k,) + (2,) * (2 * k))  # row r: vec of basis matrix r
    for qubit, superop in enumerate(superops):
        columns = _apply(columns, superop, (qubit,), k)
    return columns.reshape(4**k, 4**k).T




def error_superop(error) -> np.ndarray:
    """An Aer QuantumError as one superoperator (row-major vec, Qiskit's qubit order).

    A QuantumError is a mixture of small circuits of unitary gates, ``kraus``
    instructions and resets; each instruction is a small superoperator on the
    error's qubits, and a circuit their product. Qiskit's own conversion
    (``Kraus(error)``) gives the same matrix (a test holds them equal) but
    takes milliseconds an error through its generic channel algebra: seconds
    for a packed fake_fez run's 350 errors.
    """
    k = error.num_qubits
    total = np.zeros((4**k, 4**k), dtype=complex)
    for circuit, probability in zip(error.circuits, error.probabilities, strict=True):
        product = None
        for instruction in circuit.data:
            operation = instruction.operation
            if operation.name == "id":
                continue
            qubits = tuple(circuit.find_bit(q).index for q in instruction.qubits)
            if operation.name == "reset":
                steps = [(_RESET_KRAUS, (qubit,)) for qubit in qubits]
            elif operation.name == "kraus":
                steps = [(np.asarray(operation.params, dtype=complex), qubits)]
            else:
                steps = [(_cached_matrix(operation)[None], qubits)]
            for kraus, where in steps:
                superop = _stack_superop(_on(kraus, where, k))
                product = superop if product is None else superop @ product
        total += probability * (np.eye(4**k) if product is None else product)
    return total


def _written_channel(operation) -> np.ndarray:
    """The superoperator of an Aer error written into a circuit (a
    QuantumChannelInstruction), read from the error it holds, once an error:
    its public definition is a Kraus conversion, milliseconds an instruction
    for the thousands --noise writes into a packed circuit. Aer keeps the
    error as ``_quantum_error`` (no public accessor)."""
    error = getattr(operation, "_quantum_error", None)
    if error is None:
        kraus = operation.definition.data[0].operation.params
        return _stack_superop(np.asarray(kraus, dtype=complex))
    key = id(error)
    if key not in _written or _written[key][0] is not error:
        if len(_written) > 4096:  # (a run's errors are few; each job's drift makes a few more)
            _written.clear()
        _written[key] = (error, error_superop(error))
    return _written[key][1]


_written: dict[int, tuple[Any, np.ndarray]] = {}
_RESET_KRAUS = np.array([[[1, 0], [0, 0]], [[0, 1], [0, 0]]], dtype=complex)
_matrices: dict = {}


def _stack_superop(kraus: np.ndarray) -> np.ndarray:
    """sum over the stack (n, d, d) of K kron conj(K)."""
    n, d, _ = kraus.shape
    return np.einsum("kia,kjb->ijab", kraus, kraus.conj()).reshape(d * d, d * d)


def _cached_matrix(operation) -> np.ndarray:
    """A gate's matrix, kept by name and parameters (an error's Paulis repeat thousands of times)."""
    try:
        key = (operation.name, tuple(operation.params))
        hash(key)
    except TypeError:
        return _matrix(operation)
    if key not in _matrices:
        _matrices[key] = _matrix(operation)
    return _matrices[key]


def _gate_superop(operation) -> np.ndarray:
    """A fixed gate's superoperator, kept by name and parameters: a packed,
    reused circuit repeats a few gates (sx, cz, rz of a constant, --noise's
    ZZ) tens of thousands of times, and a Kronecker product each is most of
    its compilation. Shared, never changed in place."""
    params = operation.params
    if not all(isinstance(p, (int, float, complex, np.ndarray)) for p in params):
        return _unitary_superop(_matrix(operation))  # (a bound expression, say: its text may round its value)
    key = (operation.name, tuple(p.tobytes() if isinstance(p, np.ndarray) else p for p in params))
    found = _superops.get(key)
    if found is None:
        if len(_superops) > 65_536:
            _superops.clear()
        found = _superops[key] = _unitary_superop(_matrix(operation))
    return found


_superops: dict[tuple, np.ndarray] = {}


def _on(stack: np.ndarray, qubits: tuple[int, ...], k: int) -> np.ndarray:
    """A stack of matrices (n, 2^m, 2^m) on ``qubits`` (Qiskit's order) as operators on qubits 0..k-1."""
    if qubits == tuple(range(k)):
        return stack
    n = len(stack)
    # The full operator's entry (row r, column c) is the small one's on the qubits' bits, where the other bits agree.
    rows = np.arange(2**k)
    small = np.sum([((rows >> q) & 1) << i for i, q in enumerate(qubits)], axis=0)
    rest = rows & ~sum(1 << q for q in qubits)
    agree = rest[:, None] == rest[None, :]
    full = np.where(agree[None], stack[:, small[:, None], small[None, :]], 0)
    return full.reshape(n, 2**k, 2**k)


@dataclass
class NoiseChannels:
    """A device's noise model, read once a run as the engine applies it.

    Aer's ``NoiseModel`` keeps its errors in attributes of its own (local
    errors by instruction and qubits, all-qubit errors by instruction, readout
    errors by qubits): it has no public look-up of the error one instruction
    gets, and its ``to_dict`` is a serialisation of the same objects, so they
    are read here directly, with Aer's own precedence (a local error replaces
    the all-qubit one). What the engine cannot apply exactly is refused.
    """

    model: Any = None  # qiskit_aer.noise.NoiseModel, or None for no noise
    _errors: dict = field(default_factory=dict)
    _readout: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model is None:
            return
        for noise_pass in getattr(self.model, "_custom_noise_passes", []):
            # Aer's relaxation pass acts on Delay only (LocalNoisePass keeps its types in ``_ops``);
            # a circuit with delays is refused below.
            types = tuple(getattr(noise_pass, "_ops", ()) or ())
            if not all(getattr(t, "__name__", "") == "Delay" for t in types) or not types:
                raise Unsupported(f"the noise model has a custom noise pass ({type(noise_pass).__name__})")
        if getattr(self.model, "_nonlocal_quantum_errors", None):
            raise Unsupported("the noise model has non-local errors")

    def error(self, name: str, qubits: tuple[int, ...]) -> np.ndarray | None:
        """The superoperator of the error after instruction ``name`` on ``qubits`` (None: no error)."""
        key = (name, qubits)
        if key not in self._errors:
            self._errors[key] = self._read_error(name, qubits)
        return self._errors[key]

    def _read_error(self, name: str, qubits: tuple[int, ...]) -> np.ndarray | None:
        if self.model is None:
            return None
        local = self.model._local_quantum_errors.get(name, {})
        error = local.get(qubits)
        if error is None and name in self.model._default_quantum_errors and not (local and qubits in local):
            error = self.model._default_quantum_errors[name]
            if error.num_qubits != len(qubits):
                error = None
        if error is None:
            return None
        if name == "measure":
            # Aer applies a measure's quantum error before the measurement, not after.
            raise Unsupported("the noise model has a quantum error on measure")
        return error_superop(error)

    def readout(self, qubit: int) -> np.ndarray | None:
        """P[recorded, true] for one qubit's measurement (None: ideal)."""
        if qubit not in self._readout:
            self._readout[qubit] = self._read_readout(qubit)
        return self._readout[qubit]

    def _read_readout(self, qubit: int) -> np.ndarray | None:
        if self.model is None:
            return None
        local = self.model._local_readout_errors
        if any(len(qubits) > 1 and qubit in qubits for qubits in local):
            raise Unsupported(f"the noise model has a correlated readout error on qubit {qubit}")
        error = local.get((qubit,), self.model._default_readout_error)
        if error is None:
            return None
        # ReadoutError.probabilities[true][recorded]; the engine multiplies true outcomes on the right.
        return np.asarray(error.probabilities, dtype=float).T


# --- compiling a circuit into components --------------------------------------------------------


@dataclass(frozen=True)
class _Angle:
    """An rz angle, affine in the component's parameters: constant + values[:, columns] @ slopes."""

    constant: float
    columns: tuple[int, ...]  # the component's own parameter indices
    slopes: tuple[float, ...]

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return self.constant + values[:, list(self.columns)] @ np.array(self.slopes)


@dataclass
class _Block:
    """Single-qubit instructions on one virtual qubit, in order: fixed 4x4
    superoperators, or rz angles of the rows."""

    qubit: int
    factors: list


@dataclass(frozen=True)
class _Channel:
    """A fixed multi-qubit channel (the gate and its error): a superoperator on ``qubits``."""

    qubits: tuple[int, ...]
    superop: np.ndarray


@dataclass
class _Component:
    """Virtual qubits linked by multi-qubit gates, simulated together. Its
    steps read its own parameters (``columns``: where they are among the
    circuit's), so that components alike but for their parameters (a packed
    copy at each position) share one simulation."""

    width: int
    steps: list  # _Block and _Channel, in circuit order
    measured: list  # (local qubit, readout matrix or None), in measured order
    clbits: list  # the classical bit of each measured qubit
    columns: list  # circuit parameter column of each of its parameters

    def signature(self) -> tuple:
        """What its simulation depends on (not its parameters' columns)."""
        key: list = [self.width]
        for step in self.steps:
            if isinstance(step, _Block):
                key.append((step.qubit, tuple(f.tobytes() if isinstance(f, np.ndarray) else f for f in step.factors)))
            else:
                key.append((step.qubits, step.superop.tobytes()))
        key.append(tuple((local, None if r is None else r.tobytes()) for local, r in self.measured))
        return tuple(key)


@dataclass
class Program:
    """A circuit as the engine runs it: its components grouped by signature
    (one simulation a group), and each register's bits."""

    parameters: int
    groups: list  # (_Component to simulate, [component index...]) by signature
    components: list
    registers: tuple[tuple[str, tuple[int, ...]], ...]  # (name, its clbits by index)
    sources: dict  # clbit -> (component index, position among its measured)
    _fourier: dict = field(default_factory=dict)  # group index -> _Fourier or None
    #: Whether a component's trigonometric form is worth building: it pays
    #: over a run's jobs, not for a program that serves one job (a --noise
    #: drift compiles each job's channels afresh).
    one_job: bool = False


def compile_circuit(circuit, noise) -> Program:
    """A Qiskit circuit's components, with every channel read from ``noise``:
    a NoiseChannels (an Aer noise model), or anything with its ``error(name,
    qubits)`` and ``readout(qubit)`` (a fake IBM device's DeviceChannels).

    Raises:
        Unsupported: the circuit is not one the engine computes exactly.
    """
    column = {p.name: i for i, p in enumerate(circuit.parameters)}
    builder = ProgramBuilder(circuit.num_qubits, len(column))
    for instruction in circuit.data:
        operation = instruction.operation
        name = operation.name
        if name in IGNORED:
            continue
        qubits = tuple(circuit.find_bit(q).index for q in instruction.qubits)
        if name == "reset":
            for q in qubits:
                builder.reset(q, noise.error("reset", (q,)))
            continue
        if getattr(operation, "condition", None) is not None or name in ("if_else", "while_loop", "for_loop", "switch_case"):
            raise Unsupported(f"{name} depends on a measured bit")
        if name == "measure":
            noise.error("measure", qubits)  # refused if the model has one (Aer applies it before the measurement)
            builder.measure(qubits[0], circuit.find_bit(instruction.clbits[0]).index, noise.readout(qubits[0]))
            continue
        if name == "delay":
            raise Unsupported("the circuit has delays (Aer's relaxation pass models them; the engine does not)")
        if name == "quantum_channel":  # an Aer error written into the circuit (--noise's channels)
            builder.channel(qubits, _written_channel(operation))
            continue
        error = noise.error(name, qubits)
        if len(qubits) == 1:
            builder.one(
                qubits[0], name, operation.params, partial(_matrix, operation), partial(_affine, column=column),
                superop=partial(_gate_superop, operation),
            )
            if error is not None:
                builder.channel(qubits, error)
            continue
        if operation.is_parameterized():
            raise Unsupported(f"parameterised {name} (the engine binds rotations of one qubit only)")
        superop = _gate_superop(operation)
        builder.channel(qubits, superop if error is None else error @ superop, name)
    registers = tuple((register.name, tuple(circuit.find_bit(bit).index for bit in register)) for register in circuit.cregs)
    return builder.program(registers)


#: Parameterised one-qubit gates as the engine applies them: fixed gates and
#: rz rotations, in the order they act, up to a global phase (which no
#: probability sees). An entry reads the gate's angles; ("rz", i, sign) is
#: rz(sign * angle i), (i, f) a fixed gate f(angle) of a constant angle.
_H = np.array([[1, 1], [1, -1]], dtype=complex) / np.sqrt(2)
_S = np.diag([1, 1j])
_X = np.array([[0, 1], [1, 0]], dtype=complex)
_SX = np.array([[1 + 1j, 1 - 1j], [1 - 1j, 1 + 1j]]) / 2
ROTATIONS: dict[str, list] = {
    "rz": [("rz", 0, 1)],
    "p": [("rz", 0, 1)],  # phase(a) = e^{ia/2} rz(a)
    "phaseshift": [("rz", 0, 1)],  # Braket's name
    "rx": [_H, ("rz", 0, 1), _H],
    "ry": [_S.conj(), _H, ("rz", 0, 1), _H, _S],  # ry(a) = S rx(a) S^dagger
    # IQM's native prx(theta, phi) = rz(phi) rx(theta) rz(-phi)
    "prx": [("rz", 1, -1), _H, ("rz", 0, 1), _H, ("rz", 1, 1)],
    # IonQ's native gpi(phi) = rz(phi) X rz(-phi), gpi2(phi) = rz(phi) rx(pi/2) rz(-phi)
    "gpi": [("rz", 0, -1), _X, ("rz", 0, 1)],
    "gpi2": [("rz", 0, -1), _SX, ("rz", 0, 1)],
}


@dataclass(frozen=True)
class _Affine:
    """An angle affine in a circuit's parameters: constant + values[:, columns] @ slopes."""

    constant: float
    columns: tuple[int, ...]
    slopes: tuple[float, ...]

    def scaled(self, sign: int) -> _Affine:
        return _Affine(sign * self.constant, self.columns, tuple(sign * s for s in self.slopes))


class ProgramBuilder:
    """Builds a Program from a circuit's instructions, in circuit order, on
    qubits numbered 0..qubits-1: what every front end (a Qiskit circuit with
    an Aer-style noise model, a Braket circuit with its noise instructions)
    feeds the engine.

    A reset starts a new *virtual qubit* (its output does not depend on its
    input); virtual qubits linked by multi-qubit channels form components.
    """

    def __init__(self, qubits: int, parameters: int) -> None:
        self.parameters = parameters
        self._virtual_of = list(range(qubits))  # physical qubit -> its current virtual qubit
        self._physical = list(range(qubits))  # virtual qubit -> physical qubit
        self._parent = list(range(qubits))
        self._measured: set[int] = set()
        self._written: set[int] = set()
        self._ops: list[tuple] = []  # ("one", virtual, factor) | ("many", virtuals, superop) | ("measure", virtual, clbit, readout)

    def _root(self, v: int) -> int:
        parent = self._parent
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    def _virtuals(self, name: str, qubits: tuple[int, ...]) -> tuple[int, ...]:
        virtuals = tuple(self._virtual_of[q] for q in qubits)
        after = [v for v in virtuals if v in self._measured]
        if after:
            raise Unsupported(f"{name} on qubit {self._physical[after[0]]} after its measurement, with no reset between")
        return virtuals

    def reset(self, qubit: int, error: np.ndarray | None = None) -> None:
        """The qubit starts afresh in |0><0|, then takes the reset's error (a 4x4 superoperator)."""
        self._virtual_of[qubit] = len(self._physical)
        self._physical.append(qubit)
        self._parent.append(self._virtual_of[qubit])
        if error is not None:
            self._ops.append(("one", self._virtual_of[qubit], error))

    def one(self, qubit: int, name: str, angles: list, matrix, affine, superop=None) -> None:
        """A one-qubit gate: ``matrix()`` where its angles are numbers (or
        ``superop()``, its superoperator, where the front end keeps them),
        else its ROTATIONS entry with ``affine(angle)`` reading each symbolic angle."""
        (virtual,) = self._virtuals(name, (qubit,))
        if not any(_is_symbolic(a) for a in angles):
            self._ops.append(("one", virtual, superop() if superop is not None else _unitary_superop(matrix())))
            return
        if name not in ROTATIONS:
            raise Unsupported(f"parameterised {name} (the engine binds rotations it can write as rz)")
        for step in ROTATIONS[name]:
            if isinstance(step, np.ndarray):
                self._ops.append(("one", virtual, _unitary_superop(step)))
                continue
            _, index, sign = step
            angle = angles[index]
            form = affine(angle) if _is_symbolic(angle) else _Affine(float(angle), (), ())
            self._ops.append(("one", virtual, form.scaled(sign)))

    def channel(self, qubits: tuple[int, ...], superop: np.ndarray, name: str = "a channel") -> None:
        """A fixed channel on ``qubits`` (bit m of its index is qubits[m], Qiskit's order)."""
        virtuals = self._virtuals(name, qubits)
        if len(virtuals) == 1:
            self._ops.append(("one", virtuals[0], superop))
            return
        self._ops.append(("many", virtuals, superop))
        first, *others = virtuals
        for other in others:
            self._parent[self._root(other)] = self._root(first)

    def measure(self, qubit: int, clbit: int, readout: np.ndarray | None) -> None:
        """The qubit measured into ``clbit``; ``readout`` is P[recorded, true] (None: ideal)."""
        (virtual,) = self._virtuals("measure", (qubit,))
        if clbit in self._written:
            raise Unsupported(f"classical bit {clbit} is measured twice")
        self._written.add(clbit)
        self._measured.add(virtual)
        self._ops.append(("measure", virtual, clbit, readout))

    def program(self, registers: tuple[tuple[str, tuple[int, ...]], ...]) -> Program:
        """The Program, its registers (name, clbits) as given."""
        groups: dict[int, list[int]] = {}
        for v in range(len(self._physical)):
            groups.setdefault(self._root(v), []).append(v)
        # Components: the groups of linked virtual qubits with a measured one among them.
        kept = [members for members in groups.values() if any(v in self._measured for v in members)]
        component_of = {v: i for i, members in enumerate(kept) for v in members}
        local_of = {v: members.index(v) for members in kept for v in members}
        components = [_Component(width=len(members), steps=[], measured=[], clbits=[], columns=[]) for members in kept]
        pending: list[dict[int, _Block]] = [{} for _ in kept]
        own: list[dict[int, int]] = [{} for _ in kept]  # circuit column -> the component's parameter index

        def flush(c: int, local: int) -> None:
            block = pending[c].pop(local, None)
            if block is not None:
                components[c].steps.append(block)

        def angle(c: int, form: _Affine) -> _Angle:
            for col in form.columns:
                if col not in own[c]:
                    own[c][col] = len(components[c].columns)
                    components[c].columns.append(col)
            return _Angle(form.constant, tuple(own[c][col] for col in form.columns), form.slopes)

        for op in self._ops:
            kind = op[0]
            virtuals = op[1] if kind == "many" else (op[1],)
            c = component_of.get(virtuals[0])
            if c is None:
                continue  # a component nothing is measured from
            if kind == "one":
                local = local_of[op[1]]
                factor = angle(c, op[2]) if isinstance(op[2], _Affine) else op[2]
                pending[c].setdefault(local, _Block(local, [])).factors.append(factor)
            elif kind == "many":
                locals_ = tuple(local_of[v] for v in virtuals)
                for local in locals_:
                    flush(c, local)
                components[c].steps.append(_Channel(locals_, op[2]))
            else:  # measure: the qubit's last instruction before any reset
                local = local_of[op[1]]
                flush(c, local)
                components[c].measured.append((local, op[3]))
                components[c].clbits.append(op[2])
        for c in range(len(components)):
            for local in sorted(pending[c]):
                flush(c, local)

        by_signature: dict[tuple, list[int]] = {}
        for c, component in enumerate(components):
            by_signature.setdefault(component.signature(), []).append(c)
        sources = {clbit: (c, i) for c, component in enumerate(components) for i, clbit in enumerate(component.clbits)}
        return Program(
            parameters=self.parameters,
            groups=[(components[members[0]], members) for members in by_signature.values()],
            components=components,
            registers=registers,
            sources=sources,
        )


def _matrix(operation) -> np.ndarray:
    try:
        return np.asarray(operation.to_matrix(), dtype=complex)
    except Exception as err:  # initialize and other non-unitary instructions
        raise Unsupported(f"{operation.name} is not a unitary gate") from err


def _is_symbolic(value) -> bool:
    """An angle with free parameters: a Qiskit ParameterExpression, or a Braket FreeParameterExpression."""
    if hasattr(value, "parameters"):
        return len(value.parameters) > 0
    return bool(getattr(getattr(value, "expression", None), "free_symbols", ()))


def _affine(expression, column: dict[str, int]) -> _Affine:
    """A Qiskit angle's constant, circuit columns and slopes, read from the
    expression's own parameters only (a packed circuit has thousands)."""
    own = list(expression.parameters)
    return affine_form([p.name for p in own], lambda values: float(expression.bind(dict(zip(own, values, strict=True)))), column, str(expression))


def affine_form(names: list[str], value_at, column: dict[str, int], shown: str) -> _Affine:
    """An angle as constant + slopes . parameters, read by evaluating it
    (``value_at(values of names)``) at zero and at each unit vector, and
    checked at a random point.

    Raises:
        Unsupported: the angle is not affine in the parameters.
    """
    def at(point) -> float:
        return value_at([float(x) for x in point])

    constant = at(np.zeros(len(names)))
    slopes = tuple(at(np.eye(len(names))[i]) - constant for i in range(len(names)))
    probe = np.random.default_rng(0).uniform(-2, 2, len(names))
    if not np.isclose(at(probe), constant + np.dot(slopes, probe), rtol=0, atol=1e-12):
        raise Unsupported(f"the angle {shown} is not affine in the parameters")
    return _Affine(constant, tuple(column[name] for name in names), slopes)


# --- running a program -------------------------------------------------------------------------------


def probabilities(program: Program, values: np.ndarray, names: list[str]) -> np.ndarray:
    """The named registers' exact noisy outcome probabilities, (rows,
    len(names), 2**size): index bit j is the register's bit j. Components are
    independent, so a register whose bits come from several is the product
    of their marginals; bits of one component are read jointly.

    Raises:
        ValueError: the rows do not have the circuit's parameters.
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    if values.shape[1] != program.parameters:
        raise ValueError(f"the circuit has {program.parameters} parameters, the rows {values.shape[1]}")
    rows = len(values)
    distributions: dict[int, np.ndarray] = {}
    for g, (component, members) in enumerate(program.groups):
        # Every member's rows in one simulation: member m's rows are block m.
        stacked = np.concatenate([values[:, program.components[c].columns] for c in members]) if component.columns else np.zeros((rows * len(members), 0))
        fourier = program._fourier.get(g)
        if fourier is None and not program.one_job:
            fourier = _Fourier.of(component)
            if fourier is not None:  # kept for the run's next jobs
                program._fourier[g] = fourier
        result = fourier(stacked) if fourier is not None else _component_distribution(component, stacked)
        for m, c in enumerate(members):
            distributions[c] = result[m * rows : (m + 1) * rows]
    registers = dict(program.registers)
    stacked_out = []
    for name in names:
        clbits = registers[name]
        by_component: dict[int, list[tuple[int, int]]] = {}  # component -> [(register bit, measured position)]
        for j, clbit in enumerate(clbits):
            source = program.sources.get(clbit)
            if source is not None:  # a bit never measured reads 0
                by_component.setdefault(source[0], []).append((j, source[1]))
        joint = np.ones((rows, 1))
        places: list[int] = []  # the register bit of each of joint's index bits, highest first
        for c, pairs in by_component.items():
            bits = len(program.components[c].measured)
            shaped = distributions[c].reshape((rows,) + (2,) * bits)
            keep = {1 + (bits - 1 - position) for _, position in pairs}
            drop = tuple(a for a in range(1, bits + 1) if a not in keep)
            marginal = shaped.sum(axis=drop) if drop else shaped
            # The kept axes stay in increasing order: decreasing measured position.
            joint = (joint[:, :, None] * marginal.reshape(rows, 1, -1)).reshape(rows, -1)
            places += [j for j, _ in sorted(pairs, key=lambda pair: -pair[1])]
        target = np.zeros(2 ** len(places), dtype=np.int64)
        for k, j in enumerate(places):
            target |= ((np.arange(2 ** len(places)) >> (len(places) - 1 - k)) & 1) << j
        result = np.zeros((2 ** len(clbits), rows))
        np.add.at(result, target, joint.T)
        stacked_out.append(result.T)
    return np.stack(stacked_out, axis=1)


@dataclass(frozen=True)
class _Fourier:
    """A component's outcome probabilities as the trigonometric polynomial
    they are in its parameters, computed exactly once a run.

    Every parameter enters through rz gates, whose superoperator is
    diag(1, e^{-ia}, e^{ia}, 1) for angle a = constant + slope * theta: with
    integer slopes, the probabilities are a trigonometric polynomial in each
    theta of degree at most the sum of its |slopes|. Simulating the component
    at 2d+1 equally spaced points of each parameter and taking their discrete
    Fourier transform gives its coefficients exactly (no truncation: the
    polynomial has no higher frequency); a row then costs one contraction of
    the coefficients with its phases, instead of a density-matrix simulation.
    Used where the grid is small (GRID_ENTRIES): built once a process.
    """

    degrees: tuple[int, ...]
    coefficients: np.ndarray  # (2d_1+1, ..., 2d_m+1, outcomes), frequencies in FFT order

    #: Largest grid worth simulating (points), whatever the rows.
    #: The largest grid worth simulating, in density-matrix entries (points
    #: times 4**width): 5 qubits, up to 4,096 points (the paper's map: 243).
    GRID_ENTRIES = 2**22

    @classmethod
    def of(cls, component: _Component) -> _Fourier | None:
        """The component's polynomial, or None where its grid would cost more
        than simulating rows directly (chosen by the component alone, so that
        a job's counts do not depend on which jobs a process ran before)."""
        degrees = [0.0] * len(component.columns)
        for step in component.steps:
            for factor in getattr(step, "factors", ()):
                if isinstance(factor, _Angle):
                    for column, slope in zip(factor.columns, factor.slopes, strict=True):
                        degrees[column] += abs(slope)
        if not all(float(d).is_integer() for d in degrees):
            return None  # non-integer frequencies: no finite grid
        sizes = [2 * int(d) + 1 for d in degrees]
        points = int(np.prod(sizes)) if sizes else 1
        if points * 4**component.width > cls.GRID_ENTRIES:
            return None
        axes = [2 * np.pi * np.arange(size) / size for size in sizes]
        grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(points, len(sizes)) if sizes else np.zeros((1, 0))
        table = _component_distribution(component, grid).reshape(*sizes, -1)
        coefficients = np.fft.fftn(table, axes=tuple(range(len(sizes)))) / points if sizes else table
        return cls(tuple(int(d) for d in degrees), coefficients)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        # p(theta) = sum_k c_k e^{i k . theta}, k over the FFT's frequencies of
        # each axis: every row's phases as one vector (their outer product),
        # then one matrix product with the coefficients.
        phases = np.ones((len(values), 1), dtype=complex)
        for axis, degree in enumerate(self.degrees):
            size = 2 * degree + 1
            frequencies = np.fft.fftfreq(size, 1 / size)
            axis_phases = np.exp(1j * values[:, axis, None] * frequencies[None, :])
            phases = (phases[:, :, None] * axis_phases[:, None, :]).reshape(len(values), -1)
        table = self.coefficients.reshape(phases.shape[1], -1)
        return np.clip((phases @ table).real, 0.0, None)


def sample(program: Program, values: np.ndarray, names: list[str], shots: int, seed: int | None) -> np.ndarray:
    """Counts (rows x registers, 2**size), register r of row e in row
    e * len(names) + r: ``shots`` shots drawn from the exact probabilities by
    one generator seeded by ``seed`` (the ``statevector`` simulator's draw, qhw.backends._sampling)."""
    from qhw.backends._sampling import multinomial_counts

    table = probabilities(program, values, names)
    return multinomial_counts(table.reshape(len(table) * len(names), -1), shots, seed)


def _component_distribution(component: _Component, values: np.ndarray) -> np.ndarray:
    """(rows, 2**measured) over the component's measured qubits, in measured
    order (measured position i is index bit i), readout errors applied."""
    rows = max(1, CHUNK_ENTRIES // 4**component.width)
    return np.concatenate([_distribution(component, values[start : start + rows]) for start in range(0, len(values), rows)])


def _block_superops(block: _Block, values: np.ndarray) -> np.ndarray:
    """The block's 4x4 superoperator: fixed (4, 4) when no factor depends on
    the rows, else (rows, 4, 4)."""
    fixed = np.eye(4, dtype=complex)
    per_row = None
    for factor in block.factors:
        if isinstance(factor, np.ndarray):
            if per_row is None:
                fixed = factor @ fixed
            else:
                per_row = np.einsum("ij,rjk->rik", factor, per_row)
        else:  # rz(a): rho[i, j] gains exp(-i a (i - j)), the superoperator diag(1, e^{-ia}, e^{ia}, 1)
            phase = np.exp(-1j * factor(values))
            diagonal = np.stack([np.ones_like(phase), phase, phase.conj(), np.ones_like(phase)], axis=1)
            per_row = diagonal[:, :, None] * (fixed if per_row is None else per_row)
    return fixed if per_row is None else per_row


def _distribution(component: _Component, values: np.ndarray) -> np.ndarray:
    n, width = len(values), component.width
    steps = list(component.steps)
    # Each qubit starts in |0><0| (vec: [1, 0, 0, 0]); its first single-qubit
    # block acts on it alone, so the state is a product until a multi-qubit gate.
    locals_ = [np.tile(np.array([1, 0, 0, 0], dtype=complex), (n, 1)) for _ in range(width)]
    touched: set[int] = set()
    while steps and isinstance(steps[0], _Block) and steps[0].qubit not in touched:
        block = steps.pop(0)
        superop = _block_superops(block, values)
        locals_[block.qubit] = superop[:, :, 0] if superop.ndim == 3 else np.tile(superop[:, 0], (n, 1))
        touched.add(block.qubit)
    # rho as a tensor: axes (row, ket q_{w-1} .. ket q_0, bra q_{w-1} .. bra q_0).
    rho = np.ones((n, 1, 1), dtype=complex)
    for local in reversed(locals_):
        one = local.reshape(n, 2, 2)
        rho = (rho[:, :, None, :, None] * one[:, None, :, None, :]).reshape(n, rho.shape[1] * 2, rho.shape[2] * 2)
    rho = rho.reshape((n,) + (2,) * (2 * width))
    for superop, qubits in _fused(steps, values):
        rho = _apply(rho, superop, qubits, width)
    diagonal = np.einsum("rii->ri", rho.reshape(n, 2**width, 2**width)).real
    shaped = diagonal.reshape((n,) + (2,) * width)
    # Unmeasured qubits traced out; measured position i at index bit i, with its readout error.
    axis_of = [1 + (width - 1 - local) for local, _ in component.measured]
    dropped = tuple(a for a in range(1, width + 1) if a not in axis_of)
    if dropped:
        shaped = shaped.sum(axis=dropped)
        remaining = [a for a in range(1, width + 1) if a not in dropped]
        axis_of = [1 + remaining.index(a) for a in axis_of]
    bits = len(axis_of)
    shaped = np.moveaxis(shaped, axis_of, [bits - i for i in range(bits)])
    for i, (_, readout) in enumerate(component.measured):
        if readout is not None:
            shaped = np.moveaxis(np.tensordot(shaped, readout, axes=([bits - i], [1])), -1, bits - i)
    return np.clip(shaped.reshape(n, -1), 0.0, None)


def _fused(steps: list, values: np.ndarray) -> list[tuple[np.ndarray, tuple[int, ...]]]:
    """The steps as superoperators to apply, a single-qubit block that is the
    same for every row folded into the next multi-qubit channel on its qubit:
    each application is a pass over every density matrix, and a wide
    component's passes are what it costs."""
    out: list[tuple[np.ndarray, tuple[int, ...]]] = []
    held: dict[int, np.ndarray] = {}  # qubit -> a fixed block not yet applied
    for step in steps:
        if isinstance(step, _Block):
            superop = _block_superops(step, values)
            if superop.ndim == 3 and len(superop) == 1:
                superop = superop[0]
            if superop.ndim == 2:
                held[step.qubit] = superop @ held[step.qubit] if step.qubit in held else superop
                continue
            if step.qubit in held:
                out.append((held.pop(step.qubit), (step.qubit,)))
            out.append((superop, (step.qubit,)))
            continue
        superop = step.superop
        for position, qubit in enumerate(step.qubits):
            if qubit in held:  # it acts first: on the right
                superop = superop @ tensor_superops([held.pop(qubit) if m == position else np.eye(4) for m in range(len(step.qubits))])
        out.append((superop, step.qubits))
    out += [(superop, (qubit,)) for qubit, superop in held.items()]
    return out


def _apply(rho: np.ndarray, superop: np.ndarray, qubits: tuple[int, ...], width: int) -> np.ndarray:
    """A superoperator on ``qubits`` (fixed (d^2, d^2), or one a row (rows, d^2, d^2)),
    its index (ket bits, then bra bits) in Qiskit's order: bit m of the ket
    index is ``qubits[m]``. A large state is updated in place, a slice at a
    time (over axes the superoperator does not touch), so that a wide
    component holds its density matrix and one slice's copy, not three copies."""
    # The superoperator's index as bits, highest first: ket q_{k-1} .. ket q_0, bra q_{k-1} .. bra q_0.
    axes = [1 + (width - 1 - q) for q in reversed(qubits)] + [1 + width + (width - 1 - q) for q in reversed(qubits)]
    if rho.size <= SLICE_ENTRIES:
        return _apply_whole(rho, superop, axes)
    free = [a for a in range(1, rho.ndim) if a not in axes]
    sliced = free[: max(1, int(np.ceil(np.log2(rho.size / SLICE_ENTRIES))))]
    if not rho.flags.writeable or not rho.flags.c_contiguous:
        rho = np.ascontiguousarray(rho)
    inner = [a - sum(1 for s in sliced if s < a) for a in axes]
    for index in np.ndindex(*(2,) * len(sliced)):
        selector = [slice(None)] * rho.ndim
        for axis, i in zip(sliced, index, strict=True):
            selector[axis] = i
        rho[tuple(selector)] = _apply_whole(rho[tuple(selector)], superop, inner)
    return rho


def _apply_whole(rho: np.ndarray, superop: np.ndarray, axes: list[int]) -> np.ndarray:
    end = list(range(rho.ndim - len(axes), rho.ndim))
    moved = np.moveaxis(rho, axes, end)
    shape = moved.shape
    size = superop.shape[-1]
    if superop.ndim == 2:
        flat = moved.reshape(-1, size) @ superop.T
    else:
        flat = np.matmul(moved.reshape(shape[0], -1, size), superop.transpose(0, 2, 1))
    return np.moveaxis(flat.reshape(shape), end, axes)
