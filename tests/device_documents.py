"""A Braket QPU's device properties document, built from Braket's own schema classes.

Its numbers are made up for the tests, of the order IQM publishes for its
superconducting Garnet QPU (not read from AWS, which this machine cannot
reach): T1 40 us and T2 20 us on every qubit, single-qubit randomized
benchmarking fidelity 99.8 %, readout fidelity 95 %, CZ fidelity 98 % on each
coupled pair, native gates prx and cz, qubits labelled 1..N on a line. The
readout and CZ figures are a little worse than Garnet's, so that the
emulator's noise shows clearly on a few hundred shots.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

QUBITS = 6
T1_US, T2_US = 40.0, 20.0
RB_FIDELITY, READOUT_FIDELITY, CZ_FIDELITY = 0.998, 0.95, 0.98
CALIBRATED_AT = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)


def garnet_like(qubits: int = QUBITS, *, line: tuple[int, ...] | None = None, edges: list[tuple[int, int]] | None = None):
    """An IqmDeviceCapabilities document for a line of ``qubits`` qubits
    labelled 1..N, in the order ``line`` gives along the line (default 1, 2,
    ...), or coupled by ``edges`` instead of a line."""
    from braket.device_schema import DeviceActionType, DeviceConnectivity, DeviceServiceProperties
    from braket.device_schema.device_execution_window import DeviceExecutionWindow, ExecutionDay
    from braket.device_schema.device_service_properties_v1 import DeviceCost
    from braket.device_schema.gate_model_qpu_paradigm_properties_v1 import GateModelQpuParadigmProperties
    from braket.device_schema.iqm.iqm_device_capabilities_v1 import IqmDeviceCapabilities
    from braket.device_schema.openqasm_device_action_properties import OpenQASMDeviceActionProperties
    from braket.device_schema.openqasm_program_set_device_action_properties import OpenQASMProgramSetDeviceActionProperties
    from braket.device_schema.result_type import ResultType
    from braket.device_schema.standardized_gate_model_qpu_device_properties_v1 import (
        CoherenceTime,
        Fidelity1Q,
        FidelityType,
        GateFidelity2Q,
        OneQubitProperties,
        StandardizedGateModelQpuDeviceProperties,
        TwoQubitProperties,
    )

    labels = list(line) if line is not None else list(range(1, qubits + 1))
    assert sorted(labels) == list(range(1, qubits + 1))
    edges = list(edges) if edges is not None else list(itertools.pairwise(labels))
    one = {
        str(q): OneQubitProperties(
            T1=CoherenceTime(value=T1_US, standardError=None, unit="us"),
            T2=CoherenceTime(value=T2_US, standardError=None, unit="us"),
            oneQubitFidelity=[
                Fidelity1Q(fidelityType=FidelityType(name="RANDOMIZED_BENCHMARKING", description=None), fidelity=RB_FIDELITY),
                Fidelity1Q(fidelityType=FidelityType(name="READOUT", description=None), fidelity=READOUT_FIDELITY),
            ],
        )
        for q in labels
    }
    two = {
        f"{a}-{b}": TwoQubitProperties(
            twoQubitGateFidelity=[
                GateFidelity2Q(gateName="CZ", fidelity=CZ_FIDELITY, fidelityType=FidelityType(name="CLIFFORD_RANDOMIZED_BENCHMARKING", description=None))
            ]
        )
        for a, b in edges
    }
    return IqmDeviceCapabilities(
        service=DeviceServiceProperties(
            executionWindows=[DeviceExecutionWindow(executionDay=ExecutionDay.EVERYDAY, windowStartHour="00:00", windowEndHour="23:59:59")],
            shotsRange=(1, 20_000),
            deviceCost=DeviceCost(price=0.00145, unit="shot"),
            deviceDocumentation=None,
            deviceLocation="Espoo, Finland",
            updatedAt=CALIBRATED_AT,
            getTaskPollIntervalMillis=None,
        ),
        action={
            DeviceActionType.OPENQASM: OpenQASMDeviceActionProperties(
                version=["1"],
                actionType=DeviceActionType.OPENQASM,
                supportedOperations=["cz", "prx"],
                supportedResultTypes=[ResultType(name="Probability", observables=None, minShots=1, maxShots=20_000)],
                supportPhysicalQubits=True,
                supportedPragmas=["verbatim"],
                forbiddenPragmas=[],
                supportsPartialVerbatimBox=False,
                requiresContiguousQubitIndices=False,
                requiresAllQubitsMeasurement=False,
                supportsUnassignedMeasurements=True,
                disabledQubitRewiringSupported=True,
            ),
            DeviceActionType.OPENQASM_PROGRAM_SET: OpenQASMProgramSetDeviceActionProperties(
                version=["1"], actionType=DeviceActionType.OPENQASM_PROGRAM_SET, maximumExecutables=100, maximumTotalShots=200_000
            ),
        },
        paradigm=GateModelQpuParadigmProperties(
            qubitCount=qubits,
            nativeGateSet=["cz", "prx"],
            connectivity=DeviceConnectivity(fullyConnected=False, connectivityGraph=_graph(edges)),
        ),
        deviceParameters={},
        provider=None,
        standardized=StandardizedGateModelQpuDeviceProperties(oneQubitProperties=one, twoQubitProperties=two),
    )


def _graph(edges: list[tuple[int, int]]) -> dict[str, list[str]]:
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(str(a), []).append(str(b))
    return graph


def write_garnet_like(path: Path, *, name: str | None = "iqm_garnet") -> Path:
    """The document as a file, as `qhw runs show --properties-out` writes one."""
    from qhw.records import DEVICE_NAME_KEY

    data = json.loads(garnet_like().json())
    if name is not None:
        data[DEVICE_NAME_KEY] = {"name": name, "arn": "arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet"}
    path.write_text(json.dumps(data, indent=2))
    return path
