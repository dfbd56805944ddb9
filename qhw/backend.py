"""The one backend contract and the registry that finds adapters by name.

An adapter lives in backends/ (installed as qhw.backends) or in a third-party
package that registers a *provider module* under the ``qhw.backends`` entry
point group. A provider module exposes::

    def backend_names() -> list[str]            # every name it can create
    def create(name: str, *, seed: int | None, artifacts: ArtifactStore | None) -> Backend | None
        # None when the name is not its own; ``artifacts``: where a name that is a
        # stored object's reference (a run's device document) is read
    PRICES: dict[str, float | dict[str, float]] # optional: its prices, by key (see qhw.pricing)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, runtime_checkable

import numpy as np

from qhw.device_mitigation import DeviceMitigation
from qhw.errors import UnknownBackendError
from qhw.jobstates import JobState
from qhw.noise import NoiseSpec
from qhw.packing import DeviceGraph
from qhw.pricing import CostEstimate, PriceTable
from qhw.providers import provider_modules
from qhw.records import DEVICE_KINDS, CalibrationSnapshot, JobUsage, ProviderUsage  # noqa: F401 (part of the contract)

if TYPE_CHECKING:
    from qhw.store.artifacts import ArtifactStore

#: A local simulator keeps every shot of a job in memory until the job ends
#: (measured: 160 to 290 bytes a shot on Aer, IBM's fake devices and Braket's
#: local simulators), so a local job carries at most this many shots, circuits
#: times shots: a few hundred MB at the most, whatever --shots is. It also
#: bounds how long a job runs, and so how soon Ctrl-C is answered.
LOCAL_SHOTS_PER_JOB = 2**20


@dataclass(frozen=True)
class BackendLimits:
    """What one job may carry; checked before anything is submitted."""

    max_shots: int
    min_shots: int = 1
    max_executions_per_job: int | None = None  # circuits x shots
    max_circuits_per_job: int | None = None

    def capped(self, total_shots: int) -> BackendLimits:
        """These limits with at most ``total_shots`` shots a job (and a circuit)."""
        executions = total_shots if self.max_executions_per_job is None else min(self.max_executions_per_job, total_shots)
        return BackendLimits(
            max_shots=min(self.max_shots, total_shots),
            min_shots=self.min_shots,
            max_executions_per_job=executions,
            max_circuits_per_job=self.max_circuits_per_job,
        )

    def circuits_per_job(self, shots: int) -> int:
        """How many circuit executions fit in one job at ``shots`` shots."""
        caps = []
        if self.max_circuits_per_job is not None:
            caps.append(self.max_circuits_per_job)
        if self.max_executions_per_job is not None:
            caps.append(self.max_executions_per_job // shots)
        # Shots are checked against max_shots first, so at least one circuit fits.
        return max(1, min(caps)) if caps else 2**31 - 1


@dataclass(frozen=True)
class Executable:
    """The template transpiled for one device; stored with the run.

    A packed executable (see :func:`qhw.circuits.packed`) holds ``copies``
    copies of the template side by side, each run ``reuse`` times in a row
    in a shot (measured, then reset); each of its ``slots`` (a copy at a
    position) has its own parameters and classical register. ``layout``
    lists every copy's physical qubits, copy after copy.
    """

    circuit: Any  # qiskit.QuantumCircuit
    layout: tuple[int, ...]  # the physical qubit of logical qubit i (of copy i // width), by the device's own label
    copies: int = 1
    reuse: int = 1
    #: How an emulation computes it (one of its backend's ``engines``); None: the backend has one way.
    engine: str | None = None
    #: What ``--noise`` adds to an emulated device's own noise (a job's, its drift drawn); None: nothing.
    noise: NoiseSpec | None = None

    @property
    def slots(self) -> int:
        """Logical executions one execution of it carries: copies times positions."""
        return self.copies * self.reuse

    @property
    def width(self) -> int:
        """Qubits of one copy."""
        return len(self.layout) // self.copies

    def copy_layout(self, copy: int) -> tuple[int, ...]:
        """The physical qubits of one copy, in the template's qubit order."""
        return self.layout[copy * self.width : (copy + 1) * self.width]

    def copy(self, copy: int) -> Executable:
        """One copy of a packed executable alone, at every position: its
        instructions as compiled, on its own physical qubits (so a device
        model gives it its own qubits' noise, its resets' included)."""
        from qhw.circuits import copy_circuit

        circuit = copy_circuit(self.circuit, copy, copies=self.copies, reuse=self.reuse)
        mine = self.copy_layout(copy)
        # The other copies' qubits are in use beside it: --noise's crosstalk finds them busy, not idle.
        noise = None if self.noise is None else replace(self.noise, busy_qubits=tuple(q for q in self.layout if q not in mine))
        return Executable(circuit=circuit, layout=mine, reuse=self.reuse, engine=self.engine, noise=noise)


@dataclass(frozen=True)
class JobStatus:
    state: JobState
    error: str | None = None
    # A failed job that still holds the results of what ran (a Braket program
    # set whose executables partly failed): they are fetched and stored.
    results_available: bool = False


@dataclass(frozen=True)
class JobResult:
    """What a finished job measured, execution by execution.

    ``counts[e * copies + c]`` holds the canonical counts of copy ``c`` of the
    job's execution ``e`` (``counts[e]`` for an executable of one copy), as
    the provider's own indices place it; an execution the provider failed (a
    program set's failed executable, say) is in ``failed`` with the
    provider's reason, and its rows of ``counts`` are zero and never stored.
    """

    counts: np.ndarray  # (executions * copies, 2**qubits of a copy)
    failed: Mapping[int, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.failed



@dataclass(frozen=True)
class ShotTiming:
    """How long a shot keeps a device busy, where a provider bills by time (IBM)."""

    rep_delay: float  # seconds between shots (the device's default, or what the run asks)
    circuit: float  # seconds the circuit of a shot lasts (every position, its measurements and resets)
    source: str  # where the figures come from (the live device, or a snapshot of it)

    @property
    def seconds(self) -> float:
        """A shot: the pause before it and its circuit."""
        return self.rep_delay + self.circuit


@dataclass(frozen=True)
class PublishedPrice:
    """A price the device publishes of itself (Braket's ``service.deviceCost``)."""

    key: str  # the price table's key (qhw.pricing)
    device: str  # the device's name in that table
    usd: float
    source: str


@dataclass(frozen=True)
class Allowance:
    """What an account's plan allows this period and what is left of it (IBM's Open plan: 600 QPU s every 28 days).

    ``remaining`` is None where the provider's figures do not add up (a
    negative consumption, more left than the limit): unknown, never believed;
    ``doubt`` says why. ``limit_reached`` is the provider's own verdict (IBM's
    ``usage_limit_reached``), whatever the figures say."""

    plan: str
    consumed: float | None
    limit: float | None
    remaining: float | None
    unit: str  # of the three figures ("QPU s")
    limit_reached: bool = False
    doubt: str | None = None


@dataclass(frozen=True)
class DeviceProfile:
    """What a device offers, as one frozen value: its qubits, what a job may
    carry, its couplers and calibration (for packing), its timing and its own
    prices. An adapter gives it offline (from what ships with its SDK, or a
    document kept with an earlier run: no network) or live (the device read
    now); qhw.planning plans a run from it. Nothing about a backend changes
    when a profile is read."""

    name: str
    qubits: int  # 0 when not known (a device never read, with no snapshot)
    limits: BackendLimits
    graph: DeviceGraph | None = None  # None: a simulator (no topology), or nothing known offline
    live: bool = False
    unavailable: str | None = None  # why the device takes no jobs now (known live only)
    published_price: PublishedPrice | None = None
    timing: ShotTiming | None = None  # of the paper's map at the default rep_delay (IBM)
    #: Whether a circuit may measure and reset qubits mid-circuit and run on
    #: (``--reuse``): a device whose target has both; an ideal simulator (qhw
    #: runs each position alone, which is exact); never Braket's devices
    #: (qhw reads their results by measured qubit, which a reused qubit repeats).
    mid_circuit_reset: bool = False
    reset_seconds: float | None = None  # a reset's duration, where the device publishes it
    rep_delay_range: tuple[float, float] | None = None  # the rep_delay a run may ask (seconds), where the device takes one


@runtime_checkable
class Backend(Protocol):
    """A device or simulator that runs the feature map on arrays of angles:
    what every backend offers. A backend is also a :class:`LocalBackend` (its
    jobs run in the calling process: simulators and emulations) or a
    :class:`RemoteBackend` (its jobs live at a provider).

    Errors: every method raises qhw errors, classified by the adapter (which
    alone knows its provider): :class:`~qhw.errors.TransientBackendError` for
    what is worth repeating (network, timeouts, 429, 5xx, throttling),
    :class:`~qhw.errors.JobNotFoundError` for a job the provider does not know,
    :class:`~qhw.errors.CredentialsError` for missing or rejected credentials,
    and :class:`~qhw.errors.BackendError` for the provider's final refusals.
    """

    name: str
    provider: str  # "aer", "ibm", "braket", ...
    kind: str  # one of DEVICE_KINDS
    num_qubits: int  # as published, without reading the device (0: not known until read)
    is_paid: bool
    #: A LocalBackend (its jobs run in the calling process), else a RemoteBackend:
    #: the one kind value callers narrow by (is_local and is_remote below).
    is_local: bool

    @property
    def credentials_configured(self) -> bool | None:
        """Whether the credentials it needs are configured (no network); None: it needs none."""

    @property
    def description(self) -> str:
        """What runs the circuits, for reports: e.g. "emulation of ibm_lima (calibrated noise model)"."""

    def shared(self, artifacts: ArtifactStore) -> Backend:
        """The backend as a run records it, so that any machine of a team
        (and any Dask worker) works its jobs: itself, unless it is named by a
        file of this machine (an emulator of a device document is named by the
        document's object in ``artifacts`` instead)."""
        return self

    def check_credentials(self) -> None:
        """Raise CredentialsError, without the network, when the backend needs
        credentials and none are configured (the message says how to set them up)."""

    def profile(self, *, offline: bool = False, document: str | None = None) -> DeviceProfile:
        """What the device offers. ``offline``: only what is known without the
        network (a snapshot that ships with the SDK, or ``document``: the
        device's own properties kept with an earlier run); else the device as
        it is now (read once, then kept)."""

    def transpile(self, template, *, seed: int | None = None, initial_layout: Sequence[int] | None = None) -> Executable:
        """Compile the template once per run for this device's target (on
        ``initial_layout``'s physical qubits when given)."""

    def calibration(self, layout: Sequence[int]) -> CalibrationSnapshot | None:
        """The device's calibration as it stands now, for the physical qubits
        ``layout`` uses; None for a device without one (an ideal simulator)."""

    def shot_timing(self, profile: DeviceProfile, template, reuse: int = 1, rep_delay: float | None = None) -> ShotTiming | None:
        """How long a shot of ``template``, run ``reuse`` times in a row
        (measured and reset between), keeps the device busy at ``rep_delay``
        (None: the device's default); None where no device time is billed
        (a simulator, a provider that bills by shot). An emulation gives its
        device's, which is what running on the device would cost in time."""


@dataclass(frozen=True)
class EngineChoice:
    """How an emulation will compute a run, chosen once at submit and stored with it."""

    engine: str | None  # one of the backend's engines; None: it has one way only
    note: str | None = None  # why it is not the one asked for (or the default): said at submit, kept with the run


@runtime_checkable
class LocalBackend(Backend, Protocol):
    """A simulator or an emulation: a job runs where it is called, to its end."""

    #: Whether one ``run`` can hold every copy of a packed executable, each
    #: alone (IBM's fakes, which re-read the whole noise model each run);
    #: otherwise qhw.parallel runs the copies one after another.
    runs_copies_in_one_job: bool
    #: Whether ``--noise`` can make it harsher (an executable's ``noise``): an
    #: emulated device whose noise qhw computes (IBM's fakes).
    takes_noise: bool

    @property
    def engines(self) -> tuple[str, ...]:
        """The ways it can compute a job (``--engine``), its default first; () for one way only."""

    def check_noise(self, noise: NoiseSpec) -> None:
        """What ``--noise`` asks is something this device can take (its qubits, its settings).

        Raises:
            ParameterError: naming the item it cannot take.
        """

    def engine_for(self, executable: Executable, asked: str | None) -> EngineChoice:
        """The engine that will run ``executable``: ``asked`` (one of
        ``engines``) or the default, unless it cannot compute this circuit
        exactly; then another, with the reason in the note."""

    def limits_for(self, limits: BackendLimits, engine: str | None) -> BackendLimits:
        """The job limits when ``engine`` computes the run: ``limits`` (the
        profile's, which hold for every engine) or larger where the engine
        can take larger jobs."""

    def use_threads(self, threads: int | None) -> None:
        """How many threads the simulator may use (None: its own choice, all
        cores); qhw gives each of its worker processes one."""

    def needs_own_process(self, executable: Executable) -> bool:
        """Whether a job of ``executable`` may compute for long in native code
        that holds Python's interpreter lock (Aer's noisy simulation does, for
        a whole job): such jobs run in a worker process even for one worker,
        so that this process still answers Ctrl-C at once."""

    def run(self, executable: Executable, parameter_values: np.ndarray, shots: int, *, seed: int | None = None) -> JobResult:
        """Run ``len(parameter_values)`` executions and return their counts
        (see :meth:`RemoteBackend.result`); a packed executable only where
        ``runs_copies_in_one_job``.

        Raises:
            JobFailedError: the simulator failed the job (its verdict).
            ResultMappingError: its answer does not fit what it was given.
        """


class OneEngine:
    """A LocalBackend that computes a job one way only (no ``--engine``)."""

    takes_noise = False

    @property
    def engines(self) -> tuple[str, ...]:
        return ()

    def check_noise(self, noise: NoiseSpec) -> None:
        raise TypeError("a backend of one engine takes no --noise (takes_noise)")

    def needs_own_process(self, executable: Executable) -> bool:
        return False

    def engine_for(self, executable: Executable, asked: str | None) -> EngineChoice:
        return EngineChoice(None)

    def limits_for(self, limits: BackendLimits, engine: str | None) -> BackendLimits:
        return limits


@runtime_checkable
class RemoteBackend(Backend, Protocol):
    """A provider's device or managed simulator: jobs live at the provider and
    are followed by id; it costs money."""

    #: How long after a submission the provider's job listing may still not
    #: show the job (find_job): within it, "not found" is not yet an answer.
    listing_grace_seconds: float
    #: Whether its sampler applies the provider's own mitigation (IBM's
    #: twirling and dynamical decoupling: --mitigate twirling, dd).
    takes_device_mitigation: bool

    def batch(self, n_jobs: int) -> AbstractContextManager[None]:
        """A context around a run's submissions (e.g. a provider batch session)."""

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
        """Start one job of ``len(parameter_values)`` executions; return the provider's job id.

        ``tags`` ("name=value") go to the provider with the job; a provider
        that makes creation idempotent gets ``idempotency_key`` for it (a second
        call with the same key returns the first job). ``rep_delay``: the pause
        between shots the run asked for (a device whose profile gives a
        rep_delay range; None: its default). ``device_mitigation``: the
        provider's own mitigation the run asked for (a backend whose
        ``takes_device_mitigation``; None: none).
        """

    def find_job(self, idempotency_key: str, since: datetime) -> str | None:
        """The id of the provider's job tagged ``qhw-key=<idempotency_key>``,
        created at or after ``since``; None when the provider has no such job."""

    def status(self, job_id: str) -> JobStatus:
        """The normalised state of a job (raises JobNotFoundError if unknown)."""

    def result(self, job_id: str, *, executable: Executable, executions: int, shots: int) -> JobResult:
        """Counts (executions x copies, 2**qubits of a copy) in the canonical
        bit order of each copy's logical qubits, each execution placed by the
        provider's own indices, and the executions the provider failed.

        ``executable``, ``executions`` and ``shots`` are what the job was
        submitted with: an answer that does not fit them raises
        :class:`~qhw.errors.ResultMappingError` (nothing is guessed).
        """

    def cancel(self, job_id: str) -> None:
        """Ask the provider to cancel a job; a job already finished stays as it
        is (ask ``status`` for the provider's answer)."""

    def usage(self, job_id: str) -> ProviderUsage:
        """What the provider reports of a finished job's use;
        ``final=False`` while the provider has not finished computing it."""

    def estimate_cost(
        self, profile: DeviceProfile, job_sizes: Sequence[int], shots: int, prices: PriceTable, timing: ShotTiming | None = None
    ) -> CostEstimate | None:
        """Estimated price of jobs of these many executions each, at ``shots``
        shots, on the device ``profile`` describes (``timing``: a shot as the
        run runs it, from shot_timing); None when no price is known."""

    def job_cost(self, job: JobUsage, prices: PriceTable) -> float | None:
        """What one finished job cost, in USD, from what ran and what the
        provider reported; None when it cannot be known."""

    def allowance(self) -> Allowance | None:
        """What the account's plan has left this period, where the provider
        says (None: no limit known); may call the provider."""


def is_local(backend: Backend) -> TypeGuard[LocalBackend]:
    """Whether a backend's jobs run in this process (a simulator, an
    emulation): a type checker then sees what only a LocalBackend has."""
    return backend.is_local


def is_remote(backend: Backend) -> TypeGuard[RemoteBackend]:
    """Whether a backend's jobs live at a provider: a type checker then sees
    what only a RemoteBackend has (submit, status, allowance, ...)."""
    return not backend.is_local


def backend_names() -> list[str]:
    """Every backend name (or name pattern) the registry knows."""
    names: list[str] = []
    for module in provider_modules():
        names.extend(module.backend_names())
    return names


@dataclass(frozen=True)
class BackendEntry:
    """A row of ``qhw backends``: a backend as its provider module knows it
    without building it (no provider SDK imported where the module can help it)."""

    name: str
    provider: str
    kind: str
    qubits: int | None  # as published; None where it depends (on memory, or a file)
    is_paid: bool
    credentials_configured: bool | None  # None: it needs none


def catalogue() -> list[BackendEntry]:
    """Every concrete backend the registry can create, each provider module's
    ``catalogue()`` where it has one (else its backends, built one by one)."""
    rows: list[BackendEntry] = []
    for module in provider_modules():
        listing = getattr(module, "catalogue", None)
        if listing is not None:
            rows.extend(listing())
            continue
        for name in module.backend_names():
            backend = get_backend(name)
            rows.append(
                BackendEntry(backend.name, backend.provider, backend.kind, backend.num_qubits or None, backend.is_paid, backend.credentials_configured)
            )
    return rows



def get_backend(name: str, *, seed: int | None = None, artifacts: ArtifactStore | None = None) -> Backend:
    """Create the backend registered under ``name`` (``artifacts``: where a
    name that is an object's reference, a run's device document, is read).

    Raises:
        UnknownBackendError: no provider knows the name; the message names the
            closest known ones and points at ``qhw backends`` (the whole list
            is hundreds of characters: no line for an error).
    """
    import difflib

    from qhw.boundary import quoted

    for module in provider_modules():
        backend = module.create(name, seed=seed, artifacts=artifacts)
        if backend is not None:
            return backend
    close = difflib.get_close_matches(str(name), backend_names(), n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    raise UnknownBackendError(f"unknown backend {quoted(name)}{hint}; `qhw backends` lists them")
