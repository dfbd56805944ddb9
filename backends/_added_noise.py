"""What ``--noise SPEC`` adds to a fake IBM device: each effect an explicit channel.

The device's calibrated noise (its gate and readout errors) stays in the
channels the engine reads, scaled by ``scale`` and ``readout``
(:class:`qhw.backends._ibm_calibration.DeviceChannels`, and the Aer model
:func:`scaled_noise_model` builds for ``--engine aer`` and the tests). Every
other effect is an instruction written into the compiled circuit here, so that
qhw's noisy engine and Aer read the very same channels:

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


@functools.lru_cache(maxsize=1024)
def _pauli(label: str, probability: float):
    """One error object a probability (the engine reads each once)."""
    from qiskit_aer.noise import pauli_error

    return pauli_error([(label, probability), ("I" * len(label), 1 - probability)])


def _instruction(error) -> Any:
    instruction = error.to_instruction()
    instruction.label = LABEL
    return instruction


def _unitary(matrix: np.ndarray) -> Any:
    from qiskit.circuit.library import UnitaryGate

    # A unitary of its own name: the device's noise model gives it no error of
    # a gate it has (Heron's fractional rzz, say).
    return UnitaryGate(matrix, label=LABEL)


def zz_matrix(theta: float) -> np.ndarray:
    """exp(-i theta/2 Z(x)Z), diagonal in the computational basis."""
    phase = np.exp(-0.5j * theta)
    return np.diag([phase, phase.conjugate(), phase.conjugate(), phase])


def rz_matrix(theta: float) -> np.ndarray:
    phase = np.exp(-0.5j * theta)
    return np.diag([phase, phase.conjugate()])


def with_added_noise(circuit, spec: NoiseSpec, facts: DeviceFacts, copy_qubits: Iterable[Iterable[int]]):
    """The compiled circuit with the spec's effects written in as channels
    (module docstring); ``copy_qubits``: each copy's physical qubits.

    Crosstalk is a global clock: a two-qubit gate's layer is one more than the
    latest layer of its qubits', and every other instruction takes its
    qubits' latest layer; instructions are put in order of layer (each qubit's
    own order kept, so the circuit is the same), and after layer L's, each
    coupled pair with a qubit in use gets the ZZ rotation, written by what the
    pair is:

    - both in use, in one copy and at the same position: the coherent ZZ
      rotation itself (they are simulated together anyway);
    - one in use, the other never used by the circuit (it stays in |0>, so
      ZZ is exactly an rz of THETA on the first): that rz;
    - otherwise (two copies side by side, a copy and a routing qubit, a qubit
      measured and not yet reset): the ZZ rotation Pauli-twirled, a ZZ error
      of probability sin^2(THETA/2), written as what it does to each qubit's
      own copy: a Z error of that probability on each qubit in use. A
      coherent ZZ between two copies would entangle them, and no engine that
      simulates a copy alone could compute it; the twirled one gives each copy
      the very outcome distribution the joint ZZ error gives it (a test holds
      them equal on Aer), and a copy's register is all a run reads.
    """
    from qiskit import QuantumCircuit

    out = QuantumCircuit(*circuit.qregs, *circuit.cregs, name=circuit.name, global_phase=circuit.global_phase)
    if not spec.writes_channels:
        out.compose(circuit, inplace=True)
        return out
    index = {bit: circuit.find_bit(bit).index for bit in circuit.qubits}
    members = [tuple(qubits) for qubits in copy_qubits]
    copy_of = {q: c for c, qubits in enumerate(members) for q in qubits}
    neighbours = facts.neighbours()
    bad = dict(spec.bad_qubits)
    used = sorted({index[q] for i in circuit.data if i.operation.name != "barrier" for q in i.qubits})

    # Each instruction's place on the global clock, (layer, phase): phase 0 is
    # the layer's gates, phase 1 what follows its crosstalk (a measurement and
    # what comes after it until the qubit's next two-qubit gate). A qubit's
    # places only grow, so the circuit in their order is the same circuit.
    place = [(0, 0)] * circuit.num_qubits
    at = [0] * circuit.num_qubits  # each qubit's position (its resets so far)
    keyed = []
    for position, instruction in enumerate(circuit.data):
        qubits = [index[q] for q in instruction.qubits]
        if not qubits:
            continue
        name = instruction.operation.name
        now = max(place[q] for q in qubits)
        if len(qubits) == 2 and name != "barrier":
            now = (now[0] + 1, 0)
        elif name == "measure":
            q = qubits[0]
            # A copy's qubits are measured together once its position's gates
            # are done (as a device reads them out), not each as soon as it can.
            together = [x for x in members[copy_of[q]] if at[x] == at[q]] if copy_of.get(q) is not None else [q]
            now = (max(place[x][0] for x in together + [q]), 1)
        elif name == "reset":
            for q in qubits:
                at[q] += 1
        for q in qubits:
            place[q] = now
        keyed.append((now, position, instruction, qubits))
    keyed.sort(key=lambda item: item[:2])

    state = dict.fromkeys(used, "live")  # live | measured (since its last reset); a qubit not here is idle
    resets = dict.fromkeys(used, 0)
    flip = math.sin(spec.crosstalk / 2) ** 2

    def append(operation, qubits: list[int]) -> None:
        out.append(operation, [circuit.qubits[q] for q in qubits])

    def crosstalk() -> None:
        if spec.crosstalk == 0:
            return
        for a, b in sorted(facts.couplers):
            live = [q for q in (a, b) if state.get(q) == "live"]
            if not live:
                continue
            idle = [q for q in (a, b) if q not in state]
            if len(live) == 2 and copy_of.get(a) is not None and copy_of.get(a) == copy_of.get(b) and resets[a] == resets[b]:
                append(_unitary(zz_matrix(spec.crosstalk)), [a, b])
            elif len(live) == 1 and idle:
                append(_unitary(rz_matrix(spec.crosstalk)), live)
            else:
                for q in live:
                    append(_instruction(_pauli("Z", flip)), [q])

    if isinstance(spec.prep, str) or spec.prep > 0:
        for q in used:
            p = spec.prep_probability(facts.t1.get(q), facts.rep_delay)
            if p > 0:
                append(_instruction(_pauli("X", p)), [q])
    current = (0, 0)
    for key, _, instruction, qubits in keyed:
        if key > current:
            if current[0] > 0 and current[1] == 0:  # layer current[0]'s gates are done (layer 0 has no two-qubit gate)
                crosstalk()
            current = key
        operation = instruction.operation
        name = operation.name
        if name == "measure":
            for q in qubits:
                if q in bad and bad[q] > 0:
                    append(_instruction(_depolarizing(bad[q])), [q])
        out.append(operation, instruction.qubits, instruction.clbits)
        if name == "barrier":
            continue
        if name == "measure":
            for q in qubits:
                state[q] = "measured"
                if spec.measure_crosstalk > 0:
                    for n in neighbours.get(q, []):
                        if state.get(n) == "live":
                            append(_instruction(_pauli("Z", spec.measure_crosstalk)), [n])
            continue
        if name == "reset":
            for q in qubits:
                state[q] = "live"
                resets[q] += 1
                if spec.reset > 0:
                    append(_instruction(_pauli("X", spec.reset)), [q])
            continue
        for q in qubits:
            if q in bad and bad[q] > 0:
                append(_instruction(_depolarizing(bad[q])), [q])
    if current[0] > 0 and current[1] == 0:
        crosstalk()
    return out


@functools.lru_cache(maxsize=256)
def _depolarizing(probability: float):
    from qiskit_aer.noise import depolarizing_error

    return depolarizing_error(probability, 1)
