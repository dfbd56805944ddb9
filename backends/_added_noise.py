"""What ``--noise SPEC`` adds to an emulated device: each effect an explicit channel.

On a fake IBM device the calibrated noise (its gate and readout errors)
stays in the channels the engine reads, scaled by ``scale`` and ``readout``
(:class:`qhw.backends._ibm_calibration.DeviceChannels`, and the Aer model
:func:`scaled_noise_model` builds for ``--engine aer`` and the tests); on
``braket_emulator:`` the channels Braket's noise model writes into the
circuit are scaled (:func:`braket_with_added_noise`). Every other effect is
planned once here on the circuit's clock (:func:`plan_added_noise`) and
written into the circuit, so that qhw's noisy engine and the provider's own
simulator (Aer, braket_dm) read the very same channels:

- ``prep``: each qubit the circuit uses starts in |1> with probability P (an X
  error at the start);
- ``reset``: after each reset, an X error with probability P;
- ``measure-crosstalk``: after each measurement, a Z error with probability P
  on each coupled neighbour still in use (a qubit idle, or measured and not
  reset since, has no phase that matters);
- ``bad-qubit``: a depolarizing error P on the qubit after each gate on it,
  and before each of its measurements;
- ``crosstalk``: a ZZ rotation of THETA on each coupled pair with a qubit in
  use, after each layer of two-qubit gates (see :func:`with_added_noise` for
  how each kind of pair is written).

Drift scales a job's spec as a whole (NoiseSpec.drifted), so it is no
instruction of its own.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from qhw.noise import NoiseSpec

#: The label of every instruction written here (a circuit shows where they are).
LABEL = "qhw-noise"


@dataclass(frozen=True)
class DeviceFacts:
    """What the added noise reads of a device: its coupled pairs, each qubit's
    T1 (seconds, for prep=auto) and the shot's rep_delay (seconds)."""

    couplers: frozenset[tuple[int, int]]  # (a, b) with a < b
    t1: Mapping[int, float]
    rep_delay: float

    def neighbours(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for a, b in sorted(self.couplers):
            out.setdefault(a, []).append(b)
            out.setdefault(b, []).append(a)
        return out


def device_facts(device: Any, rep_delay: float | None = None) -> DeviceFacts:
    """A Runtime device's couplers (any two-qubit gate of its target), T1s and rep_delay."""
    from qhw.backends._ibm_calibration import TWO_QUBIT_GATES

    target = device.target
    couplers = {
        (min(key), max(key))
        for operation in TWO_QUBIT_GATES if operation in target
        for key in target[operation] if key is not None and len(key) == 2
    }
    properties = target.qubit_properties or []
    t1 = {q: float(p.t1) for q, p in enumerate(properties) if p is not None and getattr(p, "t1", None)}
    default = getattr(device, "default_rep_delay", None) or getattr(device.configuration(), "default_rep_delay", None) or 0.0
    return DeviceFacts(frozenset(couplers), t1, float(default) if rep_delay is None else rep_delay)


def graph_facts(graph: Any, rep_delay: float | None) -> DeviceFacts:
    """DeviceFacts from a device graph as the partition reads it (a Braket device's document)."""
    couplers = frozenset((min(pair), max(pair)) for pair in graph.couplers)
    return DeviceFacts(couplers, {q: t1 * 1e-6 for q, t1 in graph.t1_us.items()}, rep_delay or 0.0)


@functools.lru_cache(maxsize=1024)
def _pauli(label: str, probability: float):
    """One error object a probability (the engine reads each once)."""
    from qiskit_aer.noise import pauli_error

    return pauli_error([(label, probability), ("I" * len(label), 1 - probability)])


@functools.lru_cache(maxsize=1024)
def _channel(kind: str, probability: float) -> Any:
    """The instruction of an X or Z error ("x", "z") or a depolarizing one of
    ``probability``: one instruction a channel, shared by every place it is
    written (an instruction without parameters is appended as it is)."""
    error = _depolarizing(probability) if kind == "depolarizing" else _pauli(kind.upper(), probability)
    instruction = error.to_instruction()
    instruction.label = LABEL
    return instruction


@functools.lru_cache(maxsize=1024)
def _rotation(kind: str, theta: float) -> Any:
    """The ZZ ("zz") or rz ("rz") rotation of ``theta`` as a unitary of its own
    name: the device's noise model gives it no error of a gate it has (Heron's
    fractional rzz, say). One gate an angle, shared."""
    from qiskit.circuit.library import UnitaryGate

    return UnitaryGate(zz_matrix(theta) if kind == "zz" else rz_matrix(theta), label=LABEL)


def zz_matrix(theta: float) -> np.ndarray:
    """exp(-i theta/2 Z(x)Z), diagonal in the computational basis."""
    phase = np.exp(-0.5j * theta)
    return np.diag([phase, phase.conjugate(), phase.conjugate(), phase])


def rz_matrix(theta: float) -> np.ndarray:
    phase = np.exp(-0.5j * theta)
    return np.diag([phase, phase.conjugate()])


@dataclass(frozen=True)
class Step:
    """An instruction of a circuit as the clock reads it: ``kind`` "gate",
    "measure", "reset", or "other" (a barrier, a noise channel, a directive:
    no time of its own); its qubits by the device's labels."""

    kind: str
    qubits: tuple[int, ...]


#: What the plan writes, in order: ("step", i) is the circuit's instruction i;
#: ("x" | "z", p, q) a Pauli error of probability p on q; ("depolarizing", p, q);
#: ("zz", theta, a, b) a coherent ZZ rotation; ("rz", theta, q).
Event = tuple


def plan_added_noise(steps: list[Step], spec: NoiseSpec, facts: DeviceFacts, copy_qubits: Iterable[Iterable[int]]) -> list[Event]:
    """The circuit's instructions (by index) in the clock's order, with the
    spec's channels between them (module docstring); ``copy_qubits``: each
    copy's physical qubits.

    Crosstalk is a global clock: a two-qubit gate's layer is one more than the
    latest layer of its qubits', and every other instruction takes its
    qubits' latest layer; instructions are put in order of layer (each qubit's
    own order kept, so the circuit is the same), and after layer L's, each
    coupled pair with a qubit in use gets the ZZ rotation, written by what the
    pair is:

    - both in use, in one copy and at the same position: the coherent ZZ
      rotation itself (they are simulated together anyway);
    - one in use, the other never used by the run (it stays in |0>, so
      ZZ is exactly an rz of THETA on the first): that rz;
    - otherwise (two copies side by side, in one circuit or computed apart, a
      copy and a routing qubit, a qubit measured and not yet reset): the ZZ
      rotation Pauli-twirled, a ZZ error
      of probability sin^2(THETA/2), written as what it does to each qubit's
      own copy: a Z error of that probability on each qubit in use. A
      coherent ZZ between two copies would entangle them, and no engine that
      simulates a copy alone could compute it; the twirled one gives each copy
      the very outcome distribution the joint ZZ error gives it (a test holds
      them equal on Aer), and a copy's register is all a run reads.
    """
    if not spec.writes_channels:
        return [("step", i) for i in range(len(steps))]
    members = [tuple(qubits) for qubits in copy_qubits]
    copy_of = {q: c for c, qubits in enumerate(members) for q in qubits}
    neighbours = facts.neighbours()
    bad = dict(spec.bad_qubits)
    busy = set(spec.busy_qubits)  # in use by the run's other copies, computed apart
    used = sorted({q for step in steps if step.kind != "other" for q in step.qubits})

    # Each instruction's place on the global clock, (layer, phase): phase 0 is
    # the layer's gates, phase 1 what follows its crosstalk (a measurement and
    # what comes after it until the qubit's next two-qubit gate). A qubit's
    # places only grow, so the circuit in their order is the same circuit.
    place: dict[int, tuple[int, int]] = {}
    at: dict[int, int] = {}  # each qubit's position (its resets so far)
    keyed = []
    for i, step in enumerate(steps):
        qubits = step.qubits
        if not qubits:
            continue
        now = max(place.get(q, (0, 0)) for q in qubits)
        if step.kind == "gate" and len(qubits) == 2:
            now = (now[0] + 1, 0)
        elif step.kind == "measure":
            q = qubits[0]
            # A copy's qubits are measured together once its position's gates
            # are done (as a device reads them out), not each as soon as it can.
            together = [x for x in members[copy_of[q]] if at.get(x, 0) == at.get(q, 0)] if q in copy_of else [q]
            now = (max(place.get(x, (0, 0))[0] for x in [*together, q]), 1)
        elif step.kind == "reset":
            for q in qubits:
                at[q] = at.get(q, 0) + 1
        for q in qubits:
            place[q] = now
        keyed.append((now, i))
    keyed.sort()

    events: list[Event] = []
    state = dict.fromkeys(used, "live")  # live | measured (since its last reset); a qubit not here is idle
    resets = dict.fromkeys(used, 0)
    flip = math.sin(spec.crosstalk / 2) ** 2

    def crosstalk() -> None:
        if spec.crosstalk == 0:
            return
        for a, b in sorted(facts.couplers):
            live = [q for q in (a, b) if state.get(q) == "live"]
            if not live:
                continue
            idle = [q for q in (a, b) if q not in state and q not in busy]
            if len(live) == 2 and copy_of.get(a) is not None and copy_of.get(a) == copy_of.get(b) and resets[a] == resets[b]:
                events.append(("zz", spec.crosstalk, a, b))
            elif len(live) == 1 and idle:
                events.append(("rz", spec.crosstalk, live[0]))
            else:
                events.extend(("z", flip, q) for q in live)

    if isinstance(spec.prep, str) or spec.prep > 0:
        for q in used:
            p = spec.prep_probability(facts.t1.get(q), facts.rep_delay)
            if p > 0:
                events.append(("x", p, q))
    current = (0, 0)
    for key, i in keyed:
        if key > current:
            if current[0] > 0 and current[1] == 0:  # layer current[0]'s gates are done (layer 0 has no two-qubit gate)
                crosstalk()
            current = key
        step = steps[i]
        if step.kind == "measure":
            events.extend(("depolarizing", bad[q], q) for q in step.qubits if bad.get(q))
        events.append(("step", i))
        if step.kind == "measure":
            for q in step.qubits:
                state[q] = "measured"
                if spec.measure_crosstalk > 0:
                    events.extend(("z", spec.measure_crosstalk, n) for n in neighbours.get(q, []) if state.get(n) == "live")
        elif step.kind == "reset":
            for q in step.qubits:
                state[q] = "live"
                resets[q] += 1
                if spec.reset > 0:
                    events.append(("x", spec.reset, q))
        elif step.kind == "gate":
            events.extend(("depolarizing", bad[q], q) for q in step.qubits if bad.get(q))
    if current[0] > 0 and current[1] == 0:
        crosstalk()
    return events


def with_added_noise(circuit, spec: NoiseSpec, facts: DeviceFacts, copy_qubits: Iterable[Iterable[int]]):
    """A compiled Qiskit circuit with the spec's channels written in
    (plan_added_noise): Aer errors as instructions, ZZ and rz rotations as
    unitaries of their own name, each labelled LABEL."""
    from qiskit import QuantumCircuit
    from qiskit.circuit import CircuitInstruction

    index = {bit: circuit.find_bit(bit).index for bit in circuit.qubits}
    kinds = {"measure": "measure", "reset": "reset", "barrier": "other"}
    steps = [Step(kinds.get(i.operation.name, "gate"), tuple(index[q] for q in i.qubits)) for i in circuit.data]
    out = QuantumCircuit(*circuit.qregs, *circuit.cregs, name=circuit.name, global_phase=circuit.global_phase)
    data, bits = circuit.data, circuit.qubits
    # QuantumCircuit._append, Qiskit's documented fast path (no argument
    # broadcasting or checks): every instruction here is already one of the
    # circuit's, or a one- or two-qubit operation on its qubits, and a packed
    # reused circuit takes 200,000 of them (append's checks: seconds).
    for event in plan_added_noise(steps, spec, facts, copy_qubits):
        kind = event[0]
        if kind == "step":
            out._append(data[event[1]])
        elif kind in ("x", "z", "depolarizing"):
            out._append(CircuitInstruction(_channel(kind, event[1]), (bits[event[2]],)))
        else:  # zz, rz
            out._append(CircuitInstruction(_rotation(kind, event[1]), tuple(bits[q] for q in event[2:])))
    return out


@functools.lru_cache(maxsize=256)
def _depolarizing(probability: float):
    from qiskit_aer.noise import depolarizing_error

    return depolarizing_error(probability, 1)


#: The largest probability Braket's named noise channels take (a larger one is written as Kraus operators).
_BRAKET_MOST = {"BitFlip": 0.5, "PhaseFlip": 0.5, "Depolarizing": 0.75, "TwoQubitDepolarizing": 15 / 16}


def braket_with_added_noise(noisy, spec: NoiseSpec, facts: DeviceFacts, copy_qubits: Iterable[Iterable[int]]):
    """A Braket circuit with its noise model's instructions written in (as
    Braket's emulator writes them: a depolarizing channel after each gate, a
    bit flip before each measurement for its readout error), with the spec
    applied: those channels' probabilities times ``scale`` (depolarizing) and
    ``readout`` (bit flips), and the other effects written in as Braket noise
    instructions and gates (plan_added_noise). Braket measures each qubit once,
    at the end, and resets none: ``reset`` and ``measure-crosstalk`` find
    nothing to act on. An Aer depolarizing error of parameter p is Braket's
    Depolarizing of probability 3p/4."""
    from braket.circuits import Circuit, Gate, Instruction, gates, noises
    from braket.circuits.measure import Measure

    def kind(operator) -> str:
        return "measure" if isinstance(operator, Measure) else "gate" if isinstance(operator, Gate) else "other"

    instructions = list(noisy.instructions)
    steps = [Step(kind(i.operator), tuple(int(q) for q in i.target)) for i in instructions]
    out = Circuit()

    def add(operator, *qubits: int) -> None:
        out.add_instruction(Instruction(operator, list(qubits)))

    def pauli(name: str, probability: float, qubit: int) -> None:
        named = {"x": noises.BitFlip, "z": noises.PhaseFlip}[name]
        if probability <= 0.5:
            add(named(probability), qubit)
            return
        other = np.array([[0, 1], [1, 0]] if name == "x" else [[1, 0], [0, -1]], dtype=complex)
        add(noises.Kraus([np.sqrt(1 - probability) * np.eye(2), np.sqrt(probability) * other]), qubit)

    for event in plan_added_noise(steps, spec, facts, copy_qubits):
        if event[0] == "step":
            instruction = instructions[event[1]]
            operator = instruction.operator
            factor = {"Depolarizing": spec.scale, "TwoQubitDepolarizing": spec.scale, "BitFlip": spec.readout}.get(type(operator).__name__)
            if factor is not None and factor != 1.0:
                operator = type(operator)(min(operator.probability * factor, _BRAKET_MOST[type(operator).__name__]))
                instruction = Instruction(operator, instruction.target)
            out.add_instruction(instruction)
        elif event[0] in ("x", "z"):
            pauli(event[0], event[1], event[2])
        elif event[0] == "depolarizing":
            add(noises.Depolarizing(0.75 * event[1]), event[2])
        elif event[0] == "zz":
            add(gates.ZZ(event[1]), event[2], event[3])
        else:  # rz
            add(gates.Rz(event[1]), event[2])
    return out
