"""Runs: submit a feature set to a backend, collect, cancel and retry its jobs.

A run is planned (qhw.planning) offline, its cost guarded before any network,
and planned again from the device as it is now; its jobs are then written
(pending, each with its idempotency key, claimed by the submitting process)
before any provider is called, and each is worked by
:class:`qhw.worker.RunWorker`. Any number of ``collect`` processes may run at
once: each claims a job before working on it. See docs/ledger.md.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from qhw import circuits, feature_maps, parallel, settings
from qhw.adaptive import check_model, load_classifier
from qhw.backend import Backend, DeviceProfile, EngineChoice, Executable, get_backend, is_local, is_remote
from qhw.checks import check_positive, check_seed
from qhw.datasets import stratified_subset
from qhw.device_mitigation import DeviceMitigation, parse_mitigate
from qhw.errors import BackendError, ConfigError, NotFoundError, ParameterError, QhwError
from qhw.executables import calibration_executable, packed_executable
from qhw.jobstates import UNFINISHED_STATES, JobState
from qhw.noise import NoiseSpec, parse_noise
from qhw.packing import parse_copies, parse_reuse
from qhw.planning import RunPlan, RunRequest, check_allowance, check_width, engine_profile, guard_again, guard_cost, plan_retry, plan_run
from qhw.pricing import CostEstimate, check_amount, load_prices
from qhw.progress import Progress, SilentProgress
from qhw.records import (
    QUALITY_MODES,
    RUN_SPLITS,
    SPLIT_CODES,
    AdaptiveSettings,
    ExecutionFailureRecord,
    FeatureSetRecord,
    JobRecord,
    RunRecord,
    RunSpec,
)
from qhw.rounds import adaptive_settings, advance_rounds, drive_rounds
from qhw.store import RunCircuit, Store
from qhw.store.arrays import FeatureArrays, load_arrays
from qhw.store.ledger import holder_id
from qhw.worker import Approver, RunWorker, Tally, backend_of_run, executor_for, parameter_rows, work_all

log = logging.getLogger("qhw.runs")


@dataclass(frozen=True)
class SubmitResult:
    run: RunRecord
    jobs: list[JobRecord]
    tally: Tally
    notes: tuple[str, ...] = ()  # what the user should know of how the run was made (packing)

    @property
    def samples(self) -> int:
        return self.run.n_samples

    @property
    def executions(self) -> int:
        """Executions the jobs send (a packed execution carries ``copies`` samples' circuits)."""
        return sum(job.sent(self.run.slots) for job in self.jobs)

    @property
    def failed_jobs(self) -> list[JobRecord]:
        return [job for job in self.jobs if job.state is JobState.FAILED]


@dataclass(frozen=True)
class CollectResult:
    samples: int  # samples stored so far (for the run, or all runs)
    pending_jobs: int  # jobs the provider still owes (or that are not sent yet)
    failed_jobs: int
    waiting_on_errors: int  # unfinished jobs whose last call failed (network, 429, 5xx...)
    awaiting_approval: int  # paid jobs to send again, left pending without --yes
    usage_pending: int = 0  # finished jobs whose provider has not yet given its final usage
    failed_executions: int = 0  # executions a provider failed inside collected jobs, not yet retried
    rounds_started: int = 0  # rounds of adaptive runs this collect started


@dataclass(frozen=True)
class CancelOutcome:
    job: int
    outcome: str  # what became of it, in words


def submit(
    store: Store,
    *,
    backend_name: str,
    feature_set_id: int | None = None,
    split: str = "all",
    shots: int = 1024,
    limit: int | None = None,
    seed: int | None = 0,
    max_cost: float | None = None,
    approve: Callable[[CostEstimate | None], bool] | None = None,
    mitigate: str | Sequence[str] | None = None,
    pack: int | str = 1,
    pack_spacing: int = 1,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
    adaptive: bool = False,
    model_id: int | None = None,
    reuse: int | str = 1,
    rep_delay: float | None = None,
    engine: str | None = None,
    noise: str | None = None,
    quality: str = "off",
    quality_floor: float | None = None,
    quality_reserve: float = 0.1,
) -> SubmitResult:
    """Run the feature map for every selected sample of a feature set.

    Args:
        backend_name: a name from ``qhw backends``.
        feature_set_id: the feature set, or None for the newest.
        split: "train", "test" or "all".
        shots: shots per circuit.
        limit: a seeded stratified subset of this many samples per split.
        seed: seed of the subset, the transpiler and simulators.
        max_cost: refuse a paid submission whose estimate exceeds this (USD).
        approve: asked with the estimate before a paid submission; without it
            a paid backend is refused.
        mitigate: --mitigate's items (qhw.device_mitigation): "readout" also
            runs the readout-calibration circuits (2 executions on the same
            physical qubits, in jobs of their own); "twirling",
            "twirling-gates", "dd[=SEQUENCE]" ask an IBM device's sampler
            for its own mitigation.
        pack: copies of the feature map side by side in each execution, each
            on its own physical qubits and bound to its own sample ("auto": as
            many as qhw.packing places on the device); 1 runs one copy.
        pack_spacing: 1 keeps an idle qubit between copies, 0 allows neighbours.
        reuse: samples each copy's qubits run one after another in a shot,
            each measured into a register of its own and reset before the
            next ("auto": as qhw.planning.plan_reuse decides); 1 reuses nothing.
        rep_delay: the pause between shots to ask of an IBM device (seconds,
            within its rep_delay_range; None: the device's default).
        workers: local processes for a local simulator's jobs (default: every core).
        scheduler: a Dask scheduler's address, to run them on its cluster instead.
        adaptive: measure in rounds (qhw.adaptive), ``shots`` the most a
            sample gets; later rounds are driven by ``collect`` (here too, on
            a local simulator, whose rounds finish in this call).
        model_id: the hybrid model whose predictions settle an adaptive run's samples.
        noise: what to add to an emulated device's own noise, as ``--noise``
            SPEC (qhw.noise): kept with the run, its jobs, rounds and retries.
        quality: "auto" leaves flagged copies and positions out of the jobs
            not yet sent and measures again what they ran (qhw.repair);
            "off" only measures every result's fidelity.
        quality_floor: flag a copy, position or job whose mean fidelity is
            below this, in place of the rule (qhw.quality.flagged).
        quality_reserve: the share of the run's device time --quality auto
            may add (in the estimate and the cost guard).

    Returns:
        The run, its jobs and what was left undone (jobs waiting on errors).
        Every input, the price and the device's limits are checked before
        anything is written or submitted.

    Raises:
        UnknownBackendError, NotFoundError, ConfigError, BackendError.
    """
    progress = progress or SilentProgress()
    inputs = _checked_inputs(
        store, backend_name=backend_name, feature_set_id=feature_set_id, split=split, shots=shots, limit=limit, seed=seed,
        max_cost=max_cost, mitigate=mitigate, pack=pack, pack_spacing=pack_spacing, scheduler=scheduler, adaptive=adaptive,
        model_id=model_id, reuse=reuse, rep_delay=rep_delay, engine=engine, noise=noise, quality=quality,
        quality_floor=quality_floor, quality_reserve=quality_reserve,
    )
    plan, live = _guarded_plan(store, inputs, max_cost, approve)
    # A local simulator's worker processes start now, while this one prepares the run.
    with ExitStack() as stack:
        backend = inputs.backend
        pool = stack.enter_context(executor_for(backend, workers, scheduler, len(plan.jobs)))
        compiled = _compiled(inputs, plan, live, engine)
        if pool is None:  # jobs that would hold the interpreter (Ctrl-C unheard) run in a worker even alone
            pool = stack.enter_context(executor_for(backend, workers, scheduler, len(plan.jobs), compiled.executable))
        plan = compiled.plan
        # An emulator of a device document is recorded by the document's object
        # in the artifact store (stored now, after every check, before the run's
        # row): any member's machine, and any Dask worker, runs, collects and retries it.
        backend = backend.shared(store.artifacts)
        holder = holder_id()
        run, jobs = _recorded(store, inputs, plan, compiled, backend, holder)
        worker = RunWorker(
            store, run, backend, compiled.executable, parameter_rows(inputs.arrays, inputs.order, inputs.feature_set.circuits_per_sample),
            calibration=compiled.calibration, holder=holder, approved=True,
        )
        tally = work_all(store, worker, jobs, progress, f"{backend.name}: jobs", pool=pool, workers=workers)
        if inputs.rounds is not None or run.quality == "auto":
            tally = drive_rounds(store, worker, tally, progress, pool=pool, workers=workers)
    notes = plan.notes + ((f"{backend.name}: {compiled.choice.note}",) if compiled.choice.note else ())
    return SubmitResult(run=store.ledger.run(run.id), jobs=store.ledger.jobs(run.id), tally=tally, notes=notes)


@dataclass(frozen=True)
class _Inputs:
    """A submission's inputs, each checked: what the later steps read."""

    backend: Backend
    feature_set: FeatureSetRecord
    arrays: FeatureArrays
    order: np.ndarray
    request: RunRequest
    rounds: AdaptiveSettings | None
    split: str
    shots: int
    seed: int | None
    mitigate: str | None
    rep_delay: float | None
    noise: NoiseSpec | None
    quality: str = "off"
    quality_floor: float | None = None
    quality_reserve: float = 0.1
    device_mitigation: DeviceMitigation | None = None


def _checked_inputs(
    store: Store, *, backend_name: str, feature_set_id: int | None, split: str, shots: int, limit: int | None, seed: int | None,
    max_cost: float | None, mitigate: str | Sequence[str] | None, pack: int | str, pack_spacing: int, scheduler: str | None, adaptive: bool,
    model_id: int | None, reuse: int | str, rep_delay: float | None, engine: str | None, noise: str | None = None,
    quality: str = "off", quality_floor: float | None = None, quality_reserve: float = 0.1,
) -> _Inputs:
    """Every input checked, before anything is planned, written or sent.

    Raises:
        ParameterError, ConfigError, UnknownBackendError, NotFoundError.
    """
    settings.check_all(scheduler)
    if split not in RUN_SPLITS:
        raise ParameterError("split", f"must be one of {', '.join(RUN_SPLITS)}, got {split!r}")
    readout, device_mitigation = parse_mitigate(mitigate)
    if pack_spacing not in (0, 1) or isinstance(pack_spacing, bool):
        raise ParameterError("pack_spacing", f"must be 0 (neighbouring copies) or 1 (an idle qubit between copies), got {pack_spacing}")
    check_seed(seed)
    check_positive(shots, "shots")
    check_positive(limit, "limit")
    check_amount(max_cost, parameter="max_cost")
    wanted = parse_copies(pack)
    reused = parse_reuse(reuse)
    if rep_delay is not None and (isinstance(rep_delay, bool) or not math.isfinite(rep_delay) or rep_delay < 0):
        raise ParameterError("rep_delay", f"must be a finite number of seconds, 0 or more, got {rep_delay}")
    check_quality(quality, quality_floor, quality_reserve)
    rounds = adaptive_settings(adaptive, shots, model_id)
    added = None if noise is None else parse_noise(noise)
    backend = get_backend(backend_name, seed=seed)
    if device_mitigation is not None:
        check_device_mitigation(backend, device_mitigation)
    if added is not None:
        check_noise(backend, added)
        added = None if added.is_default else added
    engines = backend.engines if is_local(backend) else ()
    if engine is not None and engine not in engines:
        one_way = "it computes its jobs one way only (--engine is for emulated devices: fake_* and braket_emulator:)"
        offered = f"its engines are {', '.join(engines)}" if engines else one_way
        raise ConfigError(f"{backend.name} has no engine {engine!r}: {offered}")
    feature_set = store.catalogue.feature_set(feature_set_id)
    if rounds is not None and model_id is not None:
        model = store.catalogue.model(model_id)
        check_model(model, feature_set.id)
        load_classifier(store.artifacts, model, feature_set.circuits_per_sample * 2**feature_set.num_qubits)
    arrays = load_arrays(store.artifacts, feature_set)
    order = _sample_order(arrays, split, limit, seed or 0)
    if len(order) == 0:
        raise ConfigError(f"feature set {feature_set.id} has no {split} samples")
    request = RunRequest(
        executions=len(order) * feature_set.circuits_per_sample, shots=shots, template=feature_maps.template_of(feature_set),
        pack=wanted, spacing=pack_spacing, mitigate=readout,
        round_shots=None if rounds is None else tuple(rounds.round_shots(r) for r in range(rounds.rounds)),
        reuse=reused, rep_delay=rep_delay, quality_reserve=quality_reserve if quality == "auto" else None,
    )
    return _Inputs(
        backend, feature_set, arrays, order, request, rounds, split, shots, seed, "readout" if readout else None, rep_delay, added, quality,
        quality_floor, quality_reserve, device_mitigation,
    )


def check_device_mitigation(backend: Backend, mitigation: DeviceMitigation) -> None:
    """IBM's own mitigation (--mitigate twirling, twirling-gates, dd) is its devices' sampler's: refused where it would do nothing.

    Raises:
        ParameterError: a local simulator or emulation (Runtime's local mode
            ignores these options), or a provider whose devices have none (Braket).
    """
    items = mitigation.text()
    if is_local(backend):
        why = "Runtime's local mode ignores these options" if backend.provider == "ibm" else "a local simulator has no such options"
        raise ParameterError("mitigate", f"{items} is applied by an IBM device's sampler: {backend.name} runs here ({why})")
    if not (is_remote(backend) and backend.takes_device_mitigation):
        raise ParameterError("mitigate", f"{items} is IBM's sampler's; {backend.name} ({backend.provider}) has no such options")


#: The most --quality-reserve may be: ten times the run's own device time.
MAX_RESERVE = 10


def check_quality(quality: str, floor: float | None, reserve: float) -> None:
    """--quality auto|off, a floor that is a fidelity, a reserve that is a share.

    Raises:
        ParameterError: any of them out of range.
    """
    if quality not in QUALITY_MODES:
        raise ParameterError("quality", f"must be one of {', '.join(QUALITY_MODES)}, got {quality!r}")
    # (A reserve may exceed the run itself: repairing every late position of a reused run takes several times it.)
    for value, parameter, most in ((floor, "quality_floor", 1), (reserve, "quality_reserve", MAX_RESERVE)):
        if value is not None and (isinstance(value, bool) or not math.isfinite(value) or not 0 <= value <= most):
            raise ParameterError(parameter, f"must be between 0 and {most}, got {value}")


def check_noise(backend: Backend, noise: NoiseSpec) -> None:
    """``--noise`` is for an emulated device whose noise qhw computes, and names its qubits.

    Raises:
        ParameterError: another kind of backend, or a bad qubit it lacks.
    """
    if not (is_local(backend) and backend.takes_noise):
        what = "a real device" if backend.kind == "hardware" else "a simulator with no device noise to add to"
        raise ParameterError("noise", f"makes an emulated device (fake_*, braket_emulator:) harsher: {backend.name} is {what}")
    backend.check_noise(noise)


def _guarded_plan(
    store: Store, inputs: _Inputs, max_cost: float | None, approve: Callable[[CostEstimate | None], bool] | None,
) -> tuple[RunPlan, DeviceProfile]:
    """The run planned under the cost guard: offline first (a snapshot, or the
    document an earlier run kept), so that the cost is guarded before any
    network; then on the device as it is now (its own limits, prices, couplers
    and availability), guarded again. The plan, and the live profile."""
    backend, request, feature_set = inputs.backend, inputs.request, inputs.feature_set
    what = f"feature set {feature_set.id} ({feature_set.feature_map})"
    prices = load_prices() if backend.is_paid else None
    document = store.ledger.latest_device_document(backend.name) if request.pack != 1 else None
    offline = backend.profile(offline=True, document=document)
    check_width(offline, request.template, what)
    plan = plan_run(backend, offline, request, prices)
    guard_cost(backend, plan.estimate, max_cost, approve)
    live = backend.profile()
    check_width(live, request.template, what)
    guarded, plan = plan.estimate, plan_run(backend, live, request, prices)
    guard_again(backend, guarded, plan.estimate, max_cost, approve)
    check_allowance(backend, plan.estimate)
    return plan, live


@dataclass(frozen=True)
class _Compiled:
    executable: Executable
    calibration: Executable | None
    choice: EngineChoice
    plan: RunPlan  # sized for the engine chosen


def _compiled(inputs: _Inputs, plan: RunPlan, live: DeviceProfile, engine: str | None) -> _Compiled:
    """The run's circuit compiled for the device (and its readout calibration,
    on the very physical qubits each copy uses), with the engine an emulation
    computes it with, chosen once: its jobs, rounds and retries all run so."""
    backend, seed = inputs.backend, inputs.seed
    executable = packed_executable(backend, plan.packing, seed, template=inputs.request.template, reuse=plan.reuse)
    calibration = calibration_executable(backend, plan.packing, seed, executable) if inputs.mitigate else None
    if inputs.noise is not None:  # (its channels are part of the circuit the engine is chosen for)
        noise = replace(inputs.noise, rep_delay=inputs.rep_delay)
        executable = replace(executable, noise=noise)
        calibration = None if calibration is None else replace(calibration, noise=noise)
    choice = backend.engine_for(executable, engine) if is_local(backend) else EngineChoice(None)
    sized = engine_profile(backend, live, choice.engine)
    if sized.limits != live.limits:  # its jobs sized for the engine (the same copies: the same device, planned alike)
        plan = plan_run(backend, sized, inputs.request, plan.prices)
    return _Compiled(
        executable=replace(executable, engine=choice.engine),
        calibration=None if calibration is None else replace(calibration, engine=choice.engine),
        choice=choice,
        plan=plan,
    )


def _recorded(store: Store, inputs: _Inputs, plan: RunPlan, compiled: _Compiled, backend: Backend, holder: str) -> tuple[RunRecord, list[JobRecord]]:
    """The run, its jobs (pending, claimed by ``holder``) and the device's
    calibration now for the qubits it uses, written in one transaction."""
    executable, template = compiled.executable, inputs.request.template
    spec = RunSpec(
        feature_set_id=inputs.feature_set.id,
        backend=backend.name,
        provider=backend.provider,
        split=inputs.split,
        shots=inputs.shots,
        num_qubits=template.num_qubits,
        circuits_per_sample=inputs.feature_set.circuits_per_sample,
        n_samples=len(inputs.order),
        seed=inputs.seed,
        layout=tuple(executable.layout),
        cost_estimate_usd=None if plan.estimate is None else plan.estimate.usd,
        mitigation=inputs.mitigate,
        device_kind=backend.kind,
        device_label=backend.description,
        prices=plan.prices,
        copies=executable.copies,
        packing=plan.packing.record(),
        adaptive=inputs.rounds,
        reuse=executable.reuse,
        rep_delay=inputs.rep_delay,
        engine=compiled.choice.engine,
        engine_note=compiled.choice.note,
        noise=inputs.noise,
        quality=inputs.quality,
        quality_floor=inputs.quality_floor,
        quality_reserve=inputs.quality_reserve,
        device_mitigation=inputs.device_mitigation,
    )
    snapshot = backend.calibration(executable.layout)
    circuit = _run_circuit(executable, inputs.order, compiled.calibration)
    return store.ledger.create_run(spec, circuit, list(plan.jobs), claimed_by=holder, calibration=snapshot)


def retry_run(
    store: Store,
    run_id: int | None = None,
    *,
    max_cost: float | None = None,
    approve: Callable[[CostEstimate | None], bool] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> SubmitResult:
    """Submit again, with the same cost guard as ``submit``, what a run is
    missing: its failed jobs (afresh, with new idempotency keys; their earlier
    attempts stay in the jobs' history), and exactly the executions a provider
    failed inside jobs that otherwise ran, in new jobs of their own. A packed
    run is retried packed as it ran (its copies and their qubits are the
    run's); an adaptive run's executions get the shots of their round.

    Raises:
        NotFoundError: no such run, or nothing of it failed.
    """
    progress = progress or SilentProgress()
    settings.check_all(scheduler)
    run = store.ledger.run(run_id)
    failed = store.ledger.jobs(run.id, states=[JobState.FAILED])
    missing = missing_executions(store, run.id)
    if not failed and not missing:
        raise NotFoundError(f"run {run.id} has no failed jobs or executions to retry")
    backend = backend_of_run(run, store.artifacts)
    of_run = {job.id: job for job in store.ledger.jobs(run.id)}
    prices = load_prices() if backend.is_paid else None
    plan = plan_retry(backend, backend.profile(offline=True), run, failed, missing, of_run, prices)
    guard_cost(backend, plan.estimate, max_cost, approve)
    # Planned again by the device as it is now (see submit).
    live = engine_profile(backend, backend.profile(), run.engine)
    guarded, plan = plan.estimate, plan_retry(backend, live, run, failed, missing, of_run, prices)
    guard_again(backend, guarded, plan.estimate, max_cost, approve)
    check_allowance(backend, plan.estimate)
    holder = holder_id()
    worker = RunWorker.load(store, run.id, holder=holder, backend=backend, approved=True)
    # Where the jobs will run is settled (a cluster reached, with a worker) before any job is reset.
    with executor_for(backend, workers, scheduler, plan.jobs, worker.executable) as pool:
        fresh = [job for job in map(store.ledger.reset_for_retry, failed) if job is not None]
        claimed = [job for job in (store.ledger.claim(job, holder) for job in fresh) if job is not None]
        if plan.missing:
            claimed += store.ledger.add_retry_jobs(run.id, [(job, list(ids)) for job, ids in plan.missing], claimed_by=holder)
        tally = work_all(store, worker, claimed, progress, f"{backend.name}: retried jobs", pool=pool, workers=workers)
        if run.adaptive or run.quality == "auto":  # the round (or repair) the retry completed goes on (here, on a local simulator)
            tally = drive_rounds(store, worker, tally, progress, pool=pool, workers=workers)
    return SubmitResult(run=store.ledger.run(run.id), jobs=store.ledger.jobs(run.id), tally=tally)


def collect(
    store: Store,
    *,
    run_id: int | None = None,
    wait: bool = False,
    interval: float = 5.0,
    timeout: float | None = None,
    approve: Approver | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> CollectResult:
    """Work every unfinished job (of one run, or all) once, or until none is left.

    Safe to run in several processes at once: each job is claimed before it
    is worked, and its counts are stored once. A pending job is looked up at
    the provider before it is sent again, and sent again to a paid backend
    only when ``approve`` says so.

    Raises:
        NotFoundError: an unknown run.
        CredentialsError: a provider refused the credentials (no job changed).
    """
    progress = progress or SilentProgress()
    settings.check_all(scheduler)
    if run_id is not None:
        store.ledger.run(run_id)  # raises NotFoundError for an unknown id
    collector = _Collector(store, run_id=run_id, approve=approve, workers=workers, scheduler=scheduler)
    collector.check_cluster()
    deadline = None if timeout is None else time.monotonic() + timeout
    rounds_started = 0
    while True:
        tally = collector.work_once(progress)
        # An adaptive run whose round is collected (here, or by a process that
        # ended before it could go on) starts its next one; its jobs are worked at once.
        started = advance_rounds(store, run_id, collector.workers, collector.unworkable, collector.load)
        if started:
            rounds_started += started
            continue
        remaining = store.ledger.jobs(run_id, states=UNFINISHED_STATES)
        usage_pending = settle_usage(store, run_id, workers=collector.workers, holder=collector.holder)
        # Waiting cannot help jobs that need an approval, or whose run cannot be worked here.
        blocked = {job.id for job in remaining if job.run_id not in collector.unworkable} <= tally.awaiting_approval
        if not wait or not remaining or blocked or (deadline is not None and time.monotonic() >= deadline):
            break
        time.sleep(interval)
    return CollectResult(
        samples=store.results.count_samples(run_id),
        pending_jobs=len(remaining),
        failed_jobs=len(store.ledger.jobs(run_id, states=[JobState.FAILED])),
        waiting_on_errors=len(tally.waiting_on_errors & {job.id for job in remaining}),
        awaiting_approval=len(tally.awaiting_approval & {job.id for job in remaining}),
        usage_pending=usage_pending,
        failed_executions=sum(
            len(missing_executions(store, run.id)) for run in ([store.ledger.run(run_id)] if run_id is not None else store.ledger.runs())
        ),
        rounds_started=rounds_started,
    )


class _Collector:
    """What one ``collect`` holds across its passes: the worker of every run
    it meets (built once), and the runs that cannot be worked here (a device
    file gone, say), skipped so that one run does not stop the others."""

    def __init__(self, store: Store, *, run_id: int | None, approve: Approver | None, workers: int | None, scheduler: str | None) -> None:
        self.store = store
        self.run_id = run_id
        self.approve = approve
        self.local_workers = workers
        self.scheduler = scheduler
        self.holder = holder_id()
        self.workers: dict[int, RunWorker] = {}
        self.unworkable: dict[int, str] = {}

    def load(self, run_id: int) -> None:
        """The run's worker into ``workers``; or, when it cannot be built here,
        the reason into ``unworkable``. A run asked for by id raises instead."""
        try:
            self.workers[run_id] = RunWorker.load(self.store, run_id, holder=self.holder, approve=self.approve)
        except QhwError as err:
            if self.run_id is not None:
                raise
            self.unworkable[run_id] = str(err)
            log.warning(
                "run %s cannot be worked here (%s); its jobs were left as they are: `qhw cancel --run %s` ends them",
                run_id, err, run_id,
            )

    def worker(self, run_id: int) -> RunWorker | None:
        """The run's worker (built on first use), or None when it cannot be worked here."""
        if run_id not in self.workers and run_id not in self.unworkable:
            self.load(run_id)
        return self.workers.get(run_id)

    def check_cluster(self) -> None:
        """A Dask cluster that cannot run the local jobs is refused before any job is claimed."""
        cluster = settings.dask_scheduler(self.scheduler)
        if not cluster:
            return
        for job in self.store.ledger.jobs(self.run_id, states=UNFINISHED_STATES):
            self.worker(job.run_id)
        if any(is_local(worker.backend) for worker in self.workers.values()):
            parallel.connect(cluster, settings.dask_timeout()).close()

    def work_once(self, progress: Progress) -> Tally:
        """Every unfinished job claimed and worked once: a remote job here, one
        at a time; a local simulator's jobs together, on every core."""
        store, holder, tally = self.store, self.holder, Tally()
        unfinished = store.ledger.jobs(self.run_id, states=UNFINISHED_STATES)
        local: dict[int, list[JobRecord]] = {}
        with progress.task("collecting jobs", total=len(unfinished)) as task:
            for job in unfinished:
                worker = self.worker(job.run_id)
                claimed = None if worker is None else store.ledger.claim(job, holder)
                if worker is None or claimed is None:
                    if worker is not None:
                        tally.held_elsewhere.add(job.id)
                    task.advance()
                    continue
                try:
                    if is_local(worker.backend):
                        local.setdefault(job.run_id, []).append(claimed)  # run below, on every core
                        continue
                    worker.work(claimed, tally)
                except BaseException:
                    store.ledger.release([job.id, *(j.id for jobs in local.values() for j in jobs)], holder)
                    raise
                store.ledger.release([job.id], holder)
                task.advance()
            for local_run, jobs in local.items():
                try:
                    self._run_local(self.workers[local_run], jobs, tally, task.advance)
                finally:
                    store.ledger.release([job.id for job in jobs], holder)
        return tally

    def _run_local(self, worker: RunWorker, jobs: list[JobRecord], tally: Tally, advance: Callable[[], None]) -> None:
        backend = worker.local
        backend.use_threads(1 if self.local_workers == 1 else None)
        with executor_for(backend, self.local_workers, self.scheduler, len(jobs), worker.executable) as pool:
            worker.run_local(jobs, pool, tally, advance)


def settle_usage(store: Store, run_id: int | None = None, *, workers: dict[int, RunWorker] | None = None, holder: str | None = None) -> int:
    """Ask the providers again for the usage of finished jobs whose figures were
    not final (IBM computes them after a job ends); record those now final.

    A provider that cannot be asked (network, credentials) leaves the figures
    unknown for a later call. Returns how many jobs still wait for final usage.
    """
    pending = store.ledger.jobs_with_usage_pending(run_id)
    workers = {} if workers is None else workers
    left = 0
    for job in pending:
        try:
            if job.run_id not in workers:
                workers[job.run_id] = RunWorker.load(store, job.run_id, holder=holder or holder_id())
            settled = workers[job.run_id].settle_usage(job)
        except QhwError as err:
            log.warning("job %s: its usage could not be read again (%s); it stays unknown", job.id, err)
            settled = False
        left += not settled
    return left


def cancel_run(store: Store, run_id: int | None = None) -> list[CancelOutcome]:
    """Ask the provider to cancel a run's unfinished jobs; one outcome per job.

    A job is cancelled when the provider confirms it (or it never reached the
    provider); one that finished first is collected; a job another collector
    holds, or whose provider could not be reached, is reported as such.
    """
    settings.check_all()
    run = store.ledger.run(run_id)
    unfinished = store.ledger.jobs(run.id, states=UNFINISHED_STATES)
    if not unfinished:
        return []
    holder = holder_id()
    try:
        cancel = RunWorker.load(store, run.id, holder=holder).cancel
    except QhwError:
        if run.device_kind not in LOCAL_DEVICE_KINDS:
            raise  # a provider's job is cancelled by the provider: that needs its backend
        cancel = partial(_cancel_ended_local_job, store)
    outcomes = []
    for job in unfinished:
        claimed = store.ledger.claim(job, holder)
        if claimed is None:
            outcomes.append(CancelOutcome(job.id, "not cancelled: another qhw process is working on it; try again"))
            continue
        try:
            outcomes.append(CancelOutcome(job.id, cancel(claimed)))
        except BackendError as err:  # per job: the others are still tried
            current = store.ledger.job(job.id)
            store.ledger.record_error(current, str(err))
            outcomes.append(CancelOutcome(job.id, f"not confirmed: {err}"))
        finally:
            store.ledger.release([job.id], holder)
    return outcomes


def missing_executions(store: Store, run_id: int) -> list[ExecutionFailureRecord]:
    """Executions a provider failed inside jobs that otherwise ran, not yet
    answered by a retry job: what `qhw retry` runs again."""
    jobs = {job.id: job for job in store.ledger.jobs(run_id)}
    return [
        failure
        for failure in store.ledger.execution_failures(run_id)
        if failure.retry_job_id is None
        and jobs[failure.job_id].state is JobState.COLLECTED
        and failure.attempt == jobs[failure.job_id].attempt
    ]


#: Runs of these kinds ran in the process that ran them: nothing runs elsewhere.
LOCAL_DEVICE_KINDS = ("simulator", "emulation")


def _cancel_ended_local_job(store: Store, job: JobRecord) -> str:
    """Cancel a local run's claimed job without its backend (which cannot be
    built here): such a job ran in a process that has ended, nothing runs it now."""
    moved = store.ledger.move(job, JobState.CANCELLED, note="cancelled: its process had ended (its backend cannot be built here)")
    return "cancelled" if moved else f"left {store.ledger.job(job.id).state.value}"


def _sample_order(arrays, split: str, limit: int | None, seed: int) -> np.ndarray:
    """(n, 2) int32 rows of (split code, index within split), train before test."""
    parts = []
    for name in ("train", "test") if split == "all" else (split,):
        labels = arrays.labels(name)
        keep = stratified_subset(labels, limit, seed, "limit", name)
        parts.append(np.column_stack([np.full(len(keep), SPLIT_CODES[name]), keep]))
    return np.concatenate(parts).astype(np.int32)


def _run_circuit(executable: Executable, order: np.ndarray, calibration: Executable | None) -> RunCircuit:
    return RunCircuit(
        qpy=circuits.to_qpy(executable.circuit),
        qasm3=circuits.to_qasm3(executable.circuit),
        sample_order=order,
        calibration_qpy=None if calibration is None else circuits.to_qpy(calibration.circuit),
    )
