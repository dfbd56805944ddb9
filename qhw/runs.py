"""Runs: submit a feature set to a backend, collect, cancel and retry its jobs.

A run's jobs are written (pending, each with its idempotency key, claimed by
the submitting process) before any provider is called; each job is then
worked by :class:`qhw.worker.RunWorker`. Any number of ``collect`` processes
may run at once: each claims a job before working on it. See docs/ledger.md.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from functools import cache, partial
from pathlib import Path
from typing import Callable

import numpy as np

from qhw import circuits, config, parallel, settings
from qhw.adaptive import AdaptiveSettings, check_model, load_classifier, unsettled_by_change, unsettled_by_model
from qhw.backend import Backend, Executable, get_backend
from qhw.checks import check_positive, check_seed
from qhw.datasets import stratified_subset
from qhw.errors import BackendError, ConfigError, NotFoundError, QhwError
from qhw.features import load_arrays
from qhw.pricing import CostEstimate, check_amount, load_prices, sum_estimates
from qhw.packed_runs import check_pack, packed_executable, packed_sizes, plan_packing
from qhw.progress import Progress, SilentProgress
from qhw.records import (
    JOB_PURPOSES,
    FeatureSetRecord,
    RUN_SPLITS,
    SPLIT_CODES,
    SPLIT_NAMES,
    UNFINISHED_STATES,
    ExecutionFailureRecord,
    JobPlan,
    JobRecord,
    JobState,
    ModelRecord,
    RunRecord,
    RunSpec,
)
from qhw.store import RunCircuit, RunCounts, Store
from qhw.store.ledger import holder_id
from qhw.worker import Approver, RunWorker, Tally, parameter_rows

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
        return sum(-(-job.executions // self.run.copies) for job in self.jobs)

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
    mitigate: str | None = None,
    pack: int | str = 1,
    pack_spacing: int = 1,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
    adaptive: bool = False,
    model_id: int | None = None,
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
        mitigate: "readout" also runs the readout-calibration circuits (2
            executions on the same physical qubits, in jobs of their own).
        pack: copies of the feature map side by side in each execution, each
            on its own physical qubits and bound to its own sample ("auto": as
            many as qhw.packing places on the device); 1 runs one copy.
        pack_spacing: 1 keeps an idle qubit between copies, 0 allows neighbours.
        workers: local processes for a local simulator's jobs (default: every core).
        scheduler: a Dask scheduler's address, to run them on its cluster instead.
        adaptive: measure in rounds (qhw.adaptive), ``shots`` the most a
            sample gets; later rounds are driven by ``collect`` (here too, on
            a local simulator, whose rounds finish in this call).
        model_id: the hybrid model whose predictions settle an adaptive run's samples.

    Returns:
        The run, its jobs and what was left undone (jobs waiting on errors).
        Every input, the price and the device's limits are checked before
        anything is written or submitted.

    Raises:
        UnknownBackendError, NotFoundError, ConfigError, BackendError.
    """
    progress = progress or SilentProgress()
    settings.check_all(scheduler)
    if split not in RUN_SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(RUN_SPLITS)}, got {split!r}")
    if mitigate not in (None, "readout"):
        raise ConfigError(f"--mitigate must be 'readout', got {mitigate!r}")
    check_seed(seed)
    check_positive(shots, "--shots")
    check_positive(limit, "--limit")
    check_amount(max_cost, "--max-cost")
    wanted = check_pack(pack, pack_spacing)
    rounds = _adaptive_settings(adaptive, shots, model_id)
    backend = get_backend(backend_name, seed=seed)
    check_shots(backend, shots)
    feature_set = store.catalogue.feature_set(feature_set_id)
    if rounds is not None and model_id is not None:
        model = store.catalogue.model(model_id)
        check_model(model, feature_set.id)
        load_classifier(model, feature_set.circuits_per_sample * 2**feature_set.num_qubits)
    arrays = load_arrays(feature_set)
    order = _sample_order(arrays, split, limit, seed or 0)
    if len(order) == 0:
        raise ConfigError(f"feature set {feature_set.id} has no {split} samples")
    k = feature_set.circuits_per_sample
    template = feature_set.template()
    _check_width(backend, template, feature_set)  # by what is known offline; again once the device is read
    first_shots = shots if rounds is None else rounds.first_shots
    # The copies an execution, from what is known of the device offline.
    document = store.ledger.latest_device_document(backend.name) if wanted != 1 else None
    packing_plan = plan_packing(
        backend, wanted, pack_spacing, offline=True, document=document, template=template, circuits_to_run=len(order) * k
    )
    # Each copy's qubits are calibrated: every calibration state once a copy.
    calibrations = len(circuits.calibration_rows()) * packing_plan.copies if mitigate else 0
    plans = plan_jobs(backend, len(order) * k, first_shots, calibrations=calibrations, copies=packing_plan.copies)
    # The price is known from static tables: refuse before touching the network.
    prices = load_prices() if backend.is_paid else None
    estimate = _run_estimate(backend, prices, len(order) * k, calibrations, packing_plan.copies, shots, rounds)
    if estimate is not None and wanted == 1 and rounds is None:
        estimate = _with_packed_alternative(backend, estimate, len(order) * k, shots, calibrations, pack_spacing, prices, template)
    guard_cost(backend, estimate, max_cost, approve)
    backend.check(sum(packed_sizes(plans, packing_plan.copies)), shots)
    _check_width(backend, template, feature_set)
    # The device's own properties (now read) may cap jobs lower than the static
    # limits did (a device without program sets), may place the copies
    # otherwise than its snapshot did, and may carry its own price.
    packing_plan = plan_packing(backend, wanted, pack_spacing, offline=False, template=template, circuits_to_run=len(order) * k)
    calibrations = len(circuits.calibration_rows()) * packing_plan.copies if mitigate else 0
    plans = plan_jobs(backend, len(order) * k, first_shots, calibrations=calibrations, copies=packing_plan.copies)
    if rounds is not None:  # round 0 of an adaptive run: every sample, a first share of its shots
        plans = [replace(plan, shots=first_shots) if plan.purpose == "samples" else plan for plan in plans]
    if prices is not None:
        prices, estimate = _device_prices(
            backend, prices, estimate, partial(_run_estimate, backend, executions=len(order) * k, calibrations=calibrations,
                                               copies=packing_plan.copies, shots=shots, rounds=rounds),
            max_cost, approve,
        )

    # A local simulator's worker processes start now, while this one prepares the run.
    with _executor_for(backend, workers, scheduler, len(plans)) as pool:
        executable = packed_executable(backend, packing_plan, seed, template=template)
        calibration = None
        if mitigate:
            # The calibration must read the very physical qubits the feature map uses (each copy's).
            calibration = packed_executable(
                backend, packing_plan, seed, template=circuits.readout_calibration(template.num_qubits), initial_layout=executable.layout
            )
            if tuple(calibration.layout) != tuple(executable.layout):
                raise BackendError(
                    f"{backend.name} placed the calibration on qubits {calibration.layout}, not {executable.layout}"
                )
        spec = RunSpec(
            feature_set_id=feature_set.id,
            backend=backend.name,
            provider=backend.provider,
            split=split,
            shots=shots,
            num_qubits=template.num_qubits,
            circuits_per_sample=k,
            n_samples=len(order),
            seed=seed,
            layout=tuple(executable.layout),
            cost_estimate_usd=None if estimate is None else estimate.usd,
            mitigation=mitigate,
            device_kind=backend.kind,
            device_label=backend.description,
            prices_json=None if prices is None else prices.to_json(),
            copies=executable.copies,
            packing_json=packing_plan.to_json(),
            adaptive_json=None if rounds is None else rounds.to_json(),
        )
        # The device's calibration now, for the qubits this run uses: kept with the run.
        snapshot = backend.calibration(executable.layout)
        parameters = parameter_rows(arrays, order, k)
        holder = holder_id()
        run, jobs = store.ledger.create_run(
            spec, _run_circuit(executable, order, calibration), plans, claimed_by=holder, calibration=snapshot
        )
        worker = RunWorker(store, run, backend, executable, parameters, calibration=calibration, holder=holder, approved=True)
        tally = _work_all(store, worker, jobs, progress, f"{backend.name}: jobs", pool=pool, workers=workers)
        if rounds is not None:
            tally = _drive_rounds(store, worker, tally, progress, pool=pool, workers=workers)
    return SubmitResult(run=store.ledger.run(run.id), jobs=store.ledger.jobs(run.id), tally=tally, notes=packing_plan.notes)


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
    failed inside jobs that otherwise ran, in new jobs of their own.

    Raises:
        NotFoundError: no such run, or nothing of it failed.
    """
    settings.check_all(scheduler)
    run = store.ledger.run(run_id)
    failed = store.ledger.jobs(run.id, states=[JobState.FAILED])
    missing = missing_executions(store, run.id)
    if not failed and not missing:
        raise NotFoundError(f"run {run.id} has no failed jobs or executions to retry")
    backend = get_backend(run.backend, seed=run.seed)
    of_run = {job.id: job for job in store.ledger.jobs(run.id)}
    # A packed run is retried packed as it ran: its copies and their qubits are
    # the run's; an adaptive run's executions get the shots of their round.
    sizes = _retry_sizes(failed, _retry_plans(backend, run, missing, of_run), run.copies)
    prices = load_prices() if backend.is_paid else None

    def estimate_of(table) -> CostEstimate | None:
        return _retry_estimate(backend, run, failed, _retry_plans(backend, run, missing, of_run), table)

    estimate = estimate_of(prices) if prices else None
    guard_cost(backend, estimate, max_cost, approve)
    backend.check(sum(sizes), run.shots)
    # Planned again by the device's own limits, now read (see submit).
    plans = _retry_plans(backend, run, missing, of_run)
    if prices is not None:
        _device_prices(backend, prices, estimate, estimate_of, max_cost, approve)
    holder = holder_id()
    worker = RunWorker.load(store, run.id, holder=holder, backend=backend, approved=True)
    # Where the jobs will run is settled (a cluster reached, with a worker) before any job is reset.
    with _executor_for(backend, workers, scheduler, len(failed) + len(plans)) as pool:
        fresh = [job for job in map(store.ledger.reset_for_retry, failed) if job is not None]
        claimed = [job for job in (store.ledger.claim(job, holder) for job in fresh) if job is not None]
        if plans:
            claimed += store.ledger.add_retry_jobs(run.id, plans, claimed_by=holder)
        tally = _work_all(store, worker, claimed, progress or SilentProgress(), f"{backend.name}: retried jobs", pool=pool, workers=workers)
        if run.adaptive:  # the round the retry completed goes on (here, on a local simulator)
            tally = _drive_rounds(store, worker, tally, progress or SilentProgress(), pool=pool, workers=workers)
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
    holder = holder_id()
    run_workers: dict[int, RunWorker] = {}
    unworkable: dict[int, str] = {}  # runs whose worker cannot be built here (a device file gone): skipped
    if settings.dask_scheduler(scheduler):
        # A cluster that cannot run the local jobs is refused before any job is claimed.
        for job in store.ledger.jobs(run_id, states=UNFINISHED_STATES):
            if job.run_id not in run_workers and job.run_id not in unworkable:
                _load_worker(store, job.run_id, holder, approve, run_workers, unworkable, only=run_id)
        if any(worker.backend.is_local for worker in run_workers.values()):
            parallel.connect(settings.dask_scheduler(scheduler), settings.dask_timeout()).close()
    deadline = None if timeout is None else time.monotonic() + timeout
    rounds_started = 0
    while True:
        tally = Tally()
        unfinished = store.ledger.jobs(run_id, states=UNFINISHED_STATES)
        local: dict[int, list[JobRecord]] = {}
        with progress.task("collecting jobs", total=len(unfinished)) as task:
            for job in unfinished:
                if job.run_id not in run_workers and job.run_id not in unworkable:
                    _load_worker(store, job.run_id, holder, approve, run_workers, unworkable, only=run_id)
                if job.run_id in unworkable:
                    task.advance()
                    continue
                claimed = store.ledger.claim(job, holder)
                if claimed is None:
                    tally.held_elsewhere.add(job.id)
                    task.advance()
                    continue
                try:
                    if run_workers[job.run_id].backend.is_local:
                        local.setdefault(job.run_id, []).append(claimed)  # run below, on every core
                        continue
                    run_workers[job.run_id].work(claimed, tally)
                except BaseException:
                    store.ledger.release([job.id, *(j.id for jobs in local.values() for j in jobs)], holder)
                    raise
                store.ledger.release([job.id], holder)
                task.advance()
            for local_run, jobs in local.items():
                try:
                    backend = run_workers[local_run].backend
                    backend.use_threads(1 if workers == 1 else None)
                    with _executor_for(backend, workers, scheduler, len(jobs)) as pool:
                        run_workers[local_run].run_local(jobs, pool, tally, task.advance)
                finally:
                    store.ledger.release([job.id for job in jobs], holder)
        # An adaptive run whose round is collected (here, or by a process that
        # ended before it could go on) starts its next one; its jobs are worked at once.
        started = _advance_rounds(store, run_id, holder, approve, run_workers, unworkable)
        if started:
            rounds_started += started
            continue
        remaining = store.ledger.jobs(run_id, states=UNFINISHED_STATES)
        usage_pending = settle_usage(store, run_id, workers=run_workers, holder=holder)
        # Waiting cannot help jobs that need an approval, or whose run cannot be worked here.
        blocked = {job.id for job in remaining if job.run_id not in unworkable} <= tally.awaiting_approval
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


def _advance_rounds(
    store: Store, run_id: int | None, holder: str, approve: Approver | None,
    workers: dict[int, RunWorker], unworkable: dict[int, str],
) -> int:
    """Start the next round of every adaptive run (of one, or all) whose round
    is collected; returns how many rounds were started."""
    started = 0
    for run in [store.ledger.run(run_id)] if run_id is not None else store.ledger.runs():
        if not run.adaptive or run.rounds_done or run.id in unworkable:
            continue
        if run.id not in workers:
            _load_worker(store, run.id, holder, approve, workers, unworkable, only=run_id)
            if run.id in unworkable:
                continue
        try:
            jobs = advance_round(store, run, workers[run.id].backend)
        except QhwError as err:
            # Its model's file is gone, say: this run waits, named once; the others go on.
            if run_id is not None:
                raise
            unworkable[run.id] = str(err)
            log.warning(
                "run %s cannot start its next round here (%s); its collected rounds stay stored, the other runs go on",
                run.id, err,
            )
            continue
        started += bool(jobs)
    return started


def _load_worker(
    store: Store, run_id: int, holder: str, approve: Approver | None,
    workers: dict[int, RunWorker], unworkable: dict[int, str], *, only: int | None,
) -> None:
    """The run's worker into ``workers``; or, when it cannot be built here (its
    device properties file is gone, say), the reason into ``unworkable``, so
    that one run does not stop the collection of every other. A run asked for
    by id (``only``) raises instead."""
    try:
        workers[run_id] = RunWorker.load(store, run_id, holder=holder, approve=approve)
    except QhwError as err:
        if only is not None:
            raise
        unworkable[run_id] = str(err)
        log.warning(
            "run %s cannot be worked here (%s); its jobs were left as they are: `qhw cancel --run %s` ends them",
            run_id, err, run_id,
        )


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


@dataclass(frozen=True)
class Export:
    path: Path
    samples: int  # complete samples written
    run_samples: int  # samples the run has in all
    unfinished_jobs: int


def export_results(store: Store, run_id: int | None, out: Path) -> Export:
    """Write a run's stored counts to an .npz for analysis elsewhere.

    Keys: counts (samples x circuits x 2**qubits, canonical order), shots
    (samples: the shots each sample's circuits got; an adaptive run's differ
    from sample to sample), circuit_shots (samples x circuits), parameters
    (samples x circuits x the map's parameters: the exact float64 values bound
    to each execution, in the order of the template's inputs), template
    (the feature map as OpenQASM 3, its ``input float`` parameters declared in
    that order, qubit i measured into bit i), feature_map (its name), labels,
    split ('train'/'test'), sample_index (within its split), backend.
    Only complete samples are written; the result says how many of the run's.

    Raises:
        ConfigError: ``out`` is not an .npz path in a writable folder.
    """
    out = Path(out)
    if out.suffix != ".npz":
        raise ConfigError(f"--out must name an .npz file, got {out}")
    if not out.parent.is_dir():
        raise ConfigError(f"--out: folder {out.parent} does not exist")
    config.writable_dir(out.parent, "--out's folder")
    run = store.ledger.run(run_id)
    stored = store.results.run_counts(run.id)
    feature_set = store.catalogue.feature_set(run.feature_set_id)
    arrays = load_arrays(feature_set)
    labels = np.array(
        [arrays.labels(split)[index] for split, index in zip(stored.splits, stored.sample_index)], dtype=np.int64
    )
    # The rows the worker bound (qhw.worker.parameter_rows), sample by sample.
    order = np.array([[SPLIT_CODES[str(split)], int(index)] for split, index in zip(stored.splits, stored.sample_index)], dtype=np.int64)
    bound = parameter_rows(arrays, order.reshape(-1, 2), run.circuits_per_sample)
    parameters = bound.reshape(len(order), run.circuits_per_sample, feature_set.num_parameters)
    try:
        with config.writing(out):
            np.savez_compressed(
                out,
                counts=stored.counts,
                # A sample's circuits get the same shots (its rounds carry all of them);
                # one that has not had all of a round yet reads its fewest.
                shots=stored.shots_each.min(axis=1),
                circuit_shots=stored.shots_each,
                parameters=parameters,
                template=np.str_(feature_set.template_qasm3 or circuits.to_qasm3(feature_set.template())),
                feature_map=np.str_(feature_set.feature_map),
                labels=labels,
                split=stored.splits,
                sample_index=stored.sample_index,
                backend=np.str_(run.backend),
            )
    except BaseException:
        out.unlink(missing_ok=True)  # no half-written file
        raise
    unfinished = len(store.ledger.jobs(run.id, states=UNFINISHED_STATES))
    return Export(path=out, samples=len(stored.counts), run_samples=run.n_samples, unfinished_jobs=unfinished)


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


def _retry_sizes(failed: list[JobRecord], plans: list[tuple[JobPlan, list[int]]], copies: int = 1) -> list[int]:
    """The executions each retried job sends (a packed execution carries ``copies``)."""
    return [-(-job.executions // copies) for job in failed] + packed_sizes([plan for plan, _ in plans], copies)


def _retry_estimate(backend: Backend, run: RunRecord, failed: list[JobRecord], plans: list[tuple[JobPlan, list[int]]], prices) -> CostEstimate | None:
    """What a retry sends, priced job by job with the shots each job gets."""
    by_shots: dict[int, list[int]] = {}
    for job in failed:
        by_shots.setdefault(job.shots(run.shots), []).append(-(-job.executions // run.copies))
    for plan, _ in plans:
        by_shots.setdefault(plan.shots or run.shots, []).append(-(-plan.executions // run.copies))
    parts = [backend.estimate_cost(sizes, shots, prices) for shots, sizes in sorted(by_shots.items())]
    if not parts or any(part is None for part in parts):
        return None
    return sum_estimates(parts)


def _retry_plans(
    backend: Backend, run: RunRecord, missing: list[ExecutionFailureRecord], jobs: dict[int, JobRecord]
) -> list[tuple[JobPlan, list[int]]]:
    """Jobs of exactly the missing executions, within the backend's limits, by
    purpose and by the round (and shots) of the job that failed them; each
    with the ids of the failures it answers."""
    plans = []
    groups: dict[tuple[str, int, int | None], list[ExecutionFailureRecord]] = {}
    for failure in missing:
        job = jobs[failure.job_id]
        groups.setdefault((failure.purpose, job.round, job.own_shots), []).append(failure)
    for (purpose, round, shots), failures in sorted(groups.items(), key=lambda item: (JOB_PURPOSES.index(item[0][0]), item[0][1])):
        per_job = logical_per_job(backend, shots or run.shots, run.copies)
        failures.sort(key=lambda f: f.execution)
        for start in range(0, len(failures), per_job):
            chunk = failures[start : start + per_job]
            plans.append((JobPlan.of([f.execution for f in chunk], purpose, shots=shots, round=round), [f.id for f in chunk]))
    return plans


def _device_prices(backend: Backend, prices, estimate: CostEstimate | None, estimate_of: Callable, max_cost, approve):
    """The table with the device's own published prices (read by ``check``), and
    the estimate by it (``estimate_of(table)``, by the jobs the device's own
    limits make). When that estimate is higher than the one the guard passed,
    the guard runs again: --max-cost is checked, and approval asked, anew."""
    device_prices = backend.price_table(prices)
    revised = estimate_of(device_prices)
    if revised is not None and (estimate is None or revised.usd > estimate.usd + 1e-12):
        guard_cost(backend, revised, max_cost, approve)
    return device_prices, revised if revised is not None else estimate


def _run_estimate(
    backend: Backend, prices, executions: int, calibrations: int, copies: int, shots: int, rounds: AdaptiveSettings | None
) -> CostEstimate | None:
    """What a new run costs at most: every execution at ``shots``; an adaptive
    run's worst case, every sample through every round (each round's jobs
    priced with its own shots, the calibration with the run's)."""
    if prices is None:
        return None
    if rounds is None:
        return backend.estimate_cost(packed_sizes(plan_jobs(backend, executions, shots, calibrations=calibrations, copies=copies), copies), shots, prices)
    parts = [
        backend.estimate_cost(packed_sizes(plan_jobs(backend, executions, rounds.round_shots(r), copies=copies), copies), rounds.round_shots(r), prices)
        for r in range(rounds.rounds)
    ]
    if calibrations:
        calibration_plans = [plan for plan in plan_jobs(backend, 0, shots, calibrations=calibrations, copies=copies)]
        parts.append(backend.estimate_cost(packed_sizes(calibration_plans, copies), shots, prices))
    if any(part is None for part in parts):
        return None
    total = sum_estimates(parts)
    return replace(total, detail=f"worst case, every sample through {rounds.rounds} rounds to {shots} shots: {total.detail}")


def _adaptive_settings(adaptive: bool, shots: int, model_id: int | None) -> AdaptiveSettings | None:
    if not adaptive:
        if model_id is not None:
            raise ConfigError("--model decides an adaptive run's rounds: give --adaptive too")
        return None
    return AdaptiveSettings.for_shots(shots, model_id)


def advance_round(store: Store, run: RunRecord, backend: Backend) -> list[JobRecord] | None:
    """Start the next round of an adaptive run whose round is collected.

    The samples of the round just collected that are still unsettled
    (qhw.adaptive) get the next round's shots, in new pending jobs; when none
    is, or the last round is done, the run's rounds end. Written in one
    compare-and-set on the run's round (Ledger.next_round): any number of
    collectors start a round once.

    Returns:
        The new round's jobs ([] when the rounds ended here); None when there
        is nothing to do yet (jobs still out, a round's failures not retried,
        or another process moved the run on first).
    """
    if not run.adaptive or run.rounds_done:
        return None
    jobs = store.ledger.jobs(run.id)
    if any(job.state in UNFINISHED_STATES for job in jobs):
        return None
    rounds = AdaptiveSettings.from_json(run.adaptive_json)
    k = run.circuits_per_sample
    order = store.ledger.run_circuit(run.id).sample_order
    planned = {int(e) for job in jobs if job.round == run.round and job.purpose == "samples" for e in job.execution_indices}
    stored = {
        int(position) * k + circuit
        for position, circuit in _positions(order, store.results.round_keys(run.id, run.round))
    }
    if planned - stored:
        # Failed jobs or executions of the round: `qhw retry` runs them, then the round goes on.
        return None
    samples = sorted({e // k for e in planned})
    keys = [(SPLIT_NAMES[int(code)], int(index)) for code, index in order[samples]]
    after = _restricted(store.results.run_counts(run.id, through_round=run.round), keys)
    if run.round + 1 >= rounds.rounds:
        unsettled = np.zeros(len(keys), dtype=bool)  # every sample has had --shots
    elif rounds.model_id is not None:
        classifier = _classifier(store, rounds.model_id, k * 2**run.num_qubits)
        unsettled = unsettled_by_model(classifier, after, rounds, seed=(run.seed or 0) + run.round)
    elif run.round == 0:
        unsettled = np.ones(len(keys), dtype=bool)  # nothing to compare with yet
    else:
        before = _restricted(store.results.run_counts(run.id, through_round=run.round - 1), keys)
        unsettled = unsettled_by_change(before, after, rounds)
    executions = [sample * k + circuit for sample, more in zip(samples, unsettled) if more for circuit in range(k)]
    shots = rounds.round_shots(run.round + 1) if executions else 0
    plans = []
    if executions:
        per_job = logical_per_job(backend, shots, run.copies)
        plans = [
            JobPlan.of(executions[start : start + per_job], shots=shots, round=run.round + 1)
            for start in range(0, len(executions), per_job)
        ]
    started = store.ledger.next_round(run, plans)
    if started is not None:
        log.info("run %s: round %d collected; %d of %d sample(s) unsettled", run.id, run.round, int(unsettled.sum()), len(keys))
    return started


def _drive_rounds(store: Store, worker: RunWorker, tally: Tally, progress: Progress, *, pool, workers) -> Tally:
    """An adaptive run's later rounds, in this process, while each finishes
    here (a local simulator's); a provider's rounds are left to ``collect``."""
    while True:
        run = store.ledger.run(worker.run.id)
        started = advance_round(store, run, worker.backend)
        if not started:
            return tally
        claimed = [job for job in (store.ledger.claim(job, worker.holder) for job in started) if job is not None]
        tally = _work_all(store, worker, claimed, progress, f"{worker.backend.name}: round {run.round + 1}", pool=pool, workers=workers)


@cache
def _loaded_classifier(model: ModelRecord, input_dim: int):
    """A model's Keras classifier, loaded once a process (a round needs it again)."""
    return load_classifier(model, input_dim)


def _classifier(store: Store, model_id: int, input_dim: int):
    return _loaded_classifier(store.catalogue.model(model_id), input_dim)


def _positions(order: np.ndarray, keys) -> list[tuple[int, int]]:
    """(position in the run's sample order, circuit) of (split, sample index, circuit) keys."""
    position = {(SPLIT_NAMES[int(code)], int(index)): row for row, (code, index) in enumerate(order)}
    return [(position[(split, index)], circuit) for split, index, circuit in keys]


def _restricted(counts: RunCounts, keys: list[tuple[str, int]]) -> RunCounts:
    """These samples of a run's counts, in this order."""
    row = {(str(s), int(i)): r for r, (s, i) in enumerate(zip(counts.splits, counts.sample_index))}
    return counts.subset(np.array([row[key] for key in keys], dtype=np.int64))


def _check_width(backend: Backend, template, feature_set: FeatureSetRecord) -> None:
    """A device narrower than the feature map is refused before anything is written."""
    if backend.num_qubits and backend.num_qubits < template.num_qubits:
        raise ConfigError(
            f"{backend.name} has {backend.num_qubits} qubits; the feature map of feature set {feature_set.id} "
            f"({feature_set.feature_map}) needs {template.num_qubits}"
        )


def _with_packed_alternative(
    backend: Backend, estimate: CostEstimate, executions: int, shots: int, calibrations: int, spacing: int, prices, template
):
    """The estimate of an unpacked paid run, saying what ``--pack auto`` would
    cost where the device (as known offline) holds more than one copy."""
    try:
        auto = plan_packing(backend, None, spacing, offline=True, template=template, circuits_to_run=executions)
    except ConfigError:
        return estimate
    if auto.copies < 2:
        return estimate
    plans = plan_jobs(backend, executions, shots, calibrations=calibrations * auto.copies, copies=auto.copies)
    packed = backend.estimate_cost(packed_sizes(plans, auto.copies), shots, prices)
    if packed is None:
        return estimate
    return replace(estimate, alternative=f"with --pack auto ({auto.copies} copies an execution): {packed.usd_text}")


def logical_per_job(backend: Backend, shots: int, copies: int) -> int:
    """Logical executions a job carries: a provider's limit counts what is sent
    (``copies`` to an execution); a local simulator's counts the shots it holds
    in memory, which its copies all hold (they run apart). Always whole packed
    executions, so that position p of a job is copy p % copies."""
    per_job = backend.limits.circuits_per_job(shots)
    if not backend.is_local:
        return per_job * copies
    return max(copies, per_job // copies * copies)


def plan_jobs(backend: Backend, executions: int, shots: int, *, calibrations: int = 0, copies: int = 1) -> list[JobPlan]:
    """Jobs within the backend's limits: the samples' executions, then the
    readout calibration's in jobs of their own (a device that takes one
    circuit a task gets one calibration state a task). A packed run's job
    carries ``copies`` logical executions in each execution it sends."""
    per_job = logical_per_job(backend, shots, copies)
    plans = [JobPlan(start, min(start + per_job, executions)) for start in range(0, executions, per_job)]
    plans += [JobPlan(start, min(start + per_job, calibrations), "calibration") for start in range(0, calibrations, per_job)]
    return plans


def guard_cost(
    backend: Backend,
    estimate: CostEstimate | None,
    max_cost: float | None,
    approve: Callable[[CostEstimate | None], bool] | None,
) -> None:
    """Refuse a paid submission above ``max_cost``, without credentials, or
    without approval: in that order, so that a price is refused before
    anything else is asked, and nobody is asked to pay for what cannot run."""
    check_amount(max_cost, "--max-cost")
    if not backend.is_paid:
        backend.check_credentials()
        return
    if estimate is not None:
        check_amount(estimate.usd, f"the estimate for {backend.name} ({estimate.detail}; prices of {estimate.prices_taken})")
    if max_cost is not None:
        if estimate is None:
            raise ConfigError(
                f"no price is known for {backend.name}, so --max-cost cannot be checked; "
                "add one to prices.toml (see the README); nothing was submitted"
            )
        if estimate.usd > max_cost:
            raise ConfigError(f"estimated cost {estimate} exceeds --max-cost ${max_cost:,.2f}; nothing was submitted")
    backend.check_credentials()
    if approve is None or not approve(estimate):
        shown = estimate if estimate is not None else "unknown (no price for this device)"
        raise ConfigError(f"{backend.name} costs money (estimate: {shown}); not confirmed, nothing was submitted")


#: Runs of these kinds ran in the process that ran them: nothing runs elsewhere.
LOCAL_DEVICE_KINDS = ("simulator", "emulation")


def _cancel_ended_local_job(store: Store, job: JobRecord) -> str:
    """Cancel a local run's claimed job without its backend (which cannot be
    built here): such a job ran in a process that has ended, nothing runs it now."""
    moved = store.ledger.move(job, JobState.CANCELLED, note="cancelled: its process had ended (its backend cannot be built here)")
    return "cancelled" if moved else f"left {store.ledger.job(job.id).state.value}"


def _executor_for(backend: Backend, workers: int | None, scheduler: str | None, jobs: int):
    """Where a local simulator's jobs run (see qhw.parallel); remote jobs run here."""
    if not backend.is_local:
        return nullcontext(None)
    return parallel.executor(workers=workers, scheduler=scheduler, jobs=jobs, preload=(type(backend).__module__,))


def _work_all(
    store: Store, worker: RunWorker, jobs: list[JobRecord], progress: Progress, title: str, *, pool, workers: int | None
) -> Tally:
    """Work jobs this process has claimed (a local simulator's on ``pool``, a
    provider's in its batch); release the claims."""
    tally = Tally()
    try:
        with progress.task(title, total=len(jobs)) as task:
            if worker.backend.is_local:
                # One worker asked for: one thread; otherwise the simulator's own choice.
                worker.backend.use_threads(1 if workers == 1 else None)
                worker.run_local(jobs, pool, tally, task.advance)
            else:
                with worker.backend.batch(len(jobs)):
                    for job in jobs:
                        worker.work(job, tally)
                        task.advance()
    finally:
        store.ledger.release([job.id for job in jobs], worker.holder)
    return tally


def check_shots(backend: Backend, shots: int) -> None:
    """Raises ConfigError unless ``shots`` is within the backend's range."""
    limits = backend.limits
    if not limits.min_shots <= shots <= limits.max_shots:
        raise ConfigError(
            f"--shots must be between {limits.min_shots} and {limits.max_shots} on {backend.name}, got {shots}"
        )


def _sample_order(arrays, split: str, limit: int | None, seed: int) -> np.ndarray:
    """(n, 2) int32 rows of (split code, index within split), train before test."""
    parts = []
    for name in ("train", "test") if split == "all" else (split,):
        labels = arrays.labels(name)
        keep = stratified_subset(labels, limit, seed, "--limit", name)
        parts.append(np.column_stack([np.full(len(keep), SPLIT_CODES[name]), keep]))
    return np.concatenate(parts).astype(np.int32)


def _run_circuit(executable: Executable, order: np.ndarray, calibration: Executable | None) -> RunCircuit:
    return RunCircuit(
        qpy=circuits.to_qpy(executable.circuit),
        qasm3=circuits.to_qasm3(executable.circuit),
        sample_order=order,
        calibration_qpy=None if calibration is None else circuits.to_qpy(calibration.circuit),
    )
