"""IBM devices' calibration and timing: the device graph packing reads, a
run's calibration snapshot, a shot's duration and rep_delay, and the noise
the density engine applies to a fake device (with the noise model it is
checked against)."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from qhw import circuits
from qhw.backend import ShotTiming
from qhw.backends._ibm_devices import properties_document
from qhw.packing import DeviceGraph
from qhw.records import CalibrationSnapshot, PairCalibration, QubitCalibration


def device_graph(target: Any) -> DeviceGraph:
    """A Qiskit target as the partition sees it: qubits, two-qubit couplers,
    readout and two-qubit gate errors, T1 and T2 (in microseconds)."""
    couplers: list[tuple[int, int]] = []
    gate_error: dict[tuple[int, int], float] = {}
    for operation in TWO_QUBIT_GATES:
        if operation not in target:
            continue
        for key, properties in target[operation].items():
            if key is None or len(key) != 2:
                continue
            couplers.append((int(key[0]), int(key[1])))
            if properties is not None and properties.error is not None:
                gate_error[(int(key[0]), int(key[1]))] = float(properties.error)
    readout = {}
    if "measure" in target:
        readout = {int(key[0]): float(p.error) for key, p in target["measure"].items() if key and p is not None and p.error is not None}
    qubit_properties = target.qubit_properties or []
    return DeviceGraph.of(
        range(target.num_qubits),
        couplers,
        readout_error=readout,
        gate_error=gate_error,
        t1_us={q: p.t1 * 1e6 for q, p in enumerate(qubit_properties) if p is not None and getattr(p, "t1", None)},
        t2_us={q: p.t2 * 1e6 for q, p in enumerate(qubit_properties) if p is not None and getattr(p, "t2", None)},
    )


def calibration_snapshot(name: str, device: Any, layout: Sequence[int]) -> CalibrationSnapshot:
    """The calibration of the qubits ``layout`` uses and of the pairs between them, from a Runtime device's target."""
    target = device.target
    qubits = [int(q) for q in layout]

    def error(operation: str, key: tuple[int, ...]) -> float | None:
        properties = target[operation].get(key) if operation in target else None
        return None if properties is None or properties.error is None else float(properties.error)

    def microseconds(value: float | None) -> float | None:
        return None if value is None else float(value) * 1e6

    qubit_properties = target.qubit_properties or []
    calibrated = [
        QubitCalibration(
            qubit=q,
            t1_us=microseconds(getattr(qubit_properties[q], "t1", None)) if q < len(qubit_properties) else None,
            t2_us=microseconds(getattr(qubit_properties[q], "t2", None)) if q < len(qubit_properties) else None,
            readout_error=error("measure", (q,)),
            gate_error=error("sx", (q,)),
        )
        for q in qubits
    ]
    pairs = [
        PairCalibration(qubits=(a, b), gate=operation, error=error(operation, (a, b)))
        for operation in TWO_QUBIT_GATES
        if operation in target
        for a, b in sorted(target[operation])
        if a in qubits and b in qubits
    ]
    return CalibrationSnapshot(device=name, calibrated_at=_last_calibration(device), qubits=tuple(calibrated), pairs=tuple(pairs))


@functools.lru_cache(maxsize=32)
def timing_of(device: Any, source: str) -> ShotTiming | None:
    from qiskit.transpiler import generate_preset_pass_manager

    from qhw.circuits import feature_map

    rep_delay = getattr(device, "default_rep_delay", None) or getattr(device.configuration(), "default_rep_delay", None)
    if rep_delay is None:
        return None
    circuit = generate_preset_pass_manager(optimization_level=1, target=device.target, seed_transpiler=0).run(feature_map())
    return ShotTiming(float(rep_delay), float(circuit.estimate_duration(device.target)), source)


@functools.lru_cache(maxsize=64)
def template_seconds(device: Any, template_qpy: bytes) -> float:
    """How long a template lasts, compiled for a device's target (its final measurement included)."""
    from qiskit.transpiler import generate_preset_pass_manager

    compiled = generate_preset_pass_manager(optimization_level=1, target=device.target, seed_transpiler=0).run(circuits.from_qpy(template_qpy))
    return float(compiled.estimate_duration(device.target))


def longest(operation: str, target: Any) -> float | None:
    """The longest duration the target gives ``operation`` on any qubit (None: none given)."""
    if operation not in target:
        return None
    durations = [p.duration for p in target[operation].values() if p is not None and p.duration is not None]
    return max(durations) if durations else None


def rep_delay_range(device: Any) -> tuple[float, float] | None:
    """The rep_delay range the device takes (its configuration's rep_delay_range, seconds)."""
    try:
        low, high = device.configuration().rep_delay_range
    except (AttributeError, TypeError, ValueError):
        return None
    return float(low), float(high)


def shot_timing(device: Any, source: str) -> ShotTiming | None:
    """The device's default rep_delay and the duration of the feature map
    compiled for its target (``QuantumCircuit.estimate_duration``, as IBM's
    guide to estimating usage does), in seconds; None without a rep_delay.
    Computed once a device (the transpilation takes a fraction of a second)."""
    return timing_of(device, source)


#: Two-qubit gates of IBM's devices (Heron: cz; Eagle: ecr; Falcon and the fakes: cx).
TWO_QUBIT_GATES = ("cz", "ecr", "cx")


def _last_calibration(device: Any) -> datetime | None:
    """When the device's calibration was taken, as IBM stamps it."""
    try:
        properties = device.properties()
    except Exception:  # a device without published properties
        return None
    stamp = getattr(properties, "last_update_date", None) if properties is not None else None
    if not isinstance(stamp, datetime):
        return None
    # IBM stamps in its local offset; qhw keeps UTC (SQLite would drop the offset).
    return stamp.astimezone(UTC) if stamp.tzinfo else stamp.replace(tzinfo=UTC)


@functools.cache
def device_noise_model(device: Any, instructions: frozenset[tuple[str, tuple[int, ...]]]) -> Any:
    """The noise model a fake device builds for itself, of ``instructions``
    (name, physical qubits) only.

    It is built as the fake device builds its whole model for Runtime's local
    mode (FakeBackendV2._get_noise_model_from_backend_v2: Aer's readout
    errors and its depolarizing and thermal-relaxation gate errors from the
    device's properties, at temperature 0), from the device's properties with
    only those gates and the measured qubits' readout: fake_fez's whole model
    (156 qubits, about 5,000 errors) takes tens of seconds to build, the 350
    instructions of a packed run a few. Delays' relaxation (Aer's pass) is
    left out: the noisy engine refuses circuits with delays. A test holds the channels equal to the whole model's.
    """
    from qiskit_aer.noise import NoiseModel
    from qiskit_aer.noise.device import basic_device_gate_errors, basic_device_readout_errors
    from qiskit_ibm_runtime.models import BackendProperties

    document = properties_document(device)
    document["gates"] = [gate for gate in document["gates"] if (gate["gate"], tuple(gate["qubits"])) in instructions]
    properties = BackendProperties.from_dict(document)
    model = NoiseModel(basis_gates=device.configuration().basis_gates)
    measured = {qubits for name, qubits in instructions if name == "measure"}
    for where, error in basic_device_readout_errors(properties):
        if tuple(where) in measured:
            model.add_readout_error(error, where, warnings=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, where, error in basic_device_gate_errors(properties, gate_error=True, thermal_relaxation=True, temperature=0):
            model.add_quantum_error(error, name, where, warnings=False)
    return model


@functools.lru_cache(maxsize=16)
def device_channels(device: Any, scale: float = 1.0, readout: float = 1.0) -> DeviceChannels:
    """The noisy engine's channels of a fake device (its gate errors times
    ``scale``, its readout errors times ``readout``: --noise), shared by every
    emulator of it in this process (a device's properties are read once)."""
    return DeviceChannels(device, scale, readout)


@functools.lru_cache(maxsize=8)
def scaled_noise_model(device: Any, instructions: frozenset[tuple[str, tuple[int, ...]]], scale: float = 1.0, readout: float = 1.0) -> Any:
    """The noise model of device_noise_model with every gate error's
    depolarizing parameter and relaxation time times ``scale`` and every
    readout error times ``readout`` (capped as probabilities are), built with
    Aer's own errors: what ``--engine aer`` runs a ``--noise`` run with, and
    what the tests hold the engine's scaled channels against. Kept for a
    run's jobs (building Aer's errors takes a second or more a packed run);
    a drifting run's jobs each have their own."""
    if scale == 1.0 and readout == 1.0:
        return device_noise_model(device, instructions)
    from qiskit.quantum_info import average_gate_fidelity
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error
    from qiskit_aer.noise.device.models import _device_thermal_relaxation_error
    from qiskit_aer.noise.device.parameters import gate_param_values, readout_error_values, thermal_relaxation_values

    properties = device.properties()
    relaxation = [(t1, t2, 0.0) for t1, t2, _ in thermal_relaxation_values(properties)]  # (frequency unused at temperature 0)
    model = NoiseModel(basis_gates=device.configuration().basis_gates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, qubits, length, error in gate_param_values(properties):
            qubits = tuple(qubits)
            if (name, qubits) not in instructions:
                continue
            # Aer's own relaxation of a device gate (temperature 0), for the gate's length and for scale times it.
            relax = _device_thermal_relaxation_error(qubits, length, relaxation, 0)
            scaled_relax = _device_thermal_relaxation_error(qubits, length * scale, relaxation, 0)
            fidelity = 1.0 if relax is None else average_gate_fidelity(relax)
            depolarizing = None
            dim = 2 ** len(qubits)
            if error is not None and error > 1 - fidelity:
                error = min(error, dim / (dim + 1))
                parameter = min(dim * (error - (1 - fidelity)) / (dim * fidelity - 1), 4 ** len(qubits) / (4 ** len(qubits) - 1))
                depolarizing = depolarizing_error(min(parameter * scale, 4 ** len(qubits) / (4 ** len(qubits) - 1)), len(qubits))
            combined = scaled_relax if depolarizing is None else (depolarizing if scaled_relax is None else depolarizing.compose(scaled_relax))
            if combined is not None:
                model.add_quantum_error(combined, name, qubits, warnings=False)
    for qubit, value in enumerate(readout_error_values(properties)):
        if value is None or ("measure", (qubit,)) not in instructions:
            continue
        p10, p01 = (min(1.0, float(v) * readout) for v in value)
        model.add_readout_error(ReadoutError([[1 - p10, p10], [p01, 1 - p01]]), [qubit], warnings=False)
    return model


class DeviceChannels:
    """A fake device's noise as the noisy engine applies it: the channels of
    the noise model the device builds for itself (device_noise_model, Aer's
    device model read from its properties at temperature 0), computed here as
    superoperators from the same figures with Aer's own rules.

    Why not Aer's objects: building them (QuantumError algebra, then a
    conversion to a channel) takes milliseconds an instruction, seconds for
    the 350 instructions of a packed fake_fez run in every worker process;
    the matrices themselves take microseconds. The figures are read with Aer's
    public readers (gate_param_values, thermal_relaxation_values,
    readout_error_values); the rules are those of
    qiskit_aer.noise.device.models (0.18): thermal relaxation for the gate's
    length on each of its qubits (T2 capped at 2 T1), then a depolarizing
    error whose parameter makes the gate's average infidelity the reported
    gate error (none when relaxation alone exceeds it), applied depolarizing
    first. A test holds every channel of fake_manila's model, and of a sample
    of fake_fez's, equal to Aer's to 1e-12.
    """

    def __init__(self, device: Any, scale: float = 1.0, readout: float = 1.0) -> None:
        from qiskit_aer.noise.device.parameters import gate_param_values, readout_error_values, thermal_relaxation_values

        self.scale, self.readout_scale = scale, readout
        properties = device.properties()
        self._gates = {(name, tuple(qubits)): (length, error) for name, qubits, length, error in gate_param_values(properties)}
        self._relaxation = thermal_relaxation_values(properties)  # (T1 ns, T2 ns, frequency) a qubit
        self._readout = readout_error_values(properties)  # [P(1 | 0), P(0 | 1)] a qubit, or None
        self._errors: dict = {}

    def error(self, name: str, qubits: tuple[int, ...]) -> np.ndarray | None:
        key = (name, qubits)
        if key not in self._errors:
            self._errors[key] = self._channel(name, qubits)
        return self._errors[key]

    def readout(self, qubit: int) -> np.ndarray | None:
        value = self._readout[qubit] if qubit < len(self._readout) else None
        if value is None or np.allclose(value, [0, 0]) or self.readout_scale == 0:
            return None
        value = [min(1.0, v * self.readout_scale) for v in value]
        # Aer's ReadoutError [[P(0|0), P(1|0)], [P(0|1), P(1|1)]], transposed: P[recorded, true].
        return np.array([[1 - value[0], value[0]], [value[1], 1 - value[1]]]).T

    def _channel(self, name: str, qubits: tuple[int, ...]) -> np.ndarray | None:
        from qhw.backends._density import depolarizing_superop, tensor_superops, thermal_relaxation_superop

        if (name, qubits) not in self._gates:
            return None
        length, error = self._gates[(name, qubits)]
        relaxation = None
        if length:
            ones, scaled = [], []
            for qubit in qubits:
                t1, t2, _ = self._relaxation[qubit]
                t1 = math.inf if t1 is None else t1
                t2 = 2 * t1 if t2 is None else min(t2, 2 * t1)
                ones.append(thermal_relaxation_superop(t1, t2, length))
                scaled.append(thermal_relaxation_superop(t1, t2, length * self.scale))
            relaxation = tensor_superops(ones)
        depolarizing = None
        dim = 2 ** len(qubits)
        fidelity = 1.0 if relaxation is None else (np.trace(relaxation).real / dim**2 * dim + 1) / (dim + 1)
        most = 4 ** len(qubits) / (4 ** len(qubits) - 1)
        if error is not None and error > 1 - fidelity:
            error = min(error, dim / (dim + 1))
            # The depolarizing part that makes the calibrated gate error, then (--noise scale) scaled.
            parameter = min(dim * (error - (1 - fidelity)) / (dim * fidelity - 1), most)
            depolarizing = depolarizing_superop(min(parameter * self.scale, most), len(qubits))
        if relaxation is not None and self.scale != 1.0:
            relaxation = tensor_superops(scaled)
        if depolarizing is not None and relaxation is not None:
            return relaxation @ depolarizing  # the depolarizing error first (Aer's depol.compose(relax))
        return depolarizing if depolarizing is not None else relaxation
