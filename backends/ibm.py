"""IBM Quantum through qiskit-ibm-runtime.

``ibm_<device>`` runs on a real device through QiskitRuntimeService;
``fake_<device>`` runs the same code in Runtime's local testing mode (SamplerV2
with a fake backend, the device's calibrated noise). Both transpile once per
run with the preset pass manager at level 3 against the device target and
submit SamplerV2 jobs with parameter broadcasting, in a Runtime Batch when a
run needs several jobs. A later process finds remote jobs again with
``service.job(id)``, and a job whose id was never stored (a crash between
IBM's answer and the commit) with ``service.jobs(job_tags=["qhw-key=..."])``.

Runtime's errors are classified here, where their meaning is known: network
errors, HTTP 429 and 5xx are transient; 401 and account errors are
credentials; a 404 on a job is an unknown job; the rest are final.
"""

from __future__ import annotations

import functools
import json
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qhw import circuits, settings
from qhw.backend import (
    LOCAL_SHOTS_PER_JOB,
    Allowance,
    Backend,
    BackendEntry,
    BackendLimits,
    DeviceProfile,
    Executable,
    JobResult,
    JobStatus,
    LocalBackend,
    RemoteBackend,
    ShotTiming,
)
from qhw.backends._engines import DensityEmulation
from qhw.backends._qiskit_jobs import job_status, local_job_counts, mapped_counts
from qhw.errors import (
    BackendError,
    ConfigError,
    CredentialsError,
    JobFailedError,
    JobNotFoundError,
    ProviderAnswerError,
    TransientBackendError,
)
from qhw.feature_maps import MIN_QUBITS
from qhw.packing import DeviceGraph
from qhw.pricing import CostEstimate, PriceTable
from qhw.records import CalibrationSnapshot, JobUsage, PairCalibration, ProviderUsage, QubitCalibration

if TYPE_CHECKING:
    from qhw.store.artifacts import ArtifactStore

FAKE_PREFIX = "fake_"
REAL_PREFIX = "ibm_"
#: IBM Quantum accepts at most this many executions (circuits x shots) per job.
MAX_EXECUTIONS_PER_JOB = 10_000_000
DEFAULT_MAX_SHOTS = 100_000
#: Circuits in one job of a fake device (see IBMEmulator._limits).
LOCAL_CIRCUITS_PER_JOB = 256
#: The widest part of a circuit (qubits no gate separates) the density engine
#: takes by default: a sample's density matrix grows as 4**width, so past about
#: 8 qubits Aer's shots cost less (benchmarks/simulators.py measures both).
DENSITY_MAX_DEFAULT_WIDTH = 8
#: The unit IBM now bills usage in (``usage.value`` of its job metrics).
RESOURCE_UNIT = "RU"
#: IBM Quantum's pay-as-you-go price and qhw's estimate of QPU time (see qhw.pricing).
PRICES = {
    "ibm_usd_per_qpu_second": 1.60,
    # IBM bills in resource units (RUs) now; its price list is not reachable
    # offline. An RU is taken at the per-second rate it replaced for the same
    # workloads, until you set your contract's price in prices.toml.
    "ibm_usd_per_resource_unit": 1.60,
    # IBM's documented estimate of QPU time ("Workload usage"): about 2 s a
    # sub-job, plus (rep_delay + the scheduled circuit's duration) for every
    # execution and shot, both read from the device's target (see
    # shot_timing). The flat time a shot is used only for a device
    # whose timing is not known (no live device, no snapshot in qiskit-ibm-runtime).
    "ibm_seconds_per_job": 2.0,
    "ibm_seconds_per_shot": 0.0002,
}
#: IBM's job listing (``service.jobs(job_tags=...)``) is a search that may not
#: show a job for a while after IBM accepted it; IBM documents no bound. Until
#: this long after a submission began (default 300 s, or
#: ``QHW_IBM_LISTING_GRACE_SECONDS``), a lookup by ``qhw-key`` that finds
#: nothing is no answer: the job stays pending and is looked for again, and a
#: paid resubmission is not even offered.
LISTING_GRACE_ENV = "QHW_IBM_LISTING_GRACE_SECONDS"
LISTING_GRACE_SECONDS = 300.0
#: Devices listed by `qhw backends` (any ibm_<name> the account can reach works).
LISTED_DEVICES = ("ibm_fez", "ibm_torino", "ibm_kingston", "ibm_marrakesh", "ibm_aachen", "ibm_pittsburgh")
CREDENTIALS_HELP = (
    "save an IBM Quantum account once with QiskitRuntimeService.save_account(token=..., instance=...), "
    "or set QISKIT_IBM_TOKEN and QISKIT_IBM_INSTANCE"
)


# The provider-client boundary: tests replace runtime_service and sampler with
# a stateful fake service whose jobs step through Runtime's states.
def runtime_service() -> Any:
    from qiskit_ibm_runtime import QiskitRuntimeService

    return QiskitRuntimeService()


def sampler(mode: Any):
    from qiskit_ibm_runtime import SamplerV2

    # SamplerV2 is deprecated from runtime 0.50 in favour of the client-side
    # executor Sampler; SamplerV2 is still the documented path for Batch mode
    # and local testing, so qhw keeps it until that changes.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return SamplerV2(mode=mode)


def backend_names() -> list[str]:
    return [entry.name for entry in catalogue()]


def catalogue() -> list[BackendEntry]:
    """The listed devices and every fake device with enough qubits for a map,
    from the configuration files qiskit-ibm-runtime ships with its fakes
    (fake_<folder>, its n_qubits), read without importing the SDK: building
    its fake provider takes seconds, and ``qhw backends`` is a table."""
    fakes = _fake_configurations()
    configured = credentials_configured()
    rows = [
        BackendEntry(name, "ibm", "hardware", fakes.get(FAKE_PREFIX + name[len(REAL_PREFIX):]), True, configured)
        for name in LISTED_DEVICES
    ]
    rows += [BackendEntry(name, "ibm", "emulation", qubits, False, None) for name, qubits in sorted(fakes.items()) if qubits >= MIN_QUBITS]
    return rows


@functools.cache
def _fake_configurations() -> dict[str, int]:
    """fake_<device> -> its qubits, from ``fake_provider/backends/<device>/conf_<device>.json``."""
    import glob
    import importlib.util
    import json

    spec = importlib.util.find_spec("qiskit_ibm_runtime")
    if spec is None or not spec.submodule_search_locations:
        return {}
    pattern = os.path.join(spec.submodule_search_locations[0], "fake_provider", "backends", "*", "conf_*.json")
    found = {}
    for path in glob.glob(pattern):
        with open(path, encoding="utf-8") as handle:
            found[FAKE_PREFIX + os.path.basename(os.path.dirname(path))] = int(json.load(handle)["n_qubits"])
    return found


def create(name: str, *, seed: int | None = None, artifacts: ArtifactStore | None = None) -> Backend | None:
    if name.startswith(REAL_PREFIX):
        return IBMQPU(name, seed=seed)
    if not name.startswith(FAKE_PREFIX):
        return None
    device = _fake_device(name)
    if device is None:
        return None
    if _qubits(device) < MIN_QUBITS:
        raise ConfigError(f"{name} has {_qubits(device)} qubit(s); a feature map needs at least {MIN_QUBITS}")
    return IBMEmulator(name, _kept_across_runs(device), seed=seed)


def _kept_across_runs(device: Any) -> Any:
    """The fake device, made to survive Runtime's local mode whole.

    The local service deep-copies its options, the device among them, on every
    run; the copy has no simulator yet, so every job rebuilt the device's
    noise model from its calibration: 15 s a job for fake_fez on the 2-core
    test machine, and a packed job runs one simulation per copy. The device is
    read, never written, by a run (its simulator takes the run's options
    afresh each time), so its copy may be the device itself.
    """
    device.__deepcopy__ = lambda memo: device
    return device


def listing_grace() -> float:
    """How long IBM's job listing is given to show a job (see LISTING_GRACE_SECONDS)."""
    return settings.seconds(LISTING_GRACE_ENV, LISTING_GRACE_SECONDS, 0.0, 86_400.0)


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


#: Where qiskit-ibm-runtime keeps saved accounts (its accounts.management's
#: _DEFAULT_ACCOUNT_CONFIG_JSON_FILE): read here rather than through
#: ``QiskitRuntimeService.saved_accounts()``, which costs the SDK's import
#: (2 to 3 s) for one cell of ``qhw backends``; a test holds the two equal.
SAVED_ACCOUNTS = os.path.join("~", ".qiskit", "qiskit-ibm.json")


def credentials_configured() -> bool:
    """A saved account or QISKIT_IBM_TOKEN in the environment (no network)."""
    if os.environ.get("QISKIT_IBM_TOKEN"):
        return True
    try:
        saved = json.loads(Path(os.path.expanduser(SAVED_ACCOUNTS)).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none, or an unreadable account file: "not configured"
        return False
    # As the SDK reads it: legacy accounts of the retired "ibm_quantum" channel do not count.
    return isinstance(saved, dict) and any(isinstance(a, dict) and a.get("channel") != "ibm_quantum" for a in saved.values())


class _IBMDevice:
    """What IBM's devices and their fakes share: a Runtime backend whose target
    the feature map is compiled for, and whose calibration it reports."""

    provider = "ibm"
    name: str
    _device: Any = None

    def _load_device(self) -> Any:
        raise NotImplementedError

    def transpile(self, template, *, seed: int | None = None, initial_layout: Sequence[int] | None = None) -> Executable:
        from qiskit.transpiler import generate_preset_pass_manager

        manager = generate_preset_pass_manager(optimization_level=3, backend=self._load_device(), seed_transpiler=seed, initial_layout=initial_layout)
        circuit = manager.run(template)
        # Measurements keep their classical bits, so counts come back per logical
        # qubit; the layout is kept to say which physical qubits ran them.
        layout = circuit.layout.final_index_layout()[: template.num_qubits] if circuit.layout else range(template.num_qubits)
        return Executable(circuit=circuit, layout=tuple(int(q) for q in layout))

    def calibration(self, layout: Sequence[int]) -> CalibrationSnapshot:
        """T1, T2, readout and sx errors of the qubits the run uses, and the
        two-qubit gate errors between them, from the device's target, with the
        calibration's own timestamp."""
        return calibration_snapshot(self.name, self._load_device(), layout)

    def _profile_of(self, device: Any, *, live: bool, source: str, unavailable: str | None = None) -> DeviceProfile:
        target = device.target
        return DeviceProfile(
            self.name, _qubits(device), self._limits(_max_shots(device)), device_graph(target), live=live,
            unavailable=unavailable, timing=shot_timing(device, source),
            # IBM's devices measure and reset mid-circuit where their target lists both (FakeFez: measure 1.6 us, reset 1.6 us).
            mid_circuit_reset="measure" in target and "reset" in target,
            reset_seconds=_longest("reset", target), rep_delay_range=_rep_delay_range(device),
        )

    def shot_timing(self, profile: DeviceProfile, template, reuse: int = 1, rep_delay: float | None = None) -> ShotTiming | None:
        """A shot of ``template`` run ``reuse`` times in a row on the device
        ``profile`` describes: the rep_delay (``rep_delay``, or the device's
        default), then the template compiled for the device's target, measured
        and reset before each next position (``estimate_duration``, as IBM's
        guide to estimating usage does); None without a timing."""
        if profile.timing is None:
            return None
        device = self._device if profile.live and self._device is not None else _fake_twin(self.name) or self._device
        position = _template_seconds(device, circuits.to_qpy(template)) if device is not None else profile.timing.circuit
        circuit = reuse * position + (reuse - 1) * (profile.reset_seconds or 0.0)
        asked = "" if rep_delay is None else ", rep_delay as asked"
        reused = "" if reuse == 1 else f", {reuse} samples a shot"
        return ShotTiming(profile.timing.rep_delay if rep_delay is None else rep_delay, circuit, f"{profile.timing.source}{reused}{asked}")

    def _limits(self, max_shots: int) -> BackendLimits:
        raise NotImplementedError


class IBMEmulator(DensityEmulation, _IBMDevice, LocalBackend):
    """``fake_<device>``: IBM's calibrated noise model of a device, run in
    Runtime's local testing mode (a LocalBackend)."""

    kind = "emulation"
    is_local = True
    is_paid = False
    credentials_configured = None
    # A packed job in one run: the noisy engine takes the packed circuit whole
    # (its copies are components of their own); Aer, each copy alone, one pub a copy.
    runs_copies_in_one_job = True
    #: "density" (the default): qhw's noisy engine, exact probabilities from the
    #: device's noise model, then seeded shots (backends/_density.py); "aer":
    #: Runtime's local testing mode, shot by shot through Aer, as before.
    fallback = "aer"
    fallback_label = "Aer"
    default_max_width = DENSITY_MAX_DEFAULT_WIDTH
    wide_reason = "Aer's shots cost less than exact density matrices"
    # Aer's noisy simulation holds the interpreter for a whole job (no other thread of the
    # process runs until it ends: tests/test_conditions.py's Ctrl-C test meets it).
    fallback_holds_the_interpreter = True

    def __init__(self, name: str, device: Any, *, seed: int | None = None) -> None:
        self.name = name
        self._device = device
        self._seed = seed
        self.num_qubits = _qubits(device)
        self._parts: dict[int, tuple[object, list]] = {}

    def _compile(self, executable: Executable) -> Any:
        """The circuit with the channels of the qubits it uses, read from the device's properties."""
        from qhw.backends import _density

        return _density.compile_circuit(executable.circuit, _device_channels(self._device))

    @property
    def description(self) -> str:
        return f"emulation of {REAL_PREFIX + self.name[len(FAKE_PREFIX):]} (IBM's calibrated noise model, Runtime local testing mode)"

    def _load_device(self) -> Any:
        return self._device

    def check_credentials(self) -> None:
        pass  # none needed

    def profile(self, *, offline: bool = False, document: str | None = None) -> DeviceProfile:
        return self._profile_of(self._device, live=True, source=f"{self.name}'s target")

    def _limits(self, max_shots: int) -> BackendLimits:
        # Jobs small enough to spread over worker processes (about 0.7 s each
        # at 1,024 shots) and to keep memory flat.
        return BackendLimits(max_shots=max_shots, max_circuits_per_job=LOCAL_CIRCUITS_PER_JOB).capped(LOCAL_SHOTS_PER_JOB)

    def _copies(self, executable: Executable) -> list:
        """Each copy's circuit alone, made once per executable (a run's jobs share it)."""
        key = id(executable.circuit)
        if key not in self._parts:
            self._parts.clear()  # one run at a time
            # The circuit is kept with its copies, so that its id is not reused.
            self._parts[key] = (executable.circuit, [executable.copy(c).circuit for c in range(executable.copies)])
        return self._parts[key][1]

    def use_threads(self, threads: int | None) -> None:
        # Local mode runs the fake device's own AerSimulator with the device's options.
        self._device.set_options(max_parallel_threads=threads or 0)

    def run(self, executable: Executable, parameter_values: np.ndarray, shots: int, *, seed: int | None = None) -> JobResult:
        seed = seed if seed is not None else self._seed
        if executable.engine != "aer":
            return self._engine_counts(executable, parameter_values, shots, seed)
        primitive = sampler(self._device)
        if seed is not None:
            # Runtime's local service reads the seed with `if seed := options.pop(...)`,
            # so a seed of 0 would be dropped silently (and runs would not repeat);
            # every seed is shifted by one, which keeps runs reproducible.
            primitive.options.simulator.seed_simulator = seed + 1
        pubs = [(executable.circuit, parameter_values)]
        if executable.copies > 1:  # (a copy reused keeps its positions together: its resets carry its noise)
            # Each copy alone, on its own qubits, one pub a copy: the same
            # outcomes without crosstalk (which the noise model has not), and
            # no state of every copy's qubits at once.
            from qhw.circuits import copy_columns

            parts = self._copies(executable)
            pubs = [(part, np.ascontiguousarray(parameter_values[:, copy_columns(executable.circuit, part)])) for part in parts]
        job = primitive.run(pubs, shots=shots)
        return local_job_counts(job, executable, len(parameter_values))


class IBMQPU(_IBMDevice, RemoteBackend):
    """``ibm_<device>``: an IBM Quantum QPU through QiskitRuntimeService (a RemoteBackend)."""

    kind = "hardware"
    is_local = False
    is_paid = True

    def __init__(self, name: str, *, seed: int | None = None) -> None:
        self.name = name
        self._seed = seed
        self._device: Any = None
        self._service: Any = None
        self._mode: Any = None  # a Batch while a multi-job run is being submitted
        self._jobs: dict[str, Any] = {}
        twin = _fake_twin(name)
        self.num_qubits = _qubits(twin) if twin is not None else 0  # as published, before the device is read
        self.listing_grace_seconds = listing_grace()

    @property
    def credentials_configured(self) -> bool:
        return credentials_configured()

    @property
    def description(self) -> str:
        return f"{self.name} (IBM Quantum QPU)"

    def check_credentials(self) -> None:
        if not credentials_configured():
            raise CredentialsError(f"no IBM Quantum credentials: {CREDENTIALS_HELP}")

    def _service_or_error(self) -> Any:
        if self._service is None:
            self._service = _runtime_call(runtime_service, "connecting to IBM Quantum")
        return self._service

    def _load_device(self) -> Any:
        if self._device is None:
            service = self._service_or_error()
            self._device = _runtime_call(lambda: service.backend(self.name), f"looking up {self.name}")
        return self._device

    def profile(self, *, offline: bool = False, document: str | None = None) -> DeviceProfile:
        """Offline, from the snapshot qiskit-ibm-runtime ships of the device
        (fake_fez for ibm_fez; IBM's documents are kept with runs too, but the
        shipped snapshot is read the same way as the live device); live, the
        device and its status, read now."""
        if offline and self._device is None:
            twin = _fake_twin(self.name)
            if twin is None:
                return DeviceProfile(self.name, 0, self._limits(DEFAULT_MAX_SHOTS))
            return self._profile_of(twin, live=False, source=f"qiskit-ibm-runtime's snapshot of {self.name} ({twin.name})")
        device = self._load_device()
        status = _runtime_call(device.status, f"reading the status of {self.name}")
        unavailable = None
        if not getattr(status, "operational", True):
            unavailable = f"{self.name} is not operational ({getattr(status, 'status_msg', '') or 'not operational'})"
        return self._profile_of(device, live=True, source=f"{self.name}'s target", unavailable=unavailable)

    def _limits(self, max_shots: int) -> BackendLimits:
        return BackendLimits(max_shots=max_shots, max_executions_per_job=MAX_EXECUTIONS_PER_JOB)

    def batch(self, n_jobs: int) -> AbstractContextManager[None]:
        """A Runtime Batch around a run's submissions when it needs several jobs."""
        return self._batch() if n_jobs >= 2 else nullcontext()

    @contextmanager
    def _batch(self) -> Iterator[None]:
        from qiskit_ibm_runtime import Batch

        batch = _runtime_call(lambda: Batch(backend=self._load_device()), f"opening a batch on {self.name}")
        self._mode = batch
        try:
            yield
        finally:
            self._mode = None
            # Closing stops new jobs; those submitted still run.
            _runtime_call(batch.close, "closing the batch")

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
    ) -> str:
        # Runtime has no idempotency token: the key travels as a tag
        # (qhw-key=...), by which find_job finds the job after a crash.
        primitive = sampler(self._mode or self._load_device())
        primitive.options.environment.job_tags = list(tags)
        if rep_delay is not None:
            primitive.options.execution.rep_delay = rep_delay
        job = _runtime_call(lambda: primitive.run([(executable.circuit, parameter_values)], shots=shots), f"submitting to {self.name}")
        return job.job_id()

    def find_job(self, idempotency_key: str, since: datetime) -> str | None:
        service = self._service_or_error()
        found = _runtime_call(
            lambda: service.jobs(job_tags=[f"qhw-key={idempotency_key}"], created_after=since, backend_name=self.name, limit=10),
            f"looking for the job tagged qhw-key={idempotency_key}",
        )
        # Oldest first: were there two, the first is the one to keep.
        return found[-1].job_id() if found else None

    def status(self, job_id: str) -> JobStatus:
        job = self._job(job_id)
        return _runtime_call(lambda: job_status(job), f"polling job {job_id}")

    def result(self, job_id: str, *, executable: Executable, executions: int, shots: int) -> JobResult:
        result = _runtime_call(self._job(job_id).result, f"fetching job {job_id}")
        return mapped_counts(result, executable, executions)

    def cancel(self, job_id: str) -> None:
        job = self._job(job_id)
        # RuntimeJobV2.cancel() marks itself cancelled once IBM took the request;
        # the job is looked up afresh, so that its status is IBM's answer.
        self._jobs.pop(job_id, None)
        try:
            _runtime_call(job.cancel, f"cancelling job {job_id}")
        except BackendError as err:
            if type(err.__cause__).__name__ != "RuntimeInvalidStateError":
                raise
            # 409: the job is already final; its status says how it ended.

    def usage(self, job_id: str) -> ProviderUsage:
        """The QPU time IBM charges for the job, once IBM says it is final.

        ``RuntimeJobV2.usage()`` returns 0 until IBM has finished computing the
        usage, which would read as a free job; the job's metrics say whether the
        figure is final (``usage.status``), so they are read instead.
        """
        job = self._job(job_id)
        # IBM's own estimate (usage_estimation), kept beside qhw's and the final
        # figure; failing to read it must not cost the final figure.
        try:
            estimation = _runtime_call(lambda: job.usage_estimation, f"reading the usage estimate of job {job_id}") or {}
        except BackendError:
            estimation = {}
        estimated = _seconds(estimation.get("quantum_seconds"))
        metrics = _runtime_call(job.metrics, f"reading the usage of job {job_id}") or {}
        usage = metrics.get("usage") or {}
        # As RuntimeJobV2.usage() reads it: no status means not computed yet.
        if usage.get("status", "pending") == "pending":
            return ProviderUsage(final=False, estimated_quantum_seconds=estimated)
        # IBM bills in resource units now (``usage.value``, IBM's guide "Migrate to
        # resource units"); the time fields go in a later release. Every shape is read:
        # seconds only (before RUs), both (today), RUs only (after).
        seconds = usage.get("qpu_charge_time_seconds", usage.get("quantum_seconds"))
        units = _seconds(usage.get("value"))  # (a non-negative number, as seconds are)
        return ProviderUsage(
            quantum_seconds=_seconds(seconds), estimated_quantum_seconds=estimated,
            value=units, unit=None if units is None else str(usage.get("unit") or RESOURCE_UNIT),
        )

    def estimate_cost(
        self, profile: DeviceProfile, job_sizes: Sequence[int], shots: int, prices: PriceTable, timing: ShotTiming | None = None
    ) -> CostEstimate | None:
        """QPU time by IBM's documented estimate: the overhead of each job, plus
        (rep_delay + circuit duration) for each execution and shot, at the
        pay-as-you-go price per second. ``timing``: a shot as the run runs it
        (shot_timing), else the paper's map at the default rep_delay."""
        jobs, total_shots = len(job_sizes), sum(job_sizes) * shots
        timing = timing or profile.timing
        if timing is None:
            per_shot, how = prices["ibm_seconds_per_shot"], f"{prices['ibm_seconds_per_shot'] * 1e6:g} us a shot (no timing of {self.name} known)"
        else:
            per_shot = timing.rep_delay + timing.circuit
            how = f"rep_delay {timing.rep_delay * 1e6:g} us + circuit {timing.circuit * 1e6:.2f} us a shot, from {timing.source}"
        seconds = jobs * prices["ibm_seconds_per_job"] + total_shots * per_shot
        per_second = prices["ibm_usd_per_qpu_second"]
        detail = f"about {math.ceil(seconds):,} QPU s for {jobs} job(s) and {total_shots:,} shots ({how}) at ${per_second}/s"
        return CostEstimate(seconds * per_second, detail, prices.taken, quantum_seconds=seconds)

    def job_cost(self, job: JobUsage, prices: PriceTable) -> float | None:
        """What IBM billed the job: its resource units at the run's price per
        RU where IBM reported them, else its QPU seconds at the price per second."""
        reported = job.reported
        if reported.value is not None and reported.unit == RESOURCE_UNIT:
            return reported.value * prices["ibm_usd_per_resource_unit"]
        seconds = reported.quantum_seconds
        return None if seconds is None else seconds * prices["ibm_usd_per_qpu_second"]

    def allowance(self) -> Allowance | None:
        """What the instance's plan has left this period (``QiskitRuntimeService.usage()``);
        None where the service gives no limit (an older service, a plan without one).

        Raises:
            ProviderAnswerError: IBM's answer cannot be read (Runtime's own
                ``usage()`` fails on it, as its every job submission would).
        """
        service = self._service_or_error()
        try:
            usage = service.usage() or {}
        except (TypeError, ValueError, KeyError, AttributeError) as err:  # Runtime's sums over IBM's fields
            raise ProviderAnswerError(
                f"IBM Quantum's usage of the instance cannot be read ({type(err).__name__}: {err}): Runtime cannot submit a job "
                "while IBM answers so"
            ) from err
        except Exception as err:
            raise _translate(err, "reading the instance's usage") from err
        if not isinstance(usage, dict):
            raise ProviderAnswerError(f"IBM Quantum's usage of the instance is not a document ({type(usage).__name__})")
        return usage_allowance(usage)

    def _job(self, job_id: str) -> Any:
        """The job, looked up once per adapter: the RuntimeJobV2 asks IBM for
        its state itself, and keeps it once final."""
        if job_id not in self._jobs:
            service = self._service_or_error()
            self._jobs[job_id] = _runtime_call(lambda: service.job(job_id), f"looking up job {job_id}")
        return self._jobs[job_id]


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
def _timing_of(device: Any, source: str) -> ShotTiming | None:
    from qiskit.transpiler import generate_preset_pass_manager

    from qhw.circuits import feature_map

    rep_delay = getattr(device, "default_rep_delay", None) or getattr(device.configuration(), "default_rep_delay", None)
    if rep_delay is None:
        return None
    circuit = generate_preset_pass_manager(optimization_level=1, target=device.target, seed_transpiler=0).run(feature_map())
    return ShotTiming(float(rep_delay), float(circuit.estimate_duration(device.target)), source)


@functools.lru_cache(maxsize=64)
def _template_seconds(device: Any, template_qpy: bytes) -> float:
    """How long a template lasts, compiled for a device's target (its final measurement included)."""
    from qiskit.transpiler import generate_preset_pass_manager

    compiled = generate_preset_pass_manager(optimization_level=1, target=device.target, seed_transpiler=0).run(circuits.from_qpy(template_qpy))
    return float(compiled.estimate_duration(device.target))


def _longest(operation: str, target: Any) -> float | None:
    """The longest duration the target gives ``operation`` on any qubit (None: none given)."""
    if operation not in target:
        return None
    durations = [p.duration for p in target[operation].values() if p is not None and p.duration is not None]
    return max(durations) if durations else None


def _rep_delay_range(device: Any) -> tuple[float, float] | None:
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
    return _timing_of(device, source)


def _max_shots(device: Any) -> int:
    conf = getattr(device, "_conf_dict", None) or {}
    if "max_shots" in conf:
        return int(conf["max_shots"])
    if hasattr(device, "configuration"):
        return int(getattr(device.configuration(), "max_shots", DEFAULT_MAX_SHOTS))
    return DEFAULT_MAX_SHOTS


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
    (156 qubits, about 5,000 errors) takes 15 to 30 s to build, the 350
    instructions of a packed run a few seconds. Delays' relaxation (Aer's pass) is left out: the noisy engine refuses
    circuits with delays. A test holds the channels equal to the whole model's.
    """
    from qiskit_aer.noise import NoiseModel
    from qiskit_aer.noise.device import basic_device_gate_errors, basic_device_readout_errors
    from qiskit_ibm_runtime.models import BackendProperties

    document = _properties_document(device)
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


@functools.cache
def _device_channels(device: Any) -> DeviceChannels:
    """The noisy engine's channels of a fake device, shared by every emulator
    of it in this process (a device's properties are read once)."""
    return DeviceChannels(device)


class DeviceChannels:
    """A fake device's noise as the noisy engine applies it: the channels of
    the noise model the device builds for itself (device_noise_model, Aer's
    device model read from its properties at temperature 0), computed here as
    superoperators from the same figures with Aer's own rules.

    Why not Aer's objects: building them (QuantumError algebra, then a
    conversion to a channel) takes about 10 ms an instruction, 4 s for the
    350 instructions of a packed fake_fez run in every worker process; the
    matrices themselves take microseconds. The figures are read with Aer's
    public readers (gate_param_values, thermal_relaxation_values,
    readout_error_values); the rules are those of
    qiskit_aer.noise.device.models (0.18): thermal relaxation for the gate's
    length on each of its qubits (T2 capped at 2 T1), then a depolarizing
    error whose parameter makes the gate's average infidelity the reported
    gate error (none when relaxation alone exceeds it), applied depolarizing
    first. A test holds every channel of fake_manila's model, and of a sample
    of fake_fez's, equal to Aer's to 1e-12.
    """

    def __init__(self, device: Any) -> None:
        from qiskit_aer.noise.device.parameters import gate_param_values, readout_error_values, thermal_relaxation_values

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
        if value is None or np.allclose(value, [0, 0]):
            return None
        # Aer's ReadoutError [[P(0|0), P(1|0)], [P(0|1), P(1|1)]], transposed: P[recorded, true].
        return np.array([[1 - value[0], value[0]], [value[1], 1 - value[1]]]).T

    def _channel(self, name: str, qubits: tuple[int, ...]) -> np.ndarray | None:
        from qhw.backends._density import depolarizing_superop, tensor_superops, thermal_relaxation_superop

        if (name, qubits) not in self._gates:
            return None
        length, error = self._gates[(name, qubits)]
        relaxation = None
        if length:
            ones = []
            for qubit in qubits:
                t1, t2, _ = self._relaxation[qubit]
                t1 = math.inf if t1 is None else t1
                t2 = 2 * t1 if t2 is None else min(t2, 2 * t1)
                ones.append(thermal_relaxation_superop(t1, t2, length))
            relaxation = tensor_superops(ones)
        depolarizing = None
        dim = 2 ** len(qubits)
        fidelity = 1.0 if relaxation is None else (np.trace(relaxation).real / dim**2 * dim + 1) / (dim + 1)
        if error is not None and error > 1 - fidelity:
            error = min(error, dim / (dim + 1))
            parameter = dim * (error - (1 - fidelity)) / (dim * fidelity - 1)
            parameter = min(parameter, 4 ** len(qubits) / (4 ** len(qubits) - 1))
            depolarizing = depolarizing_superop(parameter, len(qubits))
        if depolarizing is not None and relaxation is not None:
            return relaxation @ depolarizing  # the depolarizing error first (Aer's depol.compose(relax))
        return depolarizing if depolarizing is not None else relaxation


@functools.cache
def _properties_of(device: Any) -> dict:
    return device.properties().to_dict()


def _properties_document(device: Any) -> dict:
    """The device's properties as a document, read once a process; the
    caller may replace its top-level entries (a shallow copy each call)."""
    return dict(_properties_of(device))


def _fake_device(name: str) -> Any | None:
    """The fake device ``name`` (fake_<folder>), built alone: Runtime's
    FakeProviderForBackendV2 builds all 60-odd of them, reading each one's
    JSON (0.2 s, every submit)."""
    import importlib

    from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

    if name not in _fake_configurations():
        return None
    module = importlib.import_module(f"qiskit_ibm_runtime.fake_provider.backends.{name[len(FAKE_PREFIX):]}")
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, FakeBackendV2) and getattr(value, "backend_name", None) == name:
            # Some fake devices warn about their own placeholder properties.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return value()
    return None


def _qubits(device: Any) -> int:
    """Qubit count from a fake device's configuration, without building its
    full target (which reads every calibration: 60 ms a device)."""
    conf = getattr(device, "_conf_dict", None) or {}
    return int(conf["n_qubits"]) if "n_qubits" in conf else device.num_qubits


def usage_allowance(usage: dict) -> Allowance | None:
    """``QiskitRuntimeService.usage()``'s document as an Allowance, its figures
    checked against each other: a remaining figure that does not follow from
    the limit and the consumption (Runtime computes it as the limit less the
    consumption, floored at 0: a negative consumption gives more left than the
    limit) is unknown, not believed. None where IBM gives no limit."""
    raw_remaining = usage.get("usage_remaining_seconds")
    if raw_remaining is None:
        return None
    plan = str(usage.get("plan_id") or "unknown")
    limit = _seconds(usage.get("usage_limit_seconds", usage.get("usage_allocation_seconds")))
    consumed = _seconds(usage.get("usage_consumed_seconds"))
    remaining = _seconds(raw_remaining)
    doubt = None
    if remaining is None:
        doubt = f"it gives {raw_remaining!r} seconds left"
    elif "usage_consumed_seconds" in usage and consumed is None:
        doubt = f"it gives {usage.get('usage_consumed_seconds')!r} seconds consumed"
    elif limit is not None and remaining > limit:
        doubt = f"it gives {remaining:,.0f} s left of a {limit:,.0f} s limit"
    elif limit is not None and consumed is not None and abs(remaining - max(limit - consumed, 0.0)) > 1e-6 * max(limit, 1.0):
        doubt = f"{remaining:,.0f} s left is not the {limit:,.0f} s limit less the {consumed:,.0f} s consumed"
    return Allowance(
        plan=plan, consumed=consumed, limit=limit, remaining=None if doubt else remaining, unit="QPU s",
        # As Runtime's own check before every job reads the flag.
        limit_reached=bool(usage.get("usage_limit_reached")), doubt=None if doubt is None else f"IBM's usage answer does not add up: {doubt}",
    )


def _seconds(value: Any) -> float | None:
    """A number of seconds IBM reported, or None when it reported none (or no number)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _fake_twin(name: str) -> Any | None:
    """The fake of a real device (ibm_fez -> fake_fez), for its published qubit count."""
    twin = FAKE_PREFIX + name[len(REAL_PREFIX) :]
    return _fake_device(twin)


def _runtime_call(call, what: str):
    try:
        return call()
    except (ConfigError, BackendError):
        raise
    except Exception as err:
        raise _translate(err, what) from err


#: HTTP statuses worth asking again (Runtime's own session retries 5xx a few
#: times first; throttling and outages outlast that).
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 521, 522, 524})


def _translate(err: Exception, what: str) -> Exception:
    """Runtime's errors, named by class so that importing them stays lazy."""
    kind = type(err).__name__
    if kind == "AccountNotFoundError":
        return CredentialsError(f"no IBM Quantum credentials: {CREDENTIALS_HELP}")
    status = _http_status(err)
    if kind in ("IBMNotAuthorizedError", "InvalidAccountError") or status == 401:
        return CredentialsError(f"IBM Quantum rejected the credentials ({err}): {CREDENTIALS_HELP}")
    if kind == "QiskitBackendNotFoundError":
        return ConfigError(f"IBM Quantum has no device you can use by that name ({err})")
    if kind == "RuntimeJobNotFound":
        return JobNotFoundError(f"IBM Quantum has no job: {err}")
    if kind in ("RuntimeJobFailureError", "RuntimeJobMaxTimeoutError"):
        return JobFailedError(f"IBM Quantum failed the job: {err}")
    # -1: Runtime got no HTTP answer at all (a connection error or an outage page).
    if status in TRANSIENT_STATUSES or status == -1 or _is_network_error(err):
        return TransientBackendError(f"IBM Quantum did not answer while {what}: {err}")
    return BackendError(f"IBM Quantum failed while {what}: {kind}: {err}")


def _chain(err: BaseException | None) -> Iterator[BaseException]:
    """The error and those it was raised from or during (Runtime re-raises
    RequestsApiError as IBMRuntimeError ``from None``; the original stays in
    ``__context__``)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _http_status(err: Exception) -> int | None:
    for link in _chain(err):
        status = getattr(link, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _is_network_error(err: Exception) -> bool:
    import requests

    return any(
        isinstance(link, (ConnectionError, TimeoutError, requests.exceptions.ConnectionError, requests.exceptions.Timeout))
        for link in _chain(err)
    )
