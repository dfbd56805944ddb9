"""Braket device documents: their calibration figures, and devices emulated from them.

A Braket QPU publishes its properties (``DeviceCapabilities``) with
standardized calibration figures: T1, T2, one-qubit fidelities (randomized
benchmarking, readout) and two-qubit gate fidelities. qhw keeps the document
as the provider returned it with every run, and reads the figures of the
qubits a run used from it. The same document drives Braket's own
``LocalEmulator`` (its noise model and native gates), which is how
``braket_emulator:<FILE.json>`` emulates a device before paying for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from qhw.errors import ConfigError
from qhw.packing import DeviceGraph
from qhw.records import DEVICE_NAME_KEY, CalibrationSnapshot, PairCalibration, QubitCalibration


def load_properties(path: Path) -> tuple[Any, str]:
    """A Braket device properties document from a JSON file, and the device it describes.

    Raises:
        ConfigError: the file is missing, not a regular file, not JSON, not a
            gate-model QPU's document, or one that contradicts itself (see
            check_document).
    """
    from braket.device_schema import DeviceCapabilities
    from braket.schema_common import BraketSchemaBase

    try:
        # A FIFO or a device would block the read (or never end): regular files only.
        if not path.is_file():
            what = "no such file" if not path.exists() else "it is not a regular file"
            raise ConfigError(f"{path}: cannot read the device properties ({what}); braket_emulator: takes a .json file")
        raw = path.read_text(encoding="utf-8")
        data = json.loads(raw)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the device properties ({err.strerror})") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: not a JSON device properties document ({err})") from err
    try:
        properties = BraketSchemaBase.parse_raw_schema(raw)
    except Exception as err:  # pydantic's validation errors, an unknown schema header
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{path}: not a Braket device properties document ({first})") from err
    if not isinstance(properties, DeviceCapabilities) or not hasattr(properties.paradigm, "connectivity"):
        raise ConfigError(f"{path}: describes no gate-model QPU ({type(properties).__name__})")
    check_document(properties, path)
    named = data.get(DEVICE_NAME_KEY, {}) if isinstance(data, dict) else {}
    provider = properties.braketSchemaHeader.name.split(".")[2] if properties.braketSchemaHeader.name.count(".") >= 3 else "a"
    name = named.get("name") or f"the {provider} device of {path.name}"
    return properties, name


def check_document(properties: Any, path: Path) -> None:
    """Refuse a document that contradicts itself, which Braket's schema lets
    through and its LocalEmulator or qiskit-braket-provider would trip over
    later (as a ValueError in the middle of a run, or warnings): qubits
    numbered as the document numbers them, and counted alike everywhere.

    Raises:
        ConfigError: naming the file and the contradiction.
    """
    paradigm = properties.paradigm
    count = int(paradigm.qubitCount)
    if count < 1:
        raise ConfigError(f"{path}: its qubitCount is {count}; a device has at least one qubit")
    connectivity = paradigm.connectivity
    graph = connectivity.connectivityGraph or {}
    if connectivity.fullyConnected and graph:
        raise ConfigError(f"{path}: its connectivity says fullyConnected and also gives a connectivityGraph; keep one")

    def label(value: object, where: str) -> int:
        try:
            return int(str(value))
        except ValueError:
            raise ConfigError(f"{path}: qubit {value!r} in its {where} is not a number") from None

    coupled = {(label(a, "connectivity"), label(b, "connectivity")) for a, targets in graph.items() for b in targets}
    declared = getattr(paradigm, "qubitLabels", None)
    standardized = getattr(getattr(properties, "standardized", None), "oneQubitProperties", None) or {}
    if declared:
        labels = {label(q, "qubitLabels") for q in declared}
    elif standardized:
        labels = {label(q, "oneQubitProperties") for q in standardized}
    else:
        labels = {q for pair in coupled for q in pair} if graph else set(range(count))
    if len(labels) != count:
        raise ConfigError(f"{path}: its qubitCount is {count}, but it describes {len(labels)} qubits")
    strangers = sorted({q for pair in coupled for q in pair} - labels)
    if strangers:
        raise ConfigError(f"{path}: its connectivity names qubit {strangers[0]}, which is not one of its {count} qubits")
    if not connectivity.fullyConnected and not coupled and count > 1:
        raise ConfigError(f"{path}: its connectivity has no pair of coupled qubits (and fullyConnected is false)")
    if not paradigm.nativeGateSet:
        raise ConfigError(f"{path}: its paradigm names no native gates (nativeGateSet is empty)")
    for action in (properties.action or {}).values():
        if hasattr(action, "supportedOperations") and not action.supportedOperations:
            raise ConfigError(f"{path}: its action {action.actionType.value} supports no operations")


def topology(properties: Any):
    """The device's coupling graph (networkx), as AwsDevice builds it."""
    import networkx as nx

    connectivity = properties.paradigm.connectivity
    graph = nx.DiGraph()
    qubits = [int(q) for q in getattr(properties.paradigm, "qubitLabels", None) or []]
    if connectivity.fullyConnected:
        labels = qubits or list(range(properties.paradigm.qubitCount))
        graph.add_edges_from((a, b) for a in labels for b in labels if a != b)
    else:
        for a, targets in connectivity.connectivityGraph.items():
            graph.add_edges_from((int(a), int(b)) for b in targets)
    return graph


def device_graph(properties: Any) -> DeviceGraph:
    """A Braket device document as the partition sees it, by the device's own
    qubit labels: couplers, readout and two-qubit gate errors (1 - fidelity), T1, T2."""
    graph = topology(properties)
    standardized = getattr(properties, "standardized", None)
    one = getattr(standardized, "oneQubitProperties", None) or {}
    two = getattr(standardized, "twoQubitProperties", None) or {}
    readout: dict[int, float] = {}
    t1: dict[int, float] = {}
    t2: dict[int, float] = {}
    for label, figures in one.items():
        for fidelity in figures.oneQubitFidelity or []:
            if fidelity.fidelityType.name.upper() == "READOUT":
                readout[int(label)] = 1.0 - float(fidelity.fidelity)
        t1_value, t2_value = _microseconds(getattr(figures, "T1", None)), _microseconds(getattr(figures, "T2", None))
        if t1_value:
            t1[int(label)] = t1_value
        if t2_value:
            t2[int(label)] = t2_value
    gate_error: dict[tuple[int, int], float] = {}
    for key, figures in two.items():
        a, _, b = key.partition("-")
        errors = [1.0 - float(gate.fidelity) for gate in figures.twoQubitGateFidelity or []]
        if errors:
            gate_error[(int(a), int(b))] = min(errors)  # the best native two-qubit gate of the pair
    return DeviceGraph.of(graph.nodes, graph.edges, readout_error=readout, gate_error=gate_error, t1_us=t1, t2_us=t2)


def _microseconds(coherence) -> float | None:
    if coherence is None:
        return None
    scale = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}.get(str(coherence.unit).lower(), 1.0)
    return float(coherence.value) * scale


def calibration_snapshot(properties: Any, device: str, labels: Sequence[int]) -> CalibrationSnapshot:
    """The figures of the qubits (by device label) a run used, with the document itself.

    Braket publishes fidelities: errors are 1 - fidelity; the single-qubit
    gate error is 1 - the randomized-benchmarking fidelity.
    """
    standardized = getattr(properties, "standardized", None)
    one = getattr(standardized, "oneQubitProperties", None) or {}
    two = getattr(standardized, "twoQubitProperties", None) or {}
    used = {str(label) for label in labels}

    microseconds = _microseconds
    def error(fidelities, *names: str) -> float | None:
        for fidelity in fidelities or []:
            if fidelity.fidelityType.name.upper() in names:
                return 1.0 - float(fidelity.fidelity)
        return None

    qubits = []
    for label in labels:
        figures = one.get(str(label))
        qubits.append(
            QubitCalibration(
                qubit=int(label),
                t1_us=microseconds(getattr(figures, "T1", None)),
                t2_us=microseconds(getattr(figures, "T2", None)),
                readout_error=error(getattr(figures, "oneQubitFidelity", None), "READOUT"),
                gate_error=error(getattr(figures, "oneQubitFidelity", None), "RANDOMIZED_BENCHMARKING", "SIMULTANEOUS_RANDOMIZED_BENCHMARKING"),
            )
        )
    pairs = []
    for key, figures in sorted(two.items()):
        a, _, b = key.partition("-")
        if a in used and b in used:
            for gate in figures.twoQubitGateFidelity:
                pairs.append(PairCalibration(qubits=(int(a), int(b)), gate=gate.gateName.lower(), error=1.0 - float(gate.fidelity)))
    updated = getattr(properties.service, "updatedAt", None)
    if isinstance(updated, datetime):
        # AWS stamps in UTC, often without saying so.
        updated = updated.astimezone(UTC) if updated.tzinfo else updated.replace(tzinfo=UTC)
    return CalibrationSnapshot(
        device=device,
        calibrated_at=updated if isinstance(updated, datetime) else None,
        qubits=tuple(qubits),
        pairs=tuple(pairs),
        properties=properties.json(),
    )


class EmulatedDevice:
    """Braket's LocalEmulator for one device document, shaped like an AwsDevice
    (properties, topology, type) so that qiskit-braket-provider builds its target."""

    def __init__(self, properties: Any, name: str) -> None:
        from braket.aws import AwsDeviceType

        self.properties = properties
        self.name = name
        self.arn = None
        self.type = AwsDeviceType.QPU
        self.gate_calibrations = None  # no pulse-level calibrations in a document
        self.topology_graph = topology(properties)
        self._emulator = None

    def emulator(self):
        """Braket's LocalEmulator of the document, built once.

        Raises:
            ConfigError: Braket refuses the document (with its reason).
        """
        if self._emulator is None:
            from braket.emulation.local_emulator import LocalEmulator

            try:
                self._emulator = LocalEmulator.from_device_properties(self.properties)
            except (ValueError, TypeError, KeyError) as err:
                raise ConfigError(f"{self.name}: Braket's LocalEmulator refuses its device properties ({err})") from err
        return self._emulator

    def noisy(self, circuit):
        """The circuit as the emulator runs it: checked by its passes (Braket's
        verdict on the device's gates and connectivity), measured, with the
        noise model's instructions written in."""
        return self.emulator().transform(circuit, apply_noise_model=True)

    def run(self, circuit, *, shots: int):
        """Run one bound circuit with the device's noise (the emulator takes no program sets yet)."""
        return self.emulator().run(circuit, shots=shots).result()


def engine_program(noisy, parameter_names: list[str], registers: list[tuple[str, list[int]]]):
    """A Braket circuit with its noise instructions (as Braket's noise model
    writes them in, see EmulatedDevice.noisy) as the noisy engine runs it.

    Gates and noise channels act on qubits by the device's labels; a Braket
    matrix on targets (a, b) has a as its highest bit, the engine's lowest
    first, hence the reversed targets. A measured qubit's classical bit is
    the qubit itself (Braket measures each qubit at most once, at the end).

    Args:
        noisy: the braket.circuits.Circuit, its angles free parameters.
        parameter_names: the circuit's parameter columns, by Braket name.
        registers: each register's name and the labels of the qubits its bits read.

    Raises:
        Unsupported: an instruction the engine cannot apply exactly.
    """
    from braket.circuits import Gate, Noise
    from braket.circuits.compiler_directive import CompilerDirective
    from braket.circuits.measure import Measure

    from qhw.backends import _density

    labels = sorted({int(q) for instruction in noisy.instructions for q in instruction.target} | {q for _, bits in registers for q in bits})
    index = {label: i for i, label in enumerate(labels)}
    column = {name: i for i, name in enumerate(parameter_names)}
    builder = _density.ProgramBuilder(len(labels), len(parameter_names))

    def affine(angle):
        names = sorted(str(symbol) for symbol in angle.expression.free_symbols)
        return _density.affine_form(names, lambda values: float(angle.subs(dict(zip(names, values, strict=True)))), column, str(angle))

    for instruction in noisy.instructions:
        operator = instruction.operator
        qubits = tuple(index[int(q)] for q in reversed(list(instruction.target)))
        name = getattr(operator, "name", type(operator).__name__).lower()
        if isinstance(operator, CompilerDirective):
            continue  # verbatim boxes order nothing in a simulation
        if isinstance(operator, Measure):
            for qubit in qubits:
                builder.measure(qubit, qubit, None)  # Braket's readout error is a BitFlip noise instruction before it
            continue
        if isinstance(operator, Noise):
            if getattr(operator, "parameters", None) and any(_density._is_symbolic(p) for p in operator.parameters):
                raise _density.Unsupported(f"the noise {name} has free parameters")
            builder.channel(qubits, _density._superop([np.asarray(k, dtype=complex) for k in operator.to_matrix()]), name)
            continue
        if not isinstance(operator, Gate) or getattr(instruction, "control", None) or getattr(instruction, "power", 1) != 1:
            raise _density.Unsupported(f"{name} is not a gate the engine applies")
        angles = list(getattr(operator, "parameters", []) or [])
        if len(qubits) == 1:
            builder.one(qubits[0], name, angles, operator.to_matrix, affine)
            continue
        if any(_density._is_symbolic(a) for a in angles):
            raise _density.Unsupported(f"parameterised {name} (the engine binds rotations of one qubit only)")
        builder.channel(qubits, _density._unitary_superop(np.asarray(operator.to_matrix(), dtype=complex)), name)
    return builder.program(tuple((name, tuple(index[q] for q in bits)) for name, bits in registers))
