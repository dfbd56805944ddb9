"""IBM Quantum through qiskit-ibm-runtime.

``ibm_<device>`` runs on a real device through QiskitRuntimeService;
``fake_<device>`` runs the same code in Runtime's local testing mode (SamplerV2
with a fake backend, the device's calibrated noise). Both transpile once per
run with the preset pass manager at level 3 against the device target and
submit SamplerV2 jobs with parameter broadcasting, in a Runtime Batch when a
run needs several jobs. A later process finds remote jobs again with
``service.job(id)``, and a job whose id was never stored (a crash between
IBM's answer and the commit) with ``service.jobs(job_tags=["qhw-key=..."])``.

The adapter's rooms, as the Braket adapter's: devices and their registry
(``_ibm_devices``), calibration and timing (``_ibm_calibration``), Runtime's
answers and errors (``_ibm_runtime``); this module is the provider module
(``create``, ``PRICES``) and the two backends.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from qhw import circuits, settings
from qhw.backend import (
    LOCAL_SHOTS_PER_JOB,
    Allowance,
    Backend,
    BackendLimits,
    DeviceProfile,
    Executable,
    JobResult,
    JobStatus,
    LocalBackend,
    RemoteBackend,
    ShotTiming,
)
from qhw.backends._added_noise import device_facts, with_added_noise
from qhw.backends._engines import DensityEmulation
from qhw.backends._ibm_calibration import (
    calibration_snapshot,
    device_channels,
    device_graph,
    longest,
    rep_delay_range,
    shot_timing,
    template_seconds,
)
from qhw.backends._ibm_devices import (
    DEFAULT_MAX_SHOTS,
    FAKE_PREFIX,
    REAL_PREFIX,
    catalogue,
    credentials_configured,
    device_qubits,
    fake_device,
    fake_twin,
    kept_across_runs,
    max_shots,
)
from qhw.backends._ibm_runtime import CREDENTIALS_HELP, reported_seconds, runtime_call, translate, usage_allowance
from qhw.backends._qiskit_jobs import job_status, local_job_counts, mapped_counts
from qhw.device_mitigation import DeviceMitigation
from qhw.errors import (
    BackendError,
    ConfigError,
    CredentialsError,
    ProviderAnswerError,
)
from qhw.feature_maps import MIN_QUBITS
from qhw.pricing import CostEstimate, PriceTable
from qhw.records import CalibrationSnapshot, JobUsage, ProviderUsage

if TYPE_CHECKING:
    from qhw.store.artifacts import ArtifactStore

#: IBM Quantum accepts at most this many executions (circuits x shots) per job.
MAX_EXECUTIONS_PER_JOB = 10_000_000
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


def create(name: str, *, seed: int | None = None, artifacts: ArtifactStore | None = None) -> Backend | None:
    if name.startswith(REAL_PREFIX):
        return IBMQPU(name, seed=seed)
    if not name.startswith(FAKE_PREFIX):
        return None
    device = fake_device(name)
    if device is None:
        return None
    if device_qubits(device) < MIN_QUBITS:
        raise ConfigError(f"{name} has {device_qubits(device)} qubit(s); a feature map needs at least {MIN_QUBITS}")
    return IBMEmulator(name, kept_across_runs(device), seed=seed)


def listing_grace() -> float:
    """How long IBM's job listing is given to show a job (see LISTING_GRACE_SECONDS)."""
    return settings.seconds(LISTING_GRACE_ENV, LISTING_GRACE_SECONDS, 0.0, 86_400.0)


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
            self.name, device_qubits(device), self._limits(max_shots(device)), device_graph(target), live=live,
            unavailable=unavailable, timing=shot_timing(device, source),
            # IBM's devices measure and reset mid-circuit where their target lists both (FakeFez: measure 1.6 us, reset 1.6 us).
            mid_circuit_reset="measure" in target and "reset" in target,
            reset_seconds=longest("reset", target), rep_delay_range=rep_delay_range(device),
        )

    def shot_timing(self, profile: DeviceProfile, template, reuse: int = 1, rep_delay: float | None = None) -> ShotTiming | None:
        """A shot of ``template`` run ``reuse`` times in a row on the device
        ``profile`` describes: the rep_delay (``rep_delay``, or the device's
        default), then the template compiled for the device's target, measured
        and reset before each next position (``estimate_duration``, as IBM's
        guide to estimating usage does); None without a timing."""
        if profile.timing is None:
            return None
        device = self._device if profile.live and self._device is not None else fake_twin(self.name) or self._device
        position = template_seconds(device, circuits.to_qpy(template)) if device is not None else profile.timing.circuit
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
        self.num_qubits = device_qubits(device)
        self._parts: circuits.PerCircuit[list] = circuits.PerCircuit(size=1)  # one run at a time

    takes_noise = True

    def _compile(self, executable: Executable) -> Any:
        """The circuit with the channels of the qubits it uses, read from the
        device's properties, and what --noise adds written into it."""
        from qhw.backends import _density

        noise = executable.noise
        if noise is None:
            return _density.compile_circuit(executable.circuit, device_channels(self._device))
        program = _density.compile_circuit(self._noisy_circuit(executable), device_channels(self._device, noise.scale, noise.readout))
        program.one_job = noise.drift > 0  # each job its own channels (its drift): built for that job alone
        return program

    def _noisy_circuit(self, executable: Executable) -> Any:
        """The executable's circuit with --noise's channels written in (backends/_added_noise.py)."""
        assert executable.noise is not None
        facts = device_facts(self._device, executable.noise.rep_delay)
        copies = [executable.copy_layout(c) for c in range(executable.copies)]
        return with_added_noise(executable.circuit, executable.noise, facts, copies)

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
        # Jobs small enough to spread over worker processes (under a second
        # each at 1,024 shots) and to keep memory flat.
        return BackendLimits(max_shots=max_shots, max_circuits_per_job=LOCAL_CIRCUITS_PER_JOB).capped(LOCAL_SHOTS_PER_JOB)

    def _copies(self, executable: Executable) -> list:
        """Each copy's circuit alone, made once per executable (a run's jobs share it)."""
        return self._parts.get(executable.circuit, lambda: [executable.copy(c).circuit for c in range(executable.copies)])

    def use_threads(self, threads: int | None) -> None:
        # Local mode runs the fake device's own AerSimulator with the device's options.
        self._device.set_options(max_parallel_threads=threads or 0)

    def run(self, executable: Executable, parameter_values: np.ndarray, shots: int, *, seed: int | None = None) -> JobResult:
        seed = seed if seed is not None else self._seed
        if executable.engine != "aer":
            return self._engine_counts(executable, parameter_values, shots, seed)
        if executable.noise is not None:
            return self._run_noisy_on_aer(executable, parameter_values, shots, seed)
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

    def _run_noisy_on_aer(self, executable: Executable, parameter_values: np.ndarray, shots: int, seed: int | None) -> JobResult:
        """--engine aer with --noise: the circuit with the added channels
        written in, each copy alone, on Aer's own sampler with the device's
        noise model scaled as the spec says (Runtime's local mode runs a fake
        device with its own model only)."""
        from qiskit_aer.primitives import SamplerV2 as AerSampler

        from qhw.backends._ibm_calibration import scaled_noise_model
        from qhw.circuits import copy_columns

        noise = executable.noise
        assert noise is not None
        noisy = dataclasses.replace(executable, circuit=self._noisy_circuit(executable))
        parts = [noisy.copy(c).circuit for c in range(noisy.copies)] if noisy.copies > 1 else [noisy.circuit]
        instructions = frozenset(
            (i.operation.name, tuple(noisy.circuit.find_bit(q).index for q in i.qubits)) for i in noisy.circuit.data
        )
        model = scaled_noise_model(self._device, instructions, noise.scale, noise.readout)
        options: dict = {"backend_options": {"noise_model": model}}
        if seed is not None:
            options["run_options"] = {"seed_simulator": seed + 1}
        primitive = AerSampler(options=options)
        pubs = [(part, np.ascontiguousarray(parameter_values[:, copy_columns(noisy.circuit, part)])) for part in parts]
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
        twin = fake_twin(name)
        self.num_qubits = device_qubits(twin) if twin is not None else 0  # as published, before the device is read
        self.listing_grace_seconds = listing_grace()
        self.takes_device_mitigation = True  # (SamplerV2's twirling and dynamical_decoupling options)

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
            self._service = runtime_call(runtime_service, "connecting to IBM Quantum")
        return self._service

    def _load_device(self) -> Any:
        if self._device is None:
            service = self._service_or_error()
            self._device = runtime_call(lambda: service.backend(self.name), f"looking up {self.name}")
        return self._device

    def profile(self, *, offline: bool = False, document: str | None = None) -> DeviceProfile:
        """Offline, from the snapshot qiskit-ibm-runtime ships of the device
        (fake_fez for ibm_fez; IBM's documents are kept with runs too, but the
        shipped snapshot is read the same way as the live device); live, the
        device and its status, read now."""
        if offline and self._device is None:
            twin = fake_twin(self.name)
            if twin is None:
                return DeviceProfile(self.name, 0, self._limits(DEFAULT_MAX_SHOTS))
            return self._profile_of(twin, live=False, source=f"qiskit-ibm-runtime's snapshot of {self.name} ({twin.name})")
        device = self._load_device()
        status = runtime_call(device.status, f"reading the status of {self.name}")
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

        batch = runtime_call(lambda: Batch(backend=self._load_device()), f"opening a batch on {self.name}")
        self._mode = batch
        try:
            yield
        finally:
            self._mode = None
            # Closing stops new jobs; those submitted still run.
            runtime_call(batch.close, "closing the batch")

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
        # Runtime has no idempotency token: the key travels as a tag
        # (qhw-key=...), by which find_job finds the job after a crash.
        primitive = sampler(self._mode or self._load_device())
        primitive.options.environment.job_tags = list(tags)
        if rep_delay is not None:
            primitive.options.execution.rep_delay = rep_delay
        if device_mitigation is not None:
            for group, values in device_mitigation.sampler_options().items():
                for name, value in values.items():
                    setattr(getattr(primitive.options, group), name, value)
        job = runtime_call(lambda: primitive.run([(executable.circuit, parameter_values)], shots=shots), f"submitting to {self.name}")
        return job.job_id()

    def find_job(self, idempotency_key: str, since: datetime) -> str | None:
        service = self._service_or_error()
        found = runtime_call(
            lambda: service.jobs(job_tags=[f"qhw-key={idempotency_key}"], created_after=since, backend_name=self.name, limit=10),
            f"looking for the job tagged qhw-key={idempotency_key}",
        )
        # Oldest first: were there two, the first is the one to keep.
        return found[-1].job_id() if found else None

    def status(self, job_id: str) -> JobStatus:
        job = self._job(job_id)
        return runtime_call(lambda: job_status(job), f"polling job {job_id}")

    def result(self, job_id: str, *, executable: Executable, executions: int, shots: int) -> JobResult:
        result = runtime_call(self._job(job_id).result, f"fetching job {job_id}")
        return mapped_counts(result, executable, executions)

    def cancel(self, job_id: str) -> None:
        job = self._job(job_id)
        # RuntimeJobV2.cancel() marks itself cancelled once IBM took the request;
        # the job is looked up afresh, so that its status is IBM's answer.
        self._jobs.pop(job_id, None)
        try:
            runtime_call(job.cancel, f"cancelling job {job_id}")
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
            estimation = runtime_call(lambda: job.usage_estimation, f"reading the usage estimate of job {job_id}") or {}
        except BackendError:
            estimation = {}
        estimated = reported_seconds(estimation.get("quantum_seconds"))
        metrics = runtime_call(job.metrics, f"reading the usage of job {job_id}") or {}
        usage = metrics.get("usage") or {}
        # As RuntimeJobV2.usage() reads it: no status means not computed yet.
        if usage.get("status", "pending") == "pending":
            return ProviderUsage(final=False, estimated_quantum_seconds=estimated)
        # IBM bills in resource units now (``usage.value``, IBM's guide "Migrate to
        # resource units"); the time fields go in a later release. Every shape is read:
        # seconds only (before RUs), both (today), RUs only (after).
        seconds = usage.get("qpu_charge_time_seconds", usage.get("quantum_seconds"))
        units = reported_seconds(usage.get("value"))  # (a non-negative number, as seconds are)
        return ProviderUsage(
            quantum_seconds=reported_seconds(seconds), estimated_quantum_seconds=estimated,
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
            raise translate(err, "reading the instance's usage") from err
        if not isinstance(usage, dict):
            raise ProviderAnswerError(f"IBM Quantum's usage of the instance is not a document ({type(usage).__name__})")
        return usage_allowance(usage)

    def _job(self, job_id: str) -> Any:
        """The job, looked up once per adapter: the RuntimeJobV2 asks IBM for
        its state itself, and keeps it once final."""
        if job_id not in self._jobs:
            service = self._service_or_error()
            self._jobs[job_id] = runtime_call(lambda: service.job(job_id), f"looking up job {job_id}")
        return self._jobs[job_id]


