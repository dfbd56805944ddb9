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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from qhw.errors import ConfigError
from qhw.records import DEVICE_NAME_KEY, CalibrationSnapshot, PairCalibration, QubitCalibration



def load_properties(path: Path) -> tuple[Any, str]:
    """A Braket device properties document from a JSON file, and the device it describes.

    Raises:
        ConfigError: the file is missing, not JSON, or not a gate-model QPU's document.
    """
    from braket.device_schema import DeviceCapabilities
    from braket.schema_common import BraketSchemaBase

    try:
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
    named = data.get(DEVICE_NAME_KEY, {}) if isinstance(data, dict) else {}
    provider = properties.braketSchemaHeader.name.split(".")[2] if properties.braketSchemaHeader.name.count(".") >= 3 else "a"
    name = named.get("name") or f"the {provider} device of {path.name}"
    return properties, name


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


def calibration_snapshot(properties: Any, device: str, labels: Sequence[int]) -> CalibrationSnapshot:
    """The figures of the qubits (by device label) a run used, with the document itself.

    Braket publishes fidelities: errors are 1 - fidelity; the single-qubit
    gate error is 1 - the randomized-benchmarking fidelity.
    """
    standardized = getattr(properties, "standardized", None)
    one = getattr(standardized, "oneQubitProperties", None) or {}
    two = getattr(standardized, "twoQubitProperties", None) or {}
    used = {str(label) for label in labels}

    def microseconds(coherence) -> float | None:
        if coherence is None:
            return None
        scale = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}.get(str(coherence.unit).lower(), 1.0)
        return float(coherence.value) * scale

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
        updated = updated.astimezone(timezone.utc) if updated.tzinfo else updated.replace(tzinfo=timezone.utc)
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

    def run(self, circuit, *, shots: int):
        """Run one bound circuit with the device's noise (the emulator takes no program sets yet)."""
        if self._emulator is None:
            from braket.emulation.local_emulator import LocalEmulator

            self._emulator = LocalEmulator.from_device_properties(self.properties)
        return self._emulator.run(circuit, shots=shots).result()
