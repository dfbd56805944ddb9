"""A run's plan, as a value: from what a device offers and what the user asks.

An adapter describes its device as a :class:`~qhw.backend.DeviceProfile`
(offline, from what ships with its SDK or a document kept with an earlier
run; or live). :func:`plan_run` turns a :class:`RunRequest` and a profile into
a :class:`RunPlan`: the copies an execution carries and where (qhw.packing),
the jobs and the shots each gets, the executions sent and the estimate.
``submit`` plans offline, guards the cost (:func:`guard_cost`) before any
network, then plans again from the live profile; ``retry`` plans the missing
executions (:func:`plan_retry`), an adaptive run its later rounds
(:func:`round_jobs`), ``compare`` a run's cost at other shots
(:func:`estimate_jobs`), all by the same rules.

Nothing here writes, submits or changes a backend.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qhw import feature_maps, packing
from qhw.backend import Backend, DeviceProfile, RemoteBackend, ShotTiming, is_local, is_remote
from qhw.errors import BackendError, ConfigError, ParameterError, ProviderAnswerError, QhwError
from qhw.pricing import CostEstimate, PriceTable, check_amount, sum_estimates
from qhw.records import JOB_PURPOSES, ExecutionFailureRecord, JobPlan, JobRecord, Packing, RunRecord, ceil_div

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

log = logging.getLogger("qhw.planning")

#: States the readout calibration prepares on each copy's qubits (qhw.circuits.calibration_rows).
CALIBRATION_STATES = 2
#: The most samples a copy's qubits run in one shot that ``--reuse auto``
#: chooses (see :func:`plan_reuse`; ``--reuse`` itself: qhw.packing.MAX_REUSE).
MAX_AUTO_REUSE = 16
#: ``--reuse auto`` reuses no qubits whose reset may leave a position starting
#: from a wrong state more often than this (see :func:`plan_reuse`).
MAX_REUSE_ERROR = 0.15


# --- what is asked ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRequest:
    """A run as the user asked for it, every input checked at the command's boundary.

    ``round_shots``: an adaptive run's shots a round (round 0 first); None
    for a run that gives every execution ``shots``.
    """

    executions: int  # the samples' executions: samples x circuits a sample
    shots: int  # shots an execution gets (an adaptive run's most)
    template: QuantumCircuit  # the feature map: its width, and whether it packs
    pack: int | None = 1  # copies an execution; None: as many as fit (--pack auto)
    spacing: int = 1
    mitigate: bool = False
    round_shots: tuple[int, ...] | None = None
    reuse: int | None = 1  # samples each copy's qubits run in a shot; None: as plan_reuse decides (--reuse auto)
    rep_delay: float | None = None  # the pause between shots to ask of the device (None: its default)
    quality_reserve: float | None = None  # --quality auto's reserve, a share of the run (None: off)

    @property
    def first_shots(self) -> int:
        return self.shots if self.round_shots is None else self.round_shots[0]


@dataclass(frozen=True)
class PackingPlan:
    """The copies an execution carries, and where they are."""

    copies: int
    partition: packing.Partition | None  # None: one copy where the compiler puts it, or a simulator's copies
    notes: tuple[str, ...] = ()

    def record(self) -> Packing | None:
        """What is stored with the run (None for a run of one copy placed by the compiler)."""
        if self.partition is None:
            return None if self.copies == 1 else Packing()
        return Packing(spacing=self.partition.spacing, estimated_errors=tuple(copy.estimated_error for copy in self.partition.copies))


@dataclass(frozen=True)
class RunPlan:
    """What a run sends, and what it is estimated to cost (at most, for an adaptive run)."""

    packing: PackingPlan
    calibrations: int  # the readout calibration's executions (every state on every slot)
    jobs: tuple[JobPlan, ...]  # the samples' first (or only) round, then the calibration's
    prices: PriceTable | None  # the table the estimate used (the device's own prices applied); None: free
    estimate: CostEstimate | None
    reuse: int = 1  # samples each copy's qubits run in a shot
    reuse_notes: tuple[str, ...] = ()

    @property
    def copies(self) -> int:
        return self.packing.copies

    @property
    def slots(self) -> int:
        """Samples' executions one execution carries: copies times positions."""
        return self.copies * self.reuse

    @property
    def executions_sent(self) -> int:
        """Executions the jobs send: a packed one carries ``slots`` logical executions."""
        return sum(sent_sizes(self.jobs, self.slots))

    @property
    def notes(self) -> tuple[str, ...]:
        return (*self.packing.notes, *self.reuse_notes)


# --- checks against a profile -------------------------------------------------------------------


def check_shots(profile: DeviceProfile, shots: int) -> None:
    """Raises ConfigError unless ``shots`` is within the device's range."""
    limits = profile.limits
    if not limits.min_shots <= shots <= limits.max_shots:
        raise ParameterError("shots", f"must be between {limits.min_shots} and {limits.max_shots} on {profile.name}, got {shots}")


def check_width(profile: DeviceProfile, template: QuantumCircuit, what: str) -> None:
    """A device narrower than the feature map is refused before anything is written
    (``what``: the feature map, for the message)."""
    if profile.qubits and profile.qubits < template.num_qubits:
        raise ConfigError(f"{profile.name} has {profile.qubits} qubits; the feature map of {what} needs {template.num_qubits}")


def check_available(profile: DeviceProfile) -> None:
    """A device that takes no jobs now (read live) is refused before anything is written."""
    if profile.unavailable is not None:
        raise BackendError(f"{profile.unavailable}; nothing was submitted")


# --- copies and jobs ----------------------------------------------------------------------------


def plan_packing(
    backend: Backend, profile: DeviceProfile, wanted: int | None, spacing: int, *, template: QuantumCircuit, circuits_to_run: int | None = None
) -> PackingPlan:
    """The copies for ``--pack`` (``wanted``: None for auto) on the device ``profile`` describes.

    An execution carries no more copies than the run has circuits to run (an
    empty copy is simulated, or paid for, for nothing).

    Raises:
        ConfigError: more copies than fit, a device with no chain of the
            template's width, a template that is not a chain, packing a
            managed simulator.
    """
    if wanted is not None and circuits_to_run is not None and wanted > circuits_to_run:
        note = f"--pack {wanted}: the run has {circuits_to_run} circuit(s) to run, so {circuits_to_run} copies an execution at most"
        plan = plan_packing(backend, profile, circuits_to_run, spacing, template=template)
        return dataclasses.replace(plan, notes=(note, *plan.notes))
    if wanted == 1:
        return PackingPlan(1, None)
    width = template.num_qubits
    if profile.graph is None:
        if backend.kind == "simulator":
            if wanted is None:
                return PackingPlan(1, None, (f"--pack auto: {backend.name} is a simulator, with no qubits to share; one copy an execution",))
            return PackingPlan(wanted, None)
        if backend.kind == "managed simulator":
            # Billed by the time it runs, which grows with the qubits simulated at once.
            if wanted is not None:
                raise ParameterError("pack", f"{wanted}: {backend.name} is a managed simulator, billed by its run time; packing saves nothing there")
            return PackingPlan(1, None, (f"--pack auto: {backend.name} is a managed simulator; one copy an execution",))
        if not feature_maps.is_chain(template):
            return _not_a_chain(wanted, backend)
        note = (
            f"no topology of {backend.name} is known before it is read (no earlier run kept its document): "
            "the estimate assumes one copy an execution; the copies are placed once the device is read"
        )
        return PackingPlan(1, None, (note,))
    if not feature_maps.is_chain(template):
        return _not_a_chain(wanted, backend)
    try:
        partition = packing.partition(profile.graph, width=width, copies=wanted, spacing=spacing)
    except packing.NoChainError as err:
        if wanted is not None:
            raise
        return PackingPlan(1, None, (f"--pack auto: {err}; one copy an execution, where the compiler places it",))
    if wanted is not None:
        return PackingPlan(len(partition.copies), partition)
    if circuits_to_run is not None and len(partition.copies) > circuits_to_run:
        if circuits_to_run == 1:
            return PackingPlan(1, None, ("--pack auto: the run has one circuit to run; one copy an execution",))
        partition = packing.Partition(copies=partition.copies[:circuits_to_run], spacing=partition.spacing)
        note = f"--pack auto: the run has {circuits_to_run} circuits to run, so {circuits_to_run} copies an execution (the device's best chains)"
        return PackingPlan(circuits_to_run, partition, (note,))
    count = len(partition.copies)
    room = "room for one copy" if count == 1 else f"room for {count} copies"
    return PackingPlan(count, partition, (f"--pack auto: {backend.name} has {room} of the {width}-qubit feature map (spacing {spacing})",))


def _not_a_chain(wanted: int | None, backend: Backend) -> PackingPlan:
    """A template with a gate between qubits that are not neighbours in its
    order would need swaps to fit a chain of the device, and swaps could reach
    another copy's qubits: such a map runs one copy an execution."""
    reason = "the feature map has a gate between qubits that are not neighbours in its order, so its copies cannot be placed on chains"
    if wanted is not None:
        raise ParameterError("pack", f"{wanted}: {reason}; use {ParameterError.ref('pack')} 1")
    return PackingPlan(1, None, (f"--pack auto: {reason}; one copy an execution on {backend.name}",))


def engine_profile(backend: Backend, profile: DeviceProfile, engine: str | None) -> DeviceProfile:
    """The profile with the job limits of the engine a local run computes on
    (the noisy engine takes larger jobs than Aer's shots)."""
    if not is_local(backend):
        return profile
    return dataclasses.replace(profile, limits=backend.limits_for(profile.limits, engine))


def logical_per_job(backend: Backend, profile: DeviceProfile, shots: int, copies: int) -> int:
    """Logical executions a job carries: a provider's limit counts what is sent
    (``copies`` to an execution); a local simulator's counts the shots it holds
    in memory, which its copies all hold (they run apart). Always whole packed
    executions, so that position p of a job is copy p % copies."""
    per_job = profile.limits.circuits_per_job(shots)
    if not is_local(backend):
        return per_job * copies
    return max(copies, per_job // copies * copies)


def plan_jobs(
    backend: Backend, profile: DeviceProfile, executions: int, shots: int, *, calibrations: int = 0, copies: int = 1,
    job_shots: int | None = None, round: int = 0,
) -> list[JobPlan]:
    """Jobs within the device's limits: the samples' executions, then the
    readout calibration's in jobs of their own (a device that takes one
    circuit a task gets one calibration state a task). A packed run's job
    carries ``copies`` logical executions in each execution it sends.
    ``job_shots``: the samples' jobs' own shots (an adaptive round's), sized by them."""
    per_job = logical_per_job(backend, profile, job_shots or shots, copies)
    plans = [
        JobPlan(start, min(start + per_job, executions), shots=job_shots, round=round) for start in range(0, executions, per_job)
    ]
    per_calibration_job = logical_per_job(backend, profile, shots, copies)
    plans += [
        JobPlan(start, min(start + per_calibration_job, calibrations), "calibration")
        for start in range(0, calibrations, per_calibration_job)
    ]
    return plans


def round_jobs(
    backend: Backend, profile: DeviceProfile, executions: Sequence[int], shots: int, copies: int, round: int,
    slots_used: tuple[int, ...] | None = None,
) -> list[JobPlan]:
    """An adaptive run's later round: jobs of exactly these executions, each
    at the round's ``shots``, on the slots it uses (None: all ``copies``)."""
    per_job = logical_per_job(backend, profile, shots, copies if slots_used is None else len(slots_used))
    return [
        JobPlan.of(executions[start : start + per_job], shots=shots, round=round, slots_used=slots_used)
        for start in range(0, len(executions), per_job)
    ]


def sent_sizes(plans: Sequence[JobPlan], copies: int) -> list[int]:
    """The executions each job sends: its logical executions, ``copies`` to one."""
    return [ceil_div(plan.executions, copies) for plan in plans]


# --- what it costs ------------------------------------------------------------------------------


def device_prices(profile: DeviceProfile, prices: PriceTable) -> PriceTable:
    """``prices`` with the device's own published price in place of qhw's
    table, unless the user's price file sets this device's price."""
    published = profile.published_price
    if published is None or prices.overridden(published.key, published.device):
        return prices
    return prices.with_device_price(published.key, published.device, published.usd, published.source)


def estimate_jobs(
    backend: Backend, profile: DeviceProfile, jobs: Sequence[tuple[int, int]], prices: PriceTable, timing: ShotTiming | None = None
) -> CostEstimate | None:
    """The estimate of jobs given as (executions sent, shots each), priced
    group by group of equal shots; None when free or when no price is known."""
    if not backend.is_paid or not is_remote(backend):
        return None
    by_shots: dict[int, list[int]] = {}
    for executions, shots in jobs:
        by_shots.setdefault(shots, []).append(executions)
    if not by_shots:
        return backend.estimate_cost(profile, [], 0, prices, timing)
    parts = [backend.estimate_cost(profile, sizes, shots, prices, timing) for shots, sizes in sorted(by_shots.items())]
    known = [part for part in parts if part is not None]
    return sum_estimates(known) if len(known) == len(parts) else None


def _run_estimate(
    backend: Backend, profile: DeviceProfile, request: RunRequest, slots: int, calibrations: int, prices: PriceTable,
    timing: ShotTiming | None,
) -> CostEstimate | None:
    """What a new run costs at most: every execution at ``shots``; an adaptive
    run's worst case, every sample through every round (each round's jobs
    priced with its own shots, the calibration with the run's)."""
    if not backend.is_paid or not is_remote(backend):
        return None
    if request.round_shots is None:
        plans = plan_jobs(backend, profile, request.executions, request.shots, calibrations=calibrations, copies=slots)
        return backend.estimate_cost(profile, sent_sizes(plans, slots), request.shots, prices, timing)
    parts = [
        backend.estimate_cost(profile, sent_sizes(plan_jobs(backend, profile, request.executions, shots, copies=slots), slots), shots, prices, timing)
        for shots in request.round_shots
    ]
    if calibrations:
        calibration_plans = plan_jobs(backend, profile, 0, request.shots, calibrations=calibrations, copies=slots)
        parts.append(backend.estimate_cost(profile, sent_sizes(calibration_plans, slots), request.shots, prices, timing))
    known = [part for part in parts if part is not None]
    if len(known) != len(parts):
        return None
    total = sum_estimates(known)
    rounds = len(request.round_shots)
    return dataclasses.replace(total, detail=f"worst case, every sample through {rounds} rounds to {request.shots} shots: {total.detail}")


def check_rep_delay(backend: Backend, profile: DeviceProfile, rep_delay: float | None) -> None:
    """``--rep-delay`` is within the device's rep_delay range, on a device that takes one.

    Raises:
        ConfigError: the device takes no rep_delay, or it is out of its range.
    """
    if rep_delay is None:
        return
    if profile.rep_delay_range is None:
        raise ParameterError("rep_delay", f": {backend.name} takes no rep_delay (IBM Quantum's devices do)")
    low, high = profile.rep_delay_range
    if not low <= rep_delay <= high:
        raise ParameterError("rep_delay", f"{rep_delay:g}: {backend.name} takes a rep_delay from {low * 1e6:g} to {high * 1e6:g} us, "
            f"that is {low:g} to {high:g} seconds"
        )


def plan_reuse(backend: Backend, profile: DeviceProfile, request: RunRequest, packed: PackingPlan) -> tuple[int, tuple[str, ...]]:
    """How many samples each copy's qubits run in a shot, and what the user should know of it.

    ``--reuse K`` is K, where the device can measure and reset qubits
    mid-circuit and run on (an ideal simulator runs each position alone,
    which is exact), and never more than the circuits to run fill.

    ``--reuse auto`` weighs the QPU time a sample saves against the error the
    extra measurements and resets add, from the device's own figures:

    1. A shot lasts rep_delay + K x (the template's compiled duration, its
       final measurement included) + (K - 1) resets; a sample, that over K.
       Going from K to 2K saves rep_delay / 2K a sample: K doubles while that
       saving is at least one position's duration (the template and its
       reset), up to MAX_AUTO_REUSE. On ibm_fez (rep_delay 250 us, a 5-qubit
       paper map about 3.6 us with its measurement, a reset 1.6 us) that is 16.
    2. A reused position starts from its qubits' reset, which errs as a
       measurement does (IBM resets by measuring, then flipping what reads 1;
       its targets publish no reset error): its extra error is 1 - the
       product of (1 - readout error) over the copy's qubits (the worst copy
       of the partition; unpacked, the device's best qubits). Where that
       exceeds MAX_REUSE_ERROR, auto reuses nothing (fake_manila: 18 %; the
       worst of fake_fez's 17 copies: 11 %).
    3. Nothing is saved where nothing is billed by time: on a simulator or a
       device without a timing, auto is 1.
    """
    wanted = request.reuse
    slots_cap = max(1, request.executions // max(1, packed.copies))
    if wanted == 1:
        return 1, ()
    if not profile.mid_circuit_reset:
        # Braket's OpenQASM documents publish no mid-circuit reset today, and
        # qiskit-braket-provider's to_braket translates none (it raises on reset).
        through = " (qhw sends Braket circuits through qiskit-braket-provider, which translates no reset)" if backend.provider == "braket" else ""
        reason = f"{backend.name} cannot measure and reset qubits mid-circuit{through}"
        if wanted is not None:
            raise ParameterError("reuse", f"{wanted}: {reason}; use {ParameterError.ref('reuse')} 1")
        return 1, (f"--reuse auto: {reason}; one sample a copy a shot",)
    if wanted is not None:
        if wanted > slots_cap:
            note = f"--reuse {wanted}: the run has {request.executions} circuit(s) to run on {packed.copies} copies, so {slots_cap} samples a copy a shot"
            return slots_cap, (note,)
        return wanted, ()
    timing = backend.shot_timing(profile, request.template, 1, request.rep_delay)
    if timing is None:
        return 1, (f"--reuse auto: {backend.name} bills no device time that reuse would save; one sample a copy a shot",)
    position = timing.circuit + (profile.reset_seconds or 0.0)
    reuse = 1
    while 2 * reuse <= MAX_AUTO_REUSE and timing.rep_delay / (2 * reuse) >= position:
        reuse *= 2
    error = _reset_error(profile, packed, request.template.num_qubits)
    if error is not None and error > MAX_REUSE_ERROR:
        return 1, (
            f"--reuse auto: a reset of {backend.name}'s qubits may leave a position starting from a wrong state "
            f"{error:.1%} of the time (its readout error over a copy's qubits), over {MAX_REUSE_ERROR:.0%}; one sample a copy a shot",
        )
    if reuse == 1:
        return 1, (f"--reuse auto: a second sample a shot saves {backend.name} less than it costs; one sample a copy a shot",)
    if reuse > slots_cap:
        reuse = slots_cap
        if reuse == 1:
            return 1, (f"--reuse auto: the run's {request.executions} circuit(s) fill its {packed.copies} copies already; one sample a copy a shot",)
    per_sample = (timing.rep_delay + reuse * position) / reuse
    note = (
        f"--reuse auto: {reuse} samples a copy a shot on {backend.name} ({per_sample * 1e6:.0f} us a sample against "
        f"{(timing.rep_delay + position) * 1e6:.0f}; a reused position's reset errs about {error or 0:.1%})"
    )
    return reuse, (note,)


def _reset_error(profile: DeviceProfile, packed: PackingPlan, width: int) -> float | None:
    """The chance that a reset leaves some qubit of a copy in a wrong state:
    1 - the product of (1 - readout error) over the copy's qubits (the
    partition's worst copy; unpacked, the device's ``width`` qubits of least
    readout error, where the compiler's error-aware layout tends to place a
    lone copy; on a device exactly as wide as the map, all of them); None
    where the device publishes no readout error."""
    readout = dict(profile.graph.readout_error) if profile.graph is not None else {}
    if not readout:
        return None
    if packed.partition is not None:
        per_copy = [[readout.get(q, 0.0) for q in copy.qubits] for copy in packed.partition.copies]
    else:
        per_copy = [sorted(readout.values())[:width]]
    worst = 0.0
    for errors in per_copy:
        success = 1.0
        for error in errors:
            success *= 1.0 - error
        worst = max(worst, 1.0 - success)
    return worst


def plan_run(backend: Backend, profile: DeviceProfile, request: RunRequest, prices: PriceTable | None) -> RunPlan:
    """The plan of a new run on the device ``profile`` describes.

    ``prices``: qhw's table (None for a free backend); the device's own
    published price applies (:func:`device_prices`). An unpacked paid run's
    estimate also says what ``--pack auto`` would cost where the device holds
    more than one copy.

    Raises:
        ConfigError: shots outside the device's range, a device narrower than
            the template, copies that do not fit, a reuse or rep_delay the
            device cannot take.
        BackendError: the device takes no jobs now (a live profile says so).
    """
    check_available(profile)
    check_shots(profile, request.shots)
    check_rep_delay(backend, profile, request.rep_delay)
    packed = plan_packing(backend, profile, request.pack, request.spacing, template=request.template, circuits_to_run=request.executions)
    reuse, reuse_notes = plan_reuse(backend, profile, request, packed)
    slots = packed.copies * reuse
    calibrations = CALIBRATION_STATES * slots if request.mitigate else 0
    jobs = plan_jobs(
        backend, profile, request.executions, request.shots, calibrations=calibrations, copies=slots,
        job_shots=None if request.round_shots is None else request.first_shots,
    )
    table = None if prices is None else device_prices(profile, prices)
    timing = backend.shot_timing(profile, request.template, reuse, request.rep_delay) if backend.is_paid else None
    estimate = None if table is None else _run_estimate(backend, profile, request, slots, calibrations, table, timing)
    if estimate is not None and table is not None and request.pack == 1 and request.round_shots is None and is_remote(backend):
        estimate = _with_packed_alternative(backend, profile, request, table, estimate, reuse)
    if estimate is not None and request.quality_reserve:
        estimate = with_reserve(estimate, request.quality_reserve)
    return RunPlan(packed, calibrations, tuple(jobs), table, estimate, reuse, reuse_notes)


def with_reserve(estimate: CostEstimate, reserve: float) -> CostEstimate:
    """An estimate with --quality auto's reserve on top: the most its repairs
    may add, as a share of the run's device time (and of what that costs)."""
    seconds = None if estimate.quantum_seconds is None else estimate.quantum_seconds * (1 + reserve)
    return dataclasses.replace(
        estimate, usd=estimate.usd * (1 + reserve), quantum_seconds=seconds,
        detail=f"{estimate.detail}, with a {reserve:.0%} reserve for --quality auto's repairs",
    )


def _with_packed_alternative(
    backend: RemoteBackend, profile: DeviceProfile, request: RunRequest, prices: PriceTable, estimate: CostEstimate, reuse: int
) -> CostEstimate:
    """The estimate of an unpacked paid run, saying what ``--pack auto`` would cost."""
    try:
        auto = plan_packing(backend, profile, None, request.spacing, template=request.template, circuits_to_run=request.executions)
    except ConfigError:
        return estimate
    if auto.copies < 2:
        return estimate
    calibrations = CALIBRATION_STATES * auto.copies * reuse if request.mitigate else 0
    timing = backend.shot_timing(profile, request.template, reuse, request.rep_delay)
    packed = _run_estimate(backend, profile, request, auto.copies * reuse, calibrations, prices, timing)
    if packed is None:
        return estimate
    return dataclasses.replace(estimate, alternative=f"with --pack auto ({auto.copies} copies an execution): {packed.usd_text}")


def guard_cost(
    backend: Backend,
    estimate: CostEstimate | None,
    max_cost: float | None,
    approve: Callable[[CostEstimate | None], bool] | None,
) -> None:
    """Refuse a paid submission above ``max_cost``, without credentials, or
    without approval: in that order, so that a price is refused before
    anything else is asked, and nobody is asked to pay for what cannot run."""
    check_amount(max_cost, parameter="max_cost")
    if not backend.is_paid:
        backend.check_credentials()
        return
    if estimate is not None:
        check_amount(estimate.usd, where=f"the estimate for {backend.name} ({estimate.detail}; prices of {estimate.prices_taken})")
    if max_cost is not None:
        if estimate is None:
            raise ConfigError(
                f"no price is known for {backend.name}, so --max-cost cannot be checked; "
                "add one to prices.toml (docs/how-to/costs.md); nothing was submitted"
            )
        if estimate.usd > max_cost:
            raise ConfigError(f"estimated cost {estimate} exceeds --max-cost ${max_cost:,.2f}; nothing was submitted")
    backend.check_credentials()
    if approve is None or not approve(estimate):
        shown = estimate if estimate is not None else "unknown (no price for this device)"
        raise ConfigError(f"{backend.name} costs money (estimate: {shown}); not confirmed, nothing was submitted")


#: Backends whose allowance could not be read, said once a process.
_ALLOWANCE_UNKNOWN: set[str] = set()


def check_allowance(backend: Backend, estimate: CostEstimate | None) -> None:
    """Refuse a paid submission whose estimate is more device time than the
    account's plan has left (IBM's Open plan: 600 QPU s every 28 days), naming
    both figures, or that the provider says has reached its limit (IBM's
    ``usage_limit_reached``, whatever seconds it shows). Where the allowance
    is unknown (no network, an older service, figures that do not add up),
    say so once and go on, as the provider's own client does: the provider
    refuses what exceeds it.

    Raises:
        ConfigError: the estimate exceeds what is left, or the limit is reached.
        ProviderAnswerError: the provider's usage answer cannot be read at all
            (its own client cannot submit while it answers so).
    """
    if not backend.is_paid or not is_remote(backend) or estimate is None or estimate.quantum_seconds is None:
        return  # (a provider that bills no device time keeps no allowance of it)
    try:
        allowance = backend.allowance()
    except ProviderAnswerError as err:
        raise ProviderAnswerError(f"{err}; nothing was submitted") from err
    except QhwError as err:  # CredentialsError included: the guard asked for credentials already
        allowance, reason = None, f"it could not be read ({err})"
    else:
        reason = "the service gives no limit for the instance"
    if allowance is not None and allowance.limit_reached:
        left = "" if allowance.remaining is None else f", though it shows {allowance.remaining:,.0f} {allowance.unit} left"
        raise ConfigError(
            f"{backend.provider} says the {allowance.plan} plan's instance has reached its usage limit "
            f"(usage_limit_reached{left}); nothing was submitted"
        )
    remaining = None if allowance is None else allowance.remaining
    if allowance is not None and remaining is None:
        reason = allowance.doubt or "what is left is unknown"
    if allowance is None or remaining is None:
        if backend.name not in _ALLOWANCE_UNKNOWN:
            _ALLOWANCE_UNKNOWN.add(backend.name)
            log.warning("%s: the plan's allowance was not checked: %s", backend.name, reason)
        return
    if estimate.quantum_seconds > remaining:
        raise ConfigError(
            f"the estimate, about {math.ceil(estimate.quantum_seconds):,} {allowance.unit}, is more than the "
            f"{remaining:,.0f} {allowance.unit} the {allowance.plan} plan's instance has left this period; nothing was submitted"
        )


def guard_again(
    backend: Backend, guarded: CostEstimate | None, revised: CostEstimate | None, max_cost: float | None,
    approve: Callable[[CostEstimate | None], bool] | None,
) -> None:
    """The guard once more when the live plan costs more than the offline one
    it passed (the device's own limits or prices): --max-cost is checked, and
    approval asked, anew."""
    if revised is not None and (guarded is None or revised.usd > guarded.usd + 1e-12):
        guard_cost(backend, revised, max_cost, approve)


# --- what a retry sends -------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPlan:
    """A retry: the failed jobs sent afresh, and new jobs of exactly the
    executions a provider failed inside jobs that otherwise ran (each with the
    ids of the failures it answers)."""

    failed: tuple[JobRecord, ...]
    missing: tuple[tuple[JobPlan, tuple[int, ...]], ...]
    estimate: CostEstimate | None
    prices: PriceTable | None

    @property
    def jobs(self) -> int:
        return len(self.failed) + len(self.missing)


def plan_retry(
    backend: Backend, profile: DeviceProfile, run: RunRecord, failed: Sequence[JobRecord],
    missing: Sequence[ExecutionFailureRecord], jobs: dict[int, JobRecord], prices: PriceTable | None,
) -> RetryPlan:
    """What ``qhw retry`` sends, by the same rules as a run: a packed run is
    retried packed as it ran, and each job keeps the shots of its round."""
    check_available(profile)
    planned = []
    # (A repair's failures are retried as its own: on the slots it used, stored as its counts.)
    groups: dict[tuple[str, int, int | None, int, tuple[int, ...] | None], list[ExecutionFailureRecord]] = {}
    for failure in missing:
        job = jobs[failure.job_id]
        groups.setdefault((failure.purpose, job.round, job.own_shots, job.repair, job.slots_used), []).append(failure)
    for (purpose, round, shots, repair, used), failures in sorted(
        groups.items(), key=lambda item: (JOB_PURPOSES.index(item[0][0]), item[0][1], item[0][3])
    ):
        per_job = logical_per_job(backend, profile, shots or run.shots, len(used or range(run.slots)))
        failures.sort(key=lambda f: f.execution)
        for start in range(0, len(failures), per_job):
            chunk = failures[start : start + per_job]
            plan = JobPlan.of([f.execution for f in chunk], purpose, shots=shots, round=round, repair=repair, slots_used=used)
            planned.append((plan, tuple(f.id for f in chunk)))
    table = None if prices is None else device_prices(profile, prices)
    estimate = None
    if table is not None:
        sent = [(job.sent(run.slots), job.shots(run.shots)) for job in failed]
        sent += [(ceil_div(plan.executions, len(plan.slots_used or range(run.slots))), plan.shots or run.shots) for plan, _ in planned]
        estimate = estimate_jobs(backend, profile, sent, table, run_timing(backend, profile, run))
    return RetryPlan(tuple(failed), tuple(planned), estimate, table)


def pending_estimate(backend: Backend, profile: DeviceProfile, run: RunRecord, jobs: Sequence[JobRecord], prices: PriceTable) -> CostEstimate | None:
    """What sending these pending jobs would cost: a packed execution carries
    ``copies`` logical ones, and an adaptive round's jobs have their own shots."""
    sent = [(job.sent(run.slots), job.shots(run.shots)) for job in jobs]
    return estimate_jobs(backend, profile, sent, prices, run_timing(backend, profile, run))


def run_timing(backend: Backend, profile: DeviceProfile, run: RunRecord, template: QuantumCircuit | None = None) -> ShotTiming | None:
    """A shot of a stored run as it runs (its reuse, its rep_delay), for
    estimates of what it sends again; the template is the run's feature map
    (``template``), or the paper's of its width when none is given."""
    if not backend.is_paid:
        return None
    if template is None:
        from qhw import circuits

        template = circuits.feature_map(run.num_qubits)
    return backend.shot_timing(profile, template, run.reuse, run.rep_delay)
