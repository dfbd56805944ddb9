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
(boto3 would fill in a random one; a handler on botocore's
``before-parameter-build.braket.CreateQuantumTask`` event sets ours), so a
repeated create returns the first task, and carries the key as the ``qhw-key``
tag, by which a later process finds it with SearchQuantumTasks.

Bit order: ``to_braket`` writes ``b[j] = measure $p`` in classical-bit order,
and Braket returns measurement columns in that order (``measured_qubits``), so
column j is feature-map qubit j whatever physical qubit ran it. Braket prints
bitstrings column 0 first; qhw's canonical index is sum(column_j << j).
"""

from __future__ import annotations

import os
import uuid
import warnings
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from qhw.backend import LOCAL_SHOTS_PER_JOB, Backend, BackendLimits, Executable, JobStatus
from qhw.backends._braket_devices import EmulatedDevice, calibration_snapshot, load_properties
from qhw.backends._qiskit_jobs import InProcessJobs
from qhw.errors import BackendError, ConfigError, CredentialsError, JobFailedError, JobNotFoundError, TransientBackendError
from qhw.pricing import CostEstimate, PriceTable
from qhw.records import QUBITS, CalibrationSnapshot, JobState, JobUsage, ProviderUsage

ARN_PREFIX = "braket:"
EMULATOR_PREFIX = "braket_emulator:"
LOCAL_SIMULATORS = {"braket_local": "braket_sv", "braket_dm": "braket_dm"}
#: Circuits in one job of the emulator, which runs them one by one.
EMULATOR_CIRCUITS_PER_JOB = 100
#: Program-set size assumed before the device's own properties are read.
DEFAULT_MAX_EXECUTABLES = 100
DEFAULT_MAX_SHOTS = 100_000
NAMES_SUMMARY = (
    "braket_local, braket_dm, braket_sv1, braket_dm1, ionq_forte, ionq_aria, iqm_garnet, rigetti_ankaa, "
    "braket:<device ARN>, braket_emulator:<device properties FILE.json>"
)
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

NO_CREDENTIALS = (
    "no AWS credentials: run `aws configure` (or set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY) for an account with Amazon Braket enabled"
)

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


# The provider-client boundary: tests replace these three with stateful fakes.
def aws_device(arn: str) -> Any:
    from braket.aws import AwsDevice

    device = AwsDevice(arn, aws_session=_aws_session(arn))
    _use_client_tokens(device.aws_session.braket_client)
    return device


def aws_task(arn: str) -> Any:
    from braket.aws import AwsQuantumTask

    return AwsQuantumTask(arn)


def aws_search_tasks(device_arn: str, since: datetime) -> list[dict]:
    """SearchQuantumTasks: the device's tasks created at or after ``since``,
    as AWS lists them (quantumTaskArn, status, createdAt, tags, ...)."""
    from botocore.exceptions import ClientError

    client = _aws_session(device_arn).braket_client
    by_device = {"name": "deviceArn", "operator": "EQUAL", "values": [device_arn]}
    # AWS documents the createdAt filter but not its value's format; ISO 8601 in
    # UTC is what its responses use. Should AWS refuse it, search by device
    # alone and compare the creation times here.
    created = {"name": "createdAt", "operator": "GTE", "values": [since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")]}

    def search(filters: list[dict]) -> list[dict]:
        tasks: list[dict] = []
        for page in client.get_paginator("search_quantum_tasks").paginate(filters=filters):
            tasks.extend(page["quantumTasks"])
        return tasks

    try:
        return search([by_device, created])
    except ClientError as err:
        if _error_code(err) != "ValidationException":
            raise
    return [task for task in search([by_device]) if task.get("createdAt") is None or task["createdAt"] >= since]


def _aws_session(arn: str) -> Any:
    import boto3
    from braket.aws import AwsSession

    # QPUs live in the region their ARN names; managed simulators in any, so
    # the user's default region (or us-east-1) serves for those.
    region = arn.split(":")[3] or boto3.Session().region_name or "us-east-1"
    return AwsSession(boto_session=boto3.Session(region_name=region))


_client_token: ContextVar[str | None] = ContextVar("qhw_braket_client_token", default=None)


def current_client_token() -> str | None:
    """The clientToken the next CreateQuantumTask of this context carries."""
    return _client_token.get()


@contextmanager
def client_token(token: str | None) -> Iterator[None]:
    """Make the CreateQuantumTask calls inside idempotent under ``token``."""
    reset = _client_token.set(token)
    try:
        yield
    finally:
        _client_token.reset(reset)


def _set_client_token(params: dict, **_kwargs) -> None:
    token = _client_token.get()
    if token is not None:
        params["clientToken"] = token


def _use_client_tokens(braket_client: Any) -> None:
    """Have every CreateQuantumTask of this client carry the context's token."""
    braket_client.meta.events.register(
        "before-parameter-build.braket.CreateQuantumTask", _set_client_token, unique_id="qhw-client-token"
    )


def backend_names() -> list[str]:
    return [*LOCAL_SIMULATORS, *REMOTE_DEVICES]


def create(name: str, *, seed: int | None = None) -> Backend | None:
    if name in LOCAL_SIMULATORS:
        # Braket's local simulators take no seed: their shots differ run to run.
        # Without a noise model, braket_dm is as ideal as braket_local: a simulator.
        return BraketBackend(name, kind="simulator", local_name=LOCAL_SIMULATORS[name])
    if name.startswith(EMULATOR_PREFIX):
        path = Path(name[len(EMULATOR_PREFIX) :]).expanduser()
        if not name[len(EMULATOR_PREFIX) :]:
            raise ConfigError(f"{EMULATOR_PREFIX}<FILE.json> needs a Braket device properties file")
        return BraketBackend(name, kind="emulation", emulator_file=path)
    if name in REMOTE_DEVICES:
        device = REMOTE_DEVICES[name]
        return BraketBackend(name, kind=device.kind, arn=device.arn, published_qubits=device.qubits)
    if name.startswith(ARN_PREFIX):
        arn = name[len(ARN_PREFIX) :]
        if not arn.startswith("arn:aws:braket:") or ":device/" not in arn:
            raise ConfigError(f"{name!r} does not hold a Braket device ARN (arn:aws:braket:<region>::device/...)")
        kind = "managed simulator" if "/quantum-simulator/" in arn else "hardware"
        return BraketBackend(name, kind=kind, arn=arn, published_qubits=0)
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


class BraketBackend:
    """One Braket device; remote ones are contacted only when a run needs them."""

    provider = "braket"

    def __init__(
        self,
        name: str,
        *,
        kind: str,
        local_name: str | None = None,
        arn: str | None = None,
        emulator_file: Path | None = None,
        published_qubits: int = 0,
    ) -> None:
        self.name = name
        self.kind = kind
        self.is_local = local_name is not None or emulator_file is not None
        self.is_paid = not self.is_local
        self._local_name = local_name
        self._arn = arn
        self._emulator_file = emulator_file
        self._emulates: str | None = None  # the device an emulator's document describes
        self._device: Any = None
        self._target = None
        self._labels: tuple[int, ...] | None = None
        self._converted: dict[int, Any] = {}
        self._jobs = InProcessJobs(name)
        self.num_qubits = published_qubits
        self.limits = BackendLimits(max_shots=DEFAULT_MAX_SHOTS, max_circuits_per_job=DEFAULT_MAX_EXECUTABLES)
        if self.is_local:
            self._load_device()

    @property
    def credentials_configured(self) -> bool | None:
        return None if self.is_local else credentials_configured()

    @property
    def description(self) -> str:
        if self._emulator_file is not None:
            self._load_device()
            return f"emulation of {self._emulates} (Braket's LocalEmulator with the noise of its device properties)"
        if self._local_name is not None:
            kind = "density-matrix" if self._local_name == "braket_dm" else "state-vector"
            return f"Amazon Braket's local {kind} simulator, ideal (no noise)"
        if self.kind == "managed simulator":
            return f"Amazon Braket managed simulator {self.name} ({self._arn})"
        return f"{self.name} (Amazon Braket QPU, {self._arn})"

    # --- the device and its limits ------------------------------------------------

    def _load_device(self) -> Any:
        if self._device is not None:
            return self._device
        if self._emulator_file is not None:
            properties, self._emulates = load_properties(self._emulator_file)
            self._device = EmulatedDevice(properties, self._emulates)
        elif self._local_name is not None:
            from braket.devices import LocalSimulator

            self._device = LocalSimulator(self._local_name)
        else:
            self._device = _provider_call(lambda: aws_device(self._arn), f"reading device {self._arn}")
        properties = self._device.properties
        self.num_qubits = int(properties.paradigm.qubitCount)
        self.limits = _limits_from(properties)
        if self._emulator_file is not None:
            # LocalEmulator runs bound circuits one by one: no program sets.
            self.limits = BackendLimits(
                max_shots=self.limits.max_shots, min_shots=self.limits.min_shots, max_circuits_per_job=EMULATOR_CIRCUITS_PER_JOB
            )
        if self.is_local:
            # Braket's local results keep each shot as a row of Python ints
            # (measured: about 500 bytes a shot at a million), twice what Aer
            # keeps: half the shots a job keep the same memory bound.
            self.limits = self.limits.capped(LOCAL_SHOTS_PER_JOB // 2)
        return self._device

    def check_credentials(self) -> None:
        if not self.is_local and not credentials_configured():
            raise CredentialsError(NO_CREDENTIALS)

    def check(self, n_circuits: int, shots: int) -> None:
        """Read the device's properties and refuse what it cannot run, before any task."""
        device = self._load_device()
        if self.num_qubits < QUBITS:
            raise ConfigError(f"{self.name} has {self.num_qubits} qubits; the feature map needs {QUBITS}")
        if not self.is_local:
            status = getattr(device, "status", "ONLINE")
            if status != "ONLINE":
                raise BackendError(f"{self.name} is {status}, not ONLINE; nothing was submitted")
        if not self.limits.min_shots <= shots <= self.limits.max_shots:
            raise ConfigError(
                f"--shots must be between {self.limits.min_shots} and {self.limits.max_shots} on {self.name}, got {shots}"
            )

    def _qiskit_target(self):
        if self._target is None:
            from qiskit_braket_provider.providers.target import aws_device_to_target, local_simulator_to_target

            device = self._load_device()
            simulator = self._local_name is not None
            self._target = local_simulator_to_target(device) if simulator else aws_device_to_target(device)
            topology = getattr(device, "topology_graph", None)
            self._labels = tuple(sorted(topology.nodes)) if topology is not None and not simulator else None
        return self._target

    # --- the contract -------------------------------------------------------------

    def transpile(self, template, *, seed: int | None = None, initial_layout: Sequence[int] | None = None) -> Executable:
        from qiskit.transpiler import generate_preset_pass_manager

        target = self._qiskit_target()
        level = 3 if self.kind in ("hardware", "emulation") else 1
        circuit = generate_preset_pass_manager(optimization_level=level, target=target, seed_transpiler=seed, initial_layout=initial_layout).run(template)
        layout = circuit.layout.final_index_layout()[: template.num_qubits] if circuit.layout else range(template.num_qubits)
        return Executable(circuit=circuit, layout=tuple(int(q) for q in layout))

    def batch(self, n_jobs: int) -> AbstractContextManager[None]:
        return nullcontext()  # no provider sessions here

    def use_threads(self, threads: int | None) -> None:
        pass  # Braket's local simulators run in NumPy, on one thread

    def submit(
        self,
        executable: Executable,
        parameter_values: np.ndarray,
        shots: int,
        tags: Sequence[str],
        *,
        seed: int | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        from braket.program_sets import CircuitBinding, ParameterSets, ProgramSet
        from qiskit_braket_provider.providers.adapter import rename_parameter

        circuit = self._braket_circuit(executable)
        names = [rename_parameter(p) for p in executable.circuit.parameters]
        device = self._load_device()
        if self._emulator_file is not None:
            bound = [circuit.make_bound_circuit(dict(zip(names, map(float, row)))) for row in parameter_values]
            return self._jobs.add(_EmulatorTask(device, bound, shots))
        if self.limits.max_circuits_per_job == 1 and len(parameter_values) == 1:
            # A device without program sets: one bound circuit per task.
            program_set = circuit
            run_options = {"shots": shots, "inputs": dict(zip(names, map(float, parameter_values[0])))}
        else:
            inputs = ParameterSets({name: parameter_values[:, j].tolist() for j, name in enumerate(names)})
            program_set = ProgramSet([CircuitBinding(circuit, input_sets=inputs)], shots_per_executable=shots)
            run_options = {"shots": None}
        if self.is_local:
            with warnings.catch_warnings():
                # braket_dm warns that a noise-free circuit would be faster on the
                # state vector; the user chose the density-matrix simulator on purpose.
                warnings.filterwarnings("ignore", message="You are running a noise-free circuit")
                return self._jobs.add(_LocalTask(device.run(program_set, **run_options)))
        task_tags = dict(tag.split("=", 1) if "=" in tag else (tag, "") for tag in tags)
        with client_token(idempotency_key):
            task = _provider_call(lambda: device.run(program_set, tags=task_tags, **run_options), f"submitting to {self.name}")
        return task.id

    def find_job(self, idempotency_key: str, since: datetime) -> str | None:
        if self.is_local:
            return None  # local tasks live only in the process that ran them
        tasks = _provider_call(lambda: aws_search_tasks(self._arn, since), f"searching the tasks of {self.name}")
        mine = sorted(
            (task for task in tasks if (task.get("tags") or {}).get("qhw-key") == idempotency_key),
            key=lambda task: str(task.get("createdAt", "")),
        )
        return mine[0]["quantumTaskArn"] if mine else None

    def status(self, job_id: str) -> JobStatus:
        task = self._task(job_id)
        state = BRAKET_TO_STATE.get(str(self._ask(task.state, job_id)).upper(), JobState.RUNNING)
        if state is JobState.FAILED:
            return JobStatus(state, error=self._ask(lambda: _failure_reason(task), job_id))
        return JobStatus(state)

    def result(self, job_id: str) -> np.ndarray:
        task = self._task(job_id)
        if self.is_local:
            try:
                result = task.result()
            except Exception as err:  # a local simulator's error is the task's own failure
                raise JobFailedError(f"{self.name} task {job_id} failed: {err}") from err
        else:
            result = self._ask(task.result, job_id)
        if result is None:
            raise BackendError(f"{self.name} task {job_id} has no result")
        return counts_from_program_set(result)

    def cancel(self, job_id: str) -> None:
        try:
            self._ask(self._task(job_id).cancel, job_id)
        except BackendError as err:
            if _error_code(err.__cause__) != "ConflictException":
                raise
            # The task is already final; its state says how it ended.

    def usage(self, job_id: str) -> ProviderUsage:
        """Shots that ran (program sets count them), and a managed simulator's
        execution time where its result reports one."""
        if self.is_local:
            return ProviderUsage()
        result = self._ask(self._task(job_id).result, job_id)
        metadata = getattr(result, "task_metadata", None)
        shots = getattr(metadata, "successfulShots", None)
        duration_ms = getattr(getattr(getattr(result, "additional_metadata", None), "simulatorMetadata", None), "executionDuration", None)
        return ProviderUsage(
            shots=None if shots is None else int(shots), duration_seconds=None if duration_ms is None else duration_ms / 1000
        )

    def calibration(self, layout: Sequence[int]) -> CalibrationSnapshot | None:
        """A QPU's (or an emulated one's) document as returned, and the figures
        of the qubits the run used; simulators have none."""
        if self.kind not in ("hardware", "emulation"):
            return None
        self._qiskit_target()
        device = self._load_device()
        labels = [self._labels[q] if self._labels else q for q in layout]
        return calibration_snapshot(device.properties, self._emulates or self.name, labels)

    def estimate_cost(self, job_sizes: Sequence[int], shots: int, prices: PriceTable) -> CostEstimate | None:
        if self.is_local:
            return None
        tasks, total_shots = len(job_sizes), sum(job_sizes) * shots
        key = self._price_key()
        if self.kind == "managed simulator":
            per_minute = prices["braket_simulator_usd_per_minute"].get(key)
            if per_minute is None:
                return None
            minimum = prices["braket_simulator_min_seconds"]
            seconds = tasks * max(minimum, total_shots / max(tasks, 1) * prices["braket_simulator_seconds_per_shot"])
            detail = f"{tasks} task(s), about {seconds:,.0f} s billed at ${per_minute}/min (min {minimum:g} s a task)"
            return CostEstimate(seconds / 60 * per_minute, detail, prices.taken)
        per_shot = prices["braket_per_shot_usd"].get(key)
        if per_shot is None:
            return None
        per_task = prices["braket_per_task_usd"]
        detail = f"{tasks} task(s) x ${per_task} + {total_shots:,} shots x ${per_shot}"
        return CostEstimate(tasks * per_task + total_shots * per_shot, detail, prices.taken)

    def job_cost(self, job: JobUsage, prices: PriceTable) -> float | None:
        """A task's cost, as Braket's own cost tracker prices it (braket.tracking):
        nothing for a failed or cancelled task; a QPU task's fee plus the shots
        that ran; a managed simulator's execution time, at least 3 s, by the
        minute (unknown when its result reports no time)."""
        if self.is_local or job.state in (JobState.FAILED, JobState.CANCELLED):
            return 0.0
        key = self._price_key()
        if self.kind == "managed simulator":
            per_minute = prices["braket_simulator_usd_per_minute"].get(key)
            seconds = job.reported.duration_seconds
            if per_minute is None or seconds is None:
                return None
            return max(seconds, prices["braket_simulator_min_seconds"]) / 60 * per_minute
        per_shot = prices["braket_per_shot_usd"].get(key)
        if per_shot is None:
            return None
        shots = job.reported.shots if job.reported.shots is not None else job.executions * job.shots
        return prices["braket_per_task_usd"] + shots * per_shot

    # --- helpers ------------------------------------------------------------------

    def _price_key(self) -> str:
        if self.name in REMOTE_DEVICES:
            return self.name
        return next((alias for alias, d in REMOTE_DEVICES.items() if d.arn == self._arn), self.name)

    def _braket_circuit(self, executable: Executable):
        key = id(executable.circuit)
        if key not in self._converted:
            from qiskit_braket_provider.providers.adapter import to_braket

            # Already transpiled for this target: translate only, keep the layout.
            with warnings.catch_warnings():
                # A global phase changes no measured probability; devices drop it.
                warnings.filterwarnings("ignore", message="Device does not support global phase")
                self._converted[key] = to_braket(
                    executable.circuit, target=self._qiskit_target(), qubit_labels=self._labels, optimization_level=0
                )
        return self._converted[key]

    def _task(self, job_id: str) -> Any:
        if self.is_local:
            return self._jobs.get(job_id)
        return self._ask(lambda: aws_task(job_id), job_id)

    def _ask(self, call: Callable[[], Any], job_id: str) -> Any:
        """One call about a task; AwsQuantumTask reaches AWS only when asked."""
        if self.is_local:
            return call()
        return _provider_call(call, f"asking about task {job_id}", missing=f"{self.name} has no task {job_id}")


class _EmulatorTask:
    """A job of the emulator: its bound circuits, run in this process, one by one."""

    def __init__(self, device: EmulatedDevice, circuits: list, shots: int) -> None:
        self.id = f"emulated-{uuid.uuid4().hex}"
        self._results = [device.run(circuit, shots=shots) for circuit in circuits]

    def job_id(self) -> str:
        return self.id

    def state(self) -> str:
        return "COMPLETED"

    def result(self):
        return SimpleNamespace(entries=[self._results])

    def cancel(self) -> None:
        pass  # it has finished already


class _LocalTask:
    """A LocalSimulator task with the job_id() that InProcessJobs expects."""

    def __init__(self, task: Any) -> None:
        self._task = task
        self.id = task.id

    def job_id(self) -> str:
        return self._task.id

    def state(self) -> str:
        return self._task.state()

    def result(self):
        return self._task.result()

    def cancel(self) -> None:
        self._task.cancel()


def counts_from_program_set(result: Any) -> np.ndarray:
    """Canonical counts (executions, 2**bits) from a program-set result of one
    circuit binding, or from a single circuit's result (one execution)."""
    executables = result.entries[0] if hasattr(result, "entries") else [result]
    rows = []
    for executable in executables:
        measurements = np.asarray(executable.measurements, dtype=np.int64)  # (shots, bits), column j = clbit j
        bits = measurements.shape[1]
        index = measurements @ (1 << np.arange(bits))
        rows.append(np.bincount(index, minlength=2**bits))
    return np.array(rows, dtype=np.int64)


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


def _failure_reason(task: Any) -> str:
    metadata = task.metadata() if callable(getattr(task, "metadata", None)) else {}
    return str(metadata.get("failureReason") or "the task failed without a reason")


#: Error codes of AWS that say "ask again later".
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServerException",
        "InternalServiceException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
#: Error codes that mean the credentials were refused.
CREDENTIAL_CODES = frozenset(
    {"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId", "AccessDeniedException"}
)


def _error_code(err: BaseException | None) -> str | None:
    response = getattr(err, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _provider_call(call: Callable[[], Any], what: str, missing: str | None = None) -> Any:
    """Run one AWS call, classifying its errors: credentials, transient
    (throttling, 5xx, connection and timeouts), an unknown task (with
    ``missing`` when given), or a final refusal."""
    from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError, NoRegionError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    try:
        return call()
    except NoCredentialsError as err:
        raise CredentialsError(NO_CREDENTIALS) from err
    except NoRegionError as err:
        raise ConfigError("no AWS region: set AWS_DEFAULT_REGION or a region in your AWS profile") from err
    except ClientError as err:
        code = _error_code(err) or "ClientError"
        message = err.response.get("Error", {}).get("Message", str(err))
        http_status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if missing is not None and code == "ResourceNotFoundException":
            raise JobNotFoundError(missing) from err
        if code in CREDENTIAL_CODES:
            raise CredentialsError(f"Amazon Braket rejected the credentials while {what}: {code}: {message}") from err
        if code in TRANSIENT_CODES or http_status == 429 or http_status >= 500:
            raise TransientBackendError(f"Amazon Braket is busy or failing while {what}: {code}: {message}") from err
        raise BackendError(f"Amazon Braket refused {what}: {code}: {message}") from err
    except (BotoConnectionError, HTTPClientError, ConnectionError, TimeoutError) as err:
        raise TransientBackendError(f"Amazon Braket could not be reached while {what}: {err}") from err
    except BotoCoreError as err:
        raise BackendError(f"Amazon Braket failed while {what}: {err}") from err
