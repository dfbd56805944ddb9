"""Amazon Braket: local simulators, managed simulators, QPUs, and QPUs emulated locally.

Circuits are converted and targets built by qiskit-braket-provider
(``to_braket``, ``local_simulator_to_target``, ``aws_device_to_target``). Jobs
are Braket *program sets*: one task carries up to the device's
``maximumExecutables`` parameter sets of the one transpiled circuit, so N
samples cost about N/100 tasks. qhw builds the program set itself, rather than
through the provider's BraketSampler, so that a later process can rebuild the
counts from nothing but the stored task ARN.

``braket_emulator:<FILE.json>`` runs Braket's own LocalEmulator on a device
properties document (for instance one stored with a run, exported by
``qhw runs show ID --properties-out FILE.json``): the device's native gates,
connectivity and noise, locally and for free.

Idempotency: a task is created with the qhw job's key as its ``clientToken``
(see :mod:`qhw.backends._braket_aws`), so a repeated create returns the first
task, and carries the key as the ``qhw-key`` tag, by which a later process
finds it with SearchQuantumTasks.

Qubits are named by the device's own labels everywhere (IQM numbers its
qubits from 1): the run's layout, its calibration snapshot, and the reading of
results. Results are read by :mod:`qhw.backends._braket_results`: each
executable by its ``inputsIndex``, each measurement column by
``measuredQubits``; classical bit j is the qubit the program measured into
``b[j]``, and qhw's canonical index is sum(bit_j << j).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qhw import circuits
from qhw.backend import (
    LOCAL_SHOTS_PER_JOB,
    Backend,
    BackendEntry,
    BackendLimits,
    DeviceProfile,
    Executable,
    JobResult,
    JobStatus,
    LocalBackend,
    OneEngine,
    PublishedPrice,
    RemoteBackend,
)
from qhw.backends import _braket_aws as aws
from qhw.backends._added_noise import braket_with_added_noise, graph_facts
from qhw.backends._braket_aws import client_token, current_client_token  # noqa: F401 (part of this module's surface)
from qhw.backends._braket_devices import EmulatedDevice, calibration_snapshot, device_graph, load_properties
from qhw.backends._braket_results import TaskOutcome, counts_of, read_task_result, reported_usage
from qhw.backends._engines import DensityEmulation
from qhw.circuits import copy_register
from qhw.device_mitigation import DeviceMitigation
from qhw.errors import BackendError, ConfigError, CredentialsError, JobFailedError, ParameterError, ResultMappingError
from qhw.jobstates import JobState
from qhw.noise import AUTO, NoiseSpec
from qhw.packing import DeviceGraph
from qhw.pricing import CostEstimate, PriceTable
from qhw.records import CalibrationSnapshot, JobUsage, ProviderUsage

if TYPE_CHECKING:
    from qhw.store.artifacts import ArtifactStore

ARN_PREFIX = "braket:"
EMULATOR_PREFIX = "braket_emulator:"
LOCAL_SIMULATORS = {"braket_local": "braket_sv", "braket_dm": "braket_dm"}
#: Circuits in one job of the emulator, which runs them one by one.
EMULATOR_CIRCUITS_PER_JOB = 100
#: Program-set size assumed before the device's own properties are read.
DEFAULT_MAX_EXECUTABLES = 100
DEFAULT_MAX_SHOTS = 100_000
#: Amazon Braket's list prices (see qhw.pricing): every task (a program set
#: counts as one) plus every shot on a QPU; managed simulators by the minute.
PRICES = {
    "braket_per_task_usd": 0.30,
    "braket_per_shot_usd": {"ionq_forte": 0.08, "ionq_aria": 0.03, "iqm_garnet": 0.00145, "rigetti_ankaa": 0.0009},
    "braket_simulator_usd_per_minute": {"braket_sv1": 0.075, "braket_dm1": 0.075},
    "braket_simulator_min_seconds": 3.0,
    # A rough simulation time per shot for a 5-qubit circuit; it lifts the
    # estimate above the 3 s floor only for very large tasks.
    "braket_simulator_seconds_per_shot": 0.0001,
}


@dataclass(frozen=True)
class RemoteDevice:
    arn: str
    kind: str  # "managed simulator" or "hardware"
    qubits: int  # as published; the device's properties are checked before submitting


REMOTE_DEVICES = {
    "braket_sv1": RemoteDevice("arn:aws:braket:::device/quantum-simulator/amazon/sv1", "managed simulator", 34),
    "braket_dm1": RemoteDevice("arn:aws:braket:::device/quantum-simulator/amazon/dm1", "managed simulator", 17),
    "ionq_forte": RemoteDevice("arn:aws:braket:us-east-1::device/qpu/ionq/Forte-1", "hardware", 36),
    "ionq_aria": RemoteDevice("arn:aws:braket:us-east-1::device/qpu/ionq/Aria-1", "hardware", 25),
    "iqm_garnet": RemoteDevice("arn:aws:braket:eu-north-1::device/qpu/iqm/Garnet", "hardware", 20),
    "rigetti_ankaa": RemoteDevice("arn:aws:braket:us-west-1::device/qpu/rigetti/Ankaa-3", "hardware", 82),
}

#: Braket task states -> qhw states.
BRAKET_TO_STATE = {
    "CREATED": JobState.QUEUED,
    "QUEUED": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "CANCELLING": JobState.RUNNING,
    "COMPLETED": JobState.DONE,
    "FAILED": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
}


#: Where a device's own published price comes from (DeviceServiceProperties.deviceCost).
DEVICE_PRICE_SOURCE = "the device's own properties document (service.deviceCost)"


#: The qubits of Braket's local simulators (their properties' qubitCount),
#: listed without importing the simulators; a test holds them to the library's.
LOCAL_SIMULATOR_QUBITS = {"braket_local": 26, "braket_dm": 13}


def backend_names() -> list[str]:
    return [*LOCAL_SIMULATORS, *REMOTE_DEVICES]


def catalogue() -> list[BackendEntry]:
    """Braket's backends for ``qhw backends``, without building any."""
    configured = credentials_configured()
    rows = [BackendEntry(name, "braket", "simulator", LOCAL_SIMULATOR_QUBITS[name], False, None) for name in LOCAL_SIMULATORS]
    rows += [BackendEntry(name, "braket", device.kind, device.qubits, True, configured) for name, device in REMOTE_DEVICES.items()]
    return rows


def create(name: str, *, seed: int | None = None, artifacts: ArtifactStore | None = None) -> Backend | None:
    if name in LOCAL_SIMULATORS:
        # Braket's local simulators take no seed: their shots differ run to run.
        return BraketLocalSimulator(name)
    if name.startswith(EMULATOR_PREFIX):
        document = name[len(EMULATOR_PREFIX) :]
        if not document:
            raise ConfigError(f"{EMULATOR_PREFIX}<FILE.json> needs a Braket device properties file")
        from qhw.store.artifacts import is_reference

        if is_reference(document):  # a run's document, in the team's artifact store
            if artifacts is None:
                raise ConfigError(f"{EMULATOR_PREFIX}{document[:19]}... names a document of an artifact store, and none was given")
            return BraketEmulator(name, artifacts.local_file(document, f"the device document of {EMULATOR_PREFIX}{document[:19]}..."))
        return BraketEmulator(name, Path(document).expanduser())
    if name in REMOTE_DEVICES:
        device = REMOTE_DEVICES[name]
        return BraketRemote(name, kind=device.kind, arn=device.arn, published_qubits=device.qubits)
    if name.startswith(ARN_PREFIX):
        arn = name[len(ARN_PREFIX) :]
        if not arn.startswith("arn:aws:braket:") or ":device/" not in arn:
            raise ConfigError(f"{name!r} does not hold a Braket device ARN (arn:aws:braket:<region>::device/...)")
        kind = "managed simulator" if "/quantum-simulator/" in arn else "hardware"
        return BraketRemote(name, kind=kind, arn=arn, published_qubits=0)
    return None


def credentials_configured() -> bool:
    """Whether the standard AWS chain (environment or profile files) holds credentials."""
    import boto3

    # Never let a listing wait on the EC2 instance-metadata endpoint; restore
    # the setting after, so that real submissions can still use an instance role.
    before = os.environ.get("AWS_EC2_METADATA_DISABLED")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    try:
        return boto3.Session().get_credentials() is not None
    finally:
        if before is None:
            del os.environ["AWS_EC2_METADATA_DISABLED"]
        else:
            os.environ["AWS_EC2_METADATA_DISABLED"] = before


class _BraketDevice:
    """What Braket's devices share: a target built by qiskit-braket-provider
    from the device's properties, qubits named by the device's own labels, and
    circuits converted with ``to_braket``."""

    provider = "braket"

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self._device: Any = None
        self._target = None
        self._labels: tuple[int, ...] | None = None
        self._converted: circuits.PerCircuit[Any] = circuits.PerCircuit()

    def _load_device(self) -> Any:
        raise NotImplementedError

    def _profile_limits(self, properties: Any) -> BackendLimits:
        return _limits_from(properties)

    def _profile(
        self, *, live: bool, graph: bool, unavailable: str | None = None, published: PublishedPrice | None = None, mid_circuit: bool = False
    ) -> DeviceProfile:
        properties = self._load_device().properties
        # A QPU's couplers, where its document has them (a simulator's paradigm has no connectivity).
        coupled = graph and hasattr(properties.paradigm, "connectivity")
        return DeviceProfile(
            self.name, int(properties.paradigm.qubitCount), self._profile_limits(properties),
            device_graph(properties) if coupled else None, live=live, unavailable=unavailable, published_price=published,
            mid_circuit_reset=mid_circuit,
        )

    def _qiskit_target(self):
        if self._target is None:
            from qiskit_braket_provider.providers.target import aws_device_to_target, local_simulator_to_target

            device = self._load_device()
            simulator = isinstance(self, BraketLocalSimulator)
            self._target = local_simulator_to_target(device) if simulator else aws_device_to_target(device)
            topology = getattr(device, "topology_graph", None)
            # Target qubit i is the device's qubit labels[i] (what to_braket writes as $label).
            self._labels = tuple(sorted(topology.nodes)) if topology is not None and not simulator else None
        return self._target

    def _label(self, index: int) -> int:
        """The device's own label of the target's qubit ``index``."""
        return int(self._labels[index]) if self._labels else int(index)

    def _index(self, label: int) -> int:
        """The target's qubit index of the device's qubit ``label``."""
        if not self._labels:
            return int(label)
        if label not in self._labels:
            raise ConfigError(f"{self.name} has no qubit {label} (its qubits: {', '.join(map(str, self._labels))})")
        return self._labels.index(label)

    def transpile(self, template, *, seed: int | None = None, initial_layout: Sequence[int] | None = None) -> Executable:
        """Compile for the device's target; the layout (and ``initial_layout``)
        name physical qubits by the device's own labels."""
        from qiskit.transpiler import generate_preset_pass_manager

        target = self._qiskit_target()
        level = 3 if self.kind in ("hardware", "emulation") else 1
        indices = None if initial_layout is None else [self._index(label) for label in initial_layout]
        manager = generate_preset_pass_manager(optimization_level=level, target=target, seed_transpiler=seed, initial_layout=indices)
        # A circuit the target cannot express raises TranspilerError, which the
        # run turns into one line for every adapter (qhw.executables).
        circuit = manager.run(template)
        layout = circuit.layout.final_index_layout()[: template.num_qubits] if circuit.layout else range(template.num_qubits)
        return Executable(circuit=circuit, layout=tuple(self._label(q) for q in layout))

    def calibration(self, layout: Sequence[int]) -> CalibrationSnapshot | None:
        """A QPU's (or an emulated one's) document as returned, and the figures
        of the qubits (by the device's labels) the run used; simulators have none."""
        if self.kind not in ("hardware", "emulation"):
            return None
        return calibration_snapshot(self._load_device().properties, self._device_name(), list(layout))

    def _device_name(self) -> str:
        return self.name

    def _measured(self, executable: Executable) -> list[list[int]]:
        """For each slot, the device qubit (by its label) measured into each
        classical bit of its register, in bit order: what a result's
        measuredQubits are read by."""
        self._qiskit_target()
        circuit = executable.circuit
        by_copy = []
        for slot in range(executable.slots):
            name = copy_register(slot)
            register = next((r for r in circuit.cregs if r.name == name), None)
            if register is None:
                raise ResultMappingError(f"the circuit has no classical register {name!r}")
            measured: dict[int, int] = {}
            for instruction in circuit.data:
                if instruction.operation.name != "measure":
                    continue
                places = [i for reg, i in circuit.find_bit(instruction.clbits[0]).registers if reg.name == name]
                if places:
                    measured[places[0]] = self._label(circuit.find_bit(instruction.qubits[0]).index)
            if sorted(measured) != list(range(register.size)):
                raise ResultMappingError(f"the circuit measures bits {sorted(measured)} of its {register.size}-bit register {name!r}")
            by_copy.append([measured[j] for j in range(register.size)])
        return by_copy

    def _braket_circuit(self, executable: Executable):
        def translated():
            from qiskit_braket_provider.providers.adapter import to_braket

            # Already transpiled for this target: translate only, keep the layout.
            with warnings.catch_warnings():
                # A global phase changes no measured probability; devices drop it.
                warnings.filterwarnings("ignore", message="Device does not support global phase")
                return to_braket(executable.circuit, target=self._qiskit_target(), qubit_labels=self._labels, optimization_level=0)

        return self._converted.get(executable.circuit, translated)

    def _program(self, executable: Executable, parameter_values: np.ndarray, shots: int, max_circuits_per_job: int | None):
        """The job as Braket takes it: a program set of the circuit bound to
        every row, or (a device without program sets) one bound circuit; and its run options."""
        from braket.program_sets import CircuitBinding, ParameterSets, ProgramSet
        from qiskit_braket_provider.providers.adapter import rename_parameter

        circuit = self._braket_circuit(executable)
        names = [rename_parameter(p) for p in executable.circuit.parameters]
        if max_circuits_per_job == 1 and len(parameter_values) == 1:
            return circuit, {"shots": shots, "inputs": dict(zip(names, map(float, parameter_values[0]), strict=True))}
        inputs = ParameterSets({name: parameter_values[:, j].tolist() for j, name in enumerate(names)})
        return ProgramSet([CircuitBinding(circuit, input_sets=inputs)], shots_per_executable=shots), {"shots": None}


class _BraketLocal(OneEngine, _BraketDevice, LocalBackend):
    """Braket's simulators and emulator, run in this process (LocalBackends)."""

    is_local = True
    is_paid = False
    credentials_configured = None
    runs_copies_in_one_job = False

    def shot_timing(self, profile: DeviceProfile, template, reuse: int = 1, rep_delay: float | None = None) -> None:
        return None  # Braket's devices bill by task and shot, not by time

    def check_credentials(self) -> None:
        pass  # none needed

    def use_threads(self, threads: int | None) -> None:
        pass  # Braket's local simulators run in NumPy, on one thread

    def _profile_limits(self, properties: Any) -> BackendLimits:
        # Braket's local results keep each shot as a row of Python ints
        # (measured: about 500 bytes a shot at a million), twice what Aer
        # keeps: half the shots a job keep the same memory bound.
        return _limits_from(properties).capped(LOCAL_SHOTS_PER_JOB // 2)


class BraketLocalSimulator(_BraketLocal):
    """``braket_local`` and ``braket_dm``: Braket's local state-vector and
    density-matrix simulators. Without a noise model, braket_dm is as ideal as
    braket_local: a simulator."""

    def __init__(self, name: str) -> None:
        super().__init__(name, "simulator")
        self._simulator_name = LOCAL_SIMULATORS[name]
        self._simulator = _braket_simulator(self._simulator_name)
        self.num_qubits = int(self._load_device().properties.paradigm.qubitCount)

    @property
    def description(self) -> str:
        kind = "density-matrix" if self._simulator_name == "braket_dm" else "state-vector"
        return f"Amazon Braket's local {kind} simulator, ideal (no noise)"

    def _load_device(self) -> Any:
        if self._device is None:
            from braket.devices import LocalSimulator

            self._device = LocalSimulator(self._simulator_name)
        return self._device

    def profile(self, *, offline: bool = False, document: str | None = None) -> DeviceProfile:
        # Reused positions run here each alone (exact on an ideal simulator), never mid-circuit.
        return self._profile(live=True, graph=False, mid_circuit=True)

    def run(self, executable: Executable, parameter_values: np.ndarray, shots: int, *, seed: int | None = None) -> JobResult:
        from braket.circuits.serialization import IRType
        from braket.ir.openqasm import Program

        limits = self.profile().limits
        program, options = self._program(executable, parameter_values, shots, limits.max_circuits_per_job)
        try:
            if options.get("inputs") is not None:
                payload = Program(source=program.to_ir(ir_type=IRType.OPENQASM).source, inputs=options["inputs"])
                total = options["shots"]
            else:
                payload, total = program.to_ir(), program.total_shots
            with warnings.catch_warnings():
                # braket_dm warns that a noise-free circuit would be faster on the
                # state vector; the user chose the density-matrix simulator on purpose.
                warnings.filterwarnings("ignore", message="You are running a noise-free circuit")
                document = self._simulator.run(payload, shots=total).dict()
        except Exception as err:  # the simulator's refusal is this job's failure
            raise JobFailedError(f"{self.name} failed the job: {err}") from err
        executions = len(parameter_values)
        outcome = read_task_result(document, executions=executions, measured=self._measured(executable), shots=shots)
        return JobResult(outcome.counts.reshape(executions * executable.slots, -1), outcome.failed)


class BraketEmulator(DensityEmulation, _BraketLocal):
    """``braket_emulator:<FILE.json>``: a device properties document's gates,
    connectivity and noise, locally. The noise is Braket's own LocalEmulator
    model of the document (one-qubit depolarizing from RB fidelities, bit
    flips from readout fidelities, two-qubit depolarizing on native gates),
    written into the circuit by Braket; qhw's noisy engine computes it by
    default, and ``--engine braket`` runs LocalEmulator itself (the
    density-matrix simulator, one bound circuit at a time)."""

    fallback = "braket"
    fallback_label = "Braket's LocalEmulator"

    def __init__(self, name: str, path: Path) -> None:
        super().__init__(name, "emulation")
        self._path = path
        self._emulates: str | None = None  # the device the document describes
        self.num_qubits = int(self._load_device().properties.paradigm.qubitCount)  # the document is read (and checked) now

    @property
    def description(self) -> str:
        self._load_device()
        return f"emulation of {self._emulates} (Braket's LocalEmulator with the noise of its device properties)"

    def _device_name(self) -> str:
        self._load_device()
        return self._emulates or self.name

    def _load_device(self) -> Any:
        if self._device is None:
            properties, self._emulates = load_properties(self._path)
            self._device = EmulatedDevice(properties, self._emulates)
        return self._device

    def _profile_limits(self, properties: Any) -> BackendLimits:
        # LocalEmulator runs bound circuits one by one: no program sets.
        limits = super()._profile_limits(properties)
        return BackendLimits(max_shots=limits.max_shots, min_shots=limits.min_shots, max_circuits_per_job=EMULATOR_CIRCUITS_PER_JOB)

    def shared(self, artifacts: ArtifactStore) -> BraketEmulator:
        """The same emulator, named by its document's object in ``artifacts``
        (``braket_emulator:sha256:...``): what a run records, so that its
        jobs run, and it is collected or retried, on any machine or Dask worker
        of the team, with no file at the same path."""
        from qhw.store.artifacts import is_reference

        if is_reference(self.name[len(EMULATOR_PREFIX) :]):
            return self
        reference = artifacts.put_file(self._path, f"the device document {self._path}")
        return BraketEmulator(EMULATOR_PREFIX + reference, self._path)

    def profile(self, *, offline: bool = False, document: str | None = None) -> DeviceProfile:
        self._load_device().emulator()  # Braket's own verdict on the document, before anything is written
        return self._profile(live=True, graph=True)

    def _compile(self, executable: Executable):
        from qiskit_braket_provider.providers.adapter import rename_parameter

        from qhw.backends._braket_devices import engine_program

        try:
            noisy = self._noisy(executable)
        except ValueError as err:  # Braket's passes refuse the circuit: its own path will say so in the job
            from qhw.backends._density import Unsupported

            raise Unsupported(f"Braket's emulator refuses it: {err}") from err
        names = [rename_parameter(p) for p in executable.circuit.parameters]
        registers = [(copy_register(slot), qubits) for slot, qubits in enumerate(self._measured(executable))]
        program = engine_program(noisy, names, registers)
        program.one_job = executable.noise is not None and executable.noise.drift > 0  # each job its own channels (its drift)
        return program

    takes_noise = True

    def check_noise(self, noise: NoiseSpec) -> None:
        if noise.prep == AUTO:
            raise ParameterError("noise", "prep=auto reads an IBM device's rep_delay, and a Braket device has none: give prep=P")
        noise.check_qubits(self._device_graph().qubits, self.name)

    def _device_graph(self) -> DeviceGraph:
        """Its qubits and couplers by the document (none given: its qubits, no couplers)."""
        graph = self._profile(live=True, graph=True).graph
        return graph if graph is not None else DeviceGraph.of(range(self.num_qubits), [])

    def _noisy(self, executable: Executable) -> Any:
        """The circuit as Braket's emulator runs it (its passes, its noise
        model written in), with what --noise adds (backends/_added_noise.py)."""
        noisy = self._load_device().noisy(self._braket_circuit(executable))
        if executable.noise is None:
            return noisy
        facts = graph_facts(self._device_graph(), None)
        copies = [executable.copy_layout(c) for c in range(executable.copies)]  # (by the device's labels)
        return braket_with_added_noise(noisy, executable.noise, facts, copies)

    def run(self, executable: Executable, parameter_values: np.ndarray, shots: int, *, seed: int | None = None) -> JobResult:
        from qiskit_braket_provider.providers.adapter import rename_parameter

        if executable.engine != self.fallback:
            return self._engine_counts(executable, parameter_values, shots, seed)
        names = [rename_parameter(p) for p in executable.circuit.parameters]
        if executable.noise is None:
            circuit, device = self._braket_circuit(executable), self._load_device()
        else:
            # The emulator's own noisy circuit with --noise's channels, run as LocalEmulator runs it: on Braket's density-matrix simulator.
            circuit, device = self._noisy(executable), _DensityMatrixDevice()
        results = [device.run(circuit.make_bound_circuit(dict(zip(names, map(float, row), strict=True))), shots=shots) for row in parameter_values]
        executions = len(parameter_values)
        if len(results) != executions:
            raise ResultMappingError(f"{self.name} gave {len(results)} results for {executions} executions")
        measured = self._measured(executable)
        entries = [{"measurements": r.measurements, "measuredQubits": list(r.measured_qubits)} for r in results]
        rows = np.array([counts_of(entry, measured, shots, f"execution {i}") for i, entry in enumerate(entries)])
        return JobResult(rows.reshape(executions * executable.slots, -1))


class _DensityMatrixDevice:
    """Braket's local density-matrix simulator, run as EmulatedDevice.run runs a circuit (one bound circuit, its result)."""

    def run(self, circuit: Any, *, shots: int) -> Any:
        from braket.devices import LocalSimulator

        return LocalSimulator("braket_dm").run(circuit, shots=shots).result()


class BraketRemote(_BraketDevice, RemoteBackend):
    """A QPU or managed simulator of Amazon Braket (a RemoteBackend), contacted
    only when a run needs it."""

    is_local = False
    is_paid = True
    #: CreateQuantumTask is idempotent under the job's clientToken, so a lookup
    #: by tag is a second line of defence: no grace period is needed.
    listing_grace_seconds = 0.0
    takes_device_mitigation = False

    def __init__(self, name: str, *, kind: str, arn: str, published_qubits: int) -> None:
        super().__init__(name, kind)
        self._arn = arn
        self._session: Any = None
        self._outcomes: dict[str, TaskOutcome] = {}  # read results, for their usage
        self._finished: dict[str, dict] = {}  # GetQuantumTask of tasks in a final state
        self.num_qubits = published_qubits

    @property
    def credentials_configured(self) -> bool:
        return credentials_configured()

    @property
    def description(self) -> str:
        if self.kind == "managed simulator":
            return f"Amazon Braket managed simulator {self.name} ({self._arn})"
        return f"{self.name} (Amazon Braket QPU, {self._arn})"

    def check_credentials(self) -> None:
        if not credentials_configured():
            raise CredentialsError(aws.NO_CREDENTIALS)

    def _aws(self) -> Any:
        if self._session is None:
            self._session = aws.provider_call(lambda: aws.aws_session(aws.region_of(self._arn)), f"connecting to {self.name}")
        return self._session

    def _load_device(self) -> Any:
        if self._device is None:
            from braket.aws import AwsDevice

            session = self._aws()
            self._device = aws.provider_call(lambda: AwsDevice(self._arn, aws_session=session), f"reading device {self._arn}")
        return self._device

    def profile(self, *, offline: bool = False, document: str | None = None) -> DeviceProfile:
        """Live: the device's properties and status, read now. Offline (AWS
        ships no snapshot): the default limits, the qubits Braket publishes,
        and a QPU's couplers from ``document``, a device document kept with an
        earlier run, when there is one."""
        if offline and self._device is None:
            graph = None if document is None or self.kind != "hardware" else _graph_of_document(document)
            limits = BackendLimits(max_shots=DEFAULT_MAX_SHOTS, max_circuits_per_job=DEFAULT_MAX_EXECUTABLES)
            return DeviceProfile(self.name, self.num_qubits, limits, graph)
        device = self._load_device()
        status = getattr(device, "status", "ONLINE")
        unavailable = None if status == "ONLINE" else f"{self.name} is {status}, not ONLINE"
        return self._profile(live=True, graph=self.kind == "hardware", unavailable=unavailable, published=self._published_price())

    def _published_price(self) -> PublishedPrice | None:
        """The device's own price (``service.deviceCost``: per shot on a QPU,
        per minute on a managed simulator), where its unit is the one qhw prices by."""
        cost = getattr(getattr(self._load_device().properties, "service", None), "deviceCost", None)
        unit = str(getattr(cost, "unit", "")).lower()
        key = {"hardware": ("braket_per_shot_usd", "shot"), "managed simulator": ("braket_simulator_usd_per_minute", "minute")}.get(self.kind)
        if cost is None or key is None or unit != key[1]:
            return None
        return PublishedPrice(key[0], self._price_key(), float(cost.price), DEVICE_PRICE_SOURCE)

    def batch(self, n_jobs: int) -> AbstractContextManager[None]:
        return nullcontext()  # no provider sessions here

    def submit(
        self,
        executable: Executable,
        parameter_values: np.ndarray,
        shots: int,
        tags: Sequence[str],
        *,
        seed: int | None = None,
        idempotency_key: str | None = None,
        rep_delay: float | None = None,
        device_mitigation: DeviceMitigation | None = None,
    ) -> str:
        if device_mitigation is not None:  # (refused at submit: Braket's devices take no such options)
            raise ConfigError(f"{self.name} applies no provider mitigation ({device_mitigation.text()})")
        device = self._load_device()
        program, run_options = self._program(executable, parameter_values, shots, _limits_from(device.properties).max_circuits_per_job)
        task_tags = {name: value for name, _, value in map(lambda tag: tag.partition("="), tags)}  # "name=value", or a bare name with ""
        with aws.client_token(idempotency_key):
            task = aws.provider_call(lambda: device.run(program, tags=task_tags, **run_options), f"submitting to {self.name}")
        return task.id

    def find_job(self, idempotency_key: str, since: datetime) -> str | None:
        session = self._aws()
        tasks = aws.provider_call(lambda: aws.search_tasks(session, self._arn, since), f"searching the tasks of {self.name}")
        mine = sorted(
            (task for task in tasks if (task.get("tags") or {}).get("qhw-key") == idempotency_key),
            key=lambda task: str(task.get("createdAt", "")),
        )
        return mine[0]["quantumTaskArn"] if mine else None

    def status(self, job_id: str) -> JobStatus:
        task = self._get_task(job_id)
        state = BRAKET_TO_STATE.get(str(task.get("status", "")).upper(), JobState.RUNNING)
        if state is JobState.FAILED:
            # A failed program set may hold the results of the executables that
            # ran; unless AWS says the task was no program set, qhw looks.
            return JobStatus(state, error=_failure_reason(task), results_available=aws.is_program_set(task) is not False)
        return JobStatus(state)

    def result(self, job_id: str, *, executable: Executable, executions: int, shots: int) -> JobResult:
        measured = self._measured(executable)
        session = self._aws()
        task = self._get_task(job_id)
        text = self._ask(lambda: aws.read_object(session, task["outputS3Bucket"], f"{task['outputS3Directory']}/{aws.RESULTS_FILE}"), job_id)
        if text is None:
            if task.get("status") in ("FAILED", "CANCELLED"):
                raise JobFailedError(_failure_reason(task))
            raise BackendError(f"{self.name} task {job_id} is {task.get('status')} but its results are not in S3 yet")
        outcome = read_task_result(text, executions=executions, measured=measured, shots=shots, fetch=self._fetcher(job_id))
        self._outcomes[job_id] = outcome
        # A packed program's row holds each copy's counts in turn: a row a copy.
        return JobResult(outcome.counts.reshape(executions * executable.slots, -1), outcome.failed)

    def cancel(self, job_id: str) -> None:
        session = self._aws()
        try:
            self._ask(lambda: aws.cancel_task(session, job_id), job_id)
        except BackendError as err:
            if aws.error_code(err.__cause__) != "ConflictException":
                raise
            # The task is already final; its state says how it ended.

    def usage(self, job_id: str) -> ProviderUsage:
        """What Braket reports of a finished task: its final state, the shots
        that ran (program sets count them) and a managed simulator's execution
        time, summed over the task's programs."""
        task = self._get_task(job_id)
        outcome = self._outcomes.get(job_id)
        shots, duration = (outcome.successful_shots, outcome.duration_seconds) if outcome else (None, None)
        if outcome is None and task.get("status") == "COMPLETED" and self.kind == "managed simulator":
            session = self._aws()
            text = self._ask(lambda: aws.read_object(session, task["outputS3Bucket"], f"{task['outputS3Directory']}/{aws.RESULTS_FILE}"), job_id)
            if text is not None:
                shots, duration = reported_usage(text, fetch=self._fetcher(job_id))
        if shots is None and task.get("numSuccessfulShots") is not None:
            shots = int(task["numSuccessfulShots"])
        return ProviderUsage(shots=shots, duration_seconds=duration, provider_state=task.get("status"))

    def shot_timing(self, profile: DeviceProfile, template, reuse: int = 1, rep_delay: float | None = None) -> None:
        return None  # Braket bills by task and shot, not by time

    def estimate_cost(
        self, profile: DeviceProfile, job_sizes: Sequence[int], shots: int, prices: PriceTable, timing=None
    ) -> CostEstimate | None:
        tasks, total_shots = len(job_sizes), sum(job_sizes) * shots
        key = self._price_key()
        if self.kind == "managed simulator":
            per_minute = prices.by_device("braket_simulator_usd_per_minute").get(key)
            if per_minute is None:
                return None
            minimum = prices["braket_simulator_min_seconds"]
            seconds = tasks * max(minimum, total_shots / max(tasks, 1) * prices["braket_simulator_seconds_per_shot"])
            detail = f"{tasks} task(s), about {seconds:,.0f} s billed at ${per_minute}/min (min {minimum:g} s a task)"
            return CostEstimate(seconds / 60 * per_minute, detail, prices.taken)
        per_shot = prices.by_device("braket_per_shot_usd").get(key)
        if per_shot is None:
            return None
        per_task = prices["braket_per_task_usd"]
        detail = f"{tasks} task(s) x ${per_task} + {total_shots:,} shots x ${per_shot}"
        return CostEstimate(tasks * per_task + total_shots * per_shot, detail, prices.taken)

    def job_cost(self, job: JobUsage, prices: PriceTable) -> float | None:
        """A task's cost, as Braket's own cost tracker prices it (braket.tracking):
        nothing for a task that failed or was cancelled (even a program set that
        returned the results of some executables); a QPU task's fee plus the
        shots that ran (``successfulShots``: a failed executable's shots are
        not counted); a managed simulator's execution time, at least 3 s a
        task, by the minute (unknown when its result reports no time)."""
        if job.state is JobState.CANCELLED or job.reported.provider_state in ("FAILED", "CANCELLED"):
            return 0.0
        if job.state is JobState.FAILED and job.reported.provider_state is None:
            return 0.0  # refused, or failed before the provider ran anything
        key = self._price_key()
        if self.kind == "managed simulator":
            per_minute = prices.by_device("braket_simulator_usd_per_minute").get(key)
            seconds = job.reported.duration_seconds
            if per_minute is None or seconds is None:
                return None
            return max(seconds, prices["braket_simulator_min_seconds"]) / 60 * per_minute
        per_shot = prices.by_device("braket_per_shot_usd").get(key)
        if per_shot is None:
            return None
        shots = job.reported.shots if job.reported.shots is not None else job.executions * job.shots
        return prices["braket_per_task_usd"] + shots * per_shot

    def allowance(self) -> None:
        return None  # Braket bills a card; no plan allowance to read

    def _price_key(self) -> str:
        if self.name in REMOTE_DEVICES:
            return self.name
        return next((alias for alias, d in REMOTE_DEVICES.items() if d.arn == self._arn), self.name)

    def _get_task(self, job_id: str) -> dict:
        """GetQuantumTask (kept once the task is final: it changes no more)."""
        if job_id in self._finished:
            return self._finished[job_id]
        session = self._aws()
        task = self._ask(lambda: aws.get_task(session, job_id), job_id)
        if task.get("status") in ("COMPLETED", "FAILED", "CANCELLED"):
            self._finished[job_id] = task
        return task

    def _fetcher(self, job_id: str) -> Callable[[str, str], str]:
        """Reads the documents a task's result points at in S3."""
        session = self._aws()

        def fetch(bucket: str, key: str) -> str:
            text = self._ask(lambda: aws.read_object(session, bucket, key), job_id)
            if text is None:
                raise ResultMappingError(f"the result points at s3://{bucket}/{key}, which does not exist")
            return text

        return fetch

    def _ask(self, call: Callable[[], Any], job_id: str) -> Any:
        """One call about a task."""
        return aws.provider_call(call, f"asking about task {job_id}", missing=f"{self.name} has no task {job_id}")


def _braket_simulator(name: str) -> Any:
    """The BraketSimulator that Braket's LocalSimulator(name) wraps, from the
    ``braket.simulators`` entry points: run directly, it returns the task
    result document (ProgramSetTaskResult, GateModelTaskResult) with the
    executables' inputsIndex, which LocalSimulator's results drop."""
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="braket.simulators") if e.name == name]
    return entry.load()()


def _graph_of_document(document: str) -> DeviceGraph | None:
    """The graph of a device document kept with an earlier run; None when it
    no longer parses (a schema this SDK does not know): the estimate then
    assumes one copy, as with no document."""
    from braket.schema_common import BraketSchemaBase

    try:
        return device_graph(BraketSchemaBase.parse_raw_schema(document))
    except Exception:  # pydantic's errors, an unknown header: no offline topology, not a failure
        return None


def _limits_from(properties: Any) -> BackendLimits:
    from braket.device_schema import DeviceActionType

    low, high = properties.service.shotsRange
    action = properties.action.get(DeviceActionType.OPENQASM_PROGRAM_SET)
    if action is None:
        # No program sets on this device: one executable per task.
        return BackendLimits(max_shots=int(min(high, 2**31 - 1)), min_shots=max(1, int(low)), max_circuits_per_job=1)
    return BackendLimits(
        max_shots=int(min(high, 2**31 - 1)),
        min_shots=max(1, int(low)),
        max_circuits_per_job=int(action.maximumExecutables),
        max_executions_per_job=int(action.maximumTotalShots) if action.maximumTotalShots else None,
    )


def _failure_reason(task: dict) -> str:
    return str(task.get("failureReason") or "the task failed without a reason")
