"""Working on a run's jobs, one claimed job at a time: submit, follow, collect, cancel.

Every step starts from what the provider says and ends in one compare-and-set
of the ledger, so that any number of processes can work on one database:

- a pending job is submitted only after its row says so (``submit_started_at``,
  committed first); a pending job with that mark is looked up at the provider by
  its ``qhw-key`` tag before anything is sent again, and is sent again on a paid
  backend only with the user's approval;
- transient errors (network, 429, 5xx, throttling) are retried with backoff
  (:mod:`qhw.retrying`); when they persist the job keeps its state and records
  the error; only the provider's verdict (failed, cancelled, a job it no
  longer has) ends a job;
- a cancel is a request: the provider's answer decides the job's state.

See docs/ledger.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from qhw import circuits, parallel
from qhw.backend import Backend, Executable, JobResult, LocalBackend, RemoteBackend, get_backend, is_local, is_remote
from qhw.errors import (
    BackendError,
    ConfigError,
    CredentialsError,
    JobFailedError,
    JobNotFoundError,
    ListingLagError,
    ResultMappingError,
    TransientBackendError,
)
from qhw.feature_maps import template_of
from qhw.jobstates import UNFINISHED_STATES, JobState
from qhw.noise import NoiseSpec
from qhw.planning import pending_estimate
from qhw.pricing import CostEstimate, load_prices
from qhw.progress import Progress
from qhw.quality import ExactAnswers
from qhw.records import JOB_PURPOSES, SPLIT_NAMES, JobRecord, ProviderUsage, RunRecord
from qhw.repair import exclude_flagged
from qhw.retrying import with_retries
from qhw.store import ArtifactStore, Store
from qhw.store.arrays import FeatureArrays, load_arrays
from qhw.store.ledger import utcnow

log = logging.getLogger("qhw.worker")

#: How far the provider's clock may be behind ours when looking a job up by
#: its creation time.
CLOCK_SKEW = timedelta(minutes=10)
#: Seeds of an adaptive run's later rounds: past every copy's seed (parallel.COPY_SEED_STRIDE * packing.MAX_COPIES).
ROUND_SEED_STRIDE = 2**40
#: Seeds of a quality repair's jobs: past every round's.
REPAIR_SEED_STRIDE = 2**48
_PROGRESS = {JobState.PENDING: 0, JobState.QUEUED: 1, JobState.RUNNING: 2, JobState.DONE: 3}

#: Asked before a paid job is submitted by a command the user did not approve
#: it in (collect): the run, the jobs that need sending, their estimated cost.
Approver = Callable[[RunRecord, list[JobRecord], "CostEstimate | None"], bool]


@dataclass
class Tally:
    """What a pass over jobs left undone, by job id."""

    waiting_on_errors: set[int] = field(default_factory=set)
    awaiting_approval: set[int] = field(default_factory=set)
    held_elsewhere: set[int] = field(default_factory=set)


class RunWorker:
    """Everything needed to submit, follow and collect the jobs of one run."""

    def __init__(
        self,
        store: Store,
        run: RunRecord,
        backend: Backend,
        executable: Executable,
        parameters: np.ndarray,
        *,
        calibration: Executable | None,
        holder: str,
        approved: bool = False,
        approve: Approver | None = None,
    ) -> None:
        self.store = store
        self.run = run
        self.backend = backend
        self.executable = executable
        self.calibration = calibration
        self.parameters = parameters
        self.holder = holder
        # Paid submissions: approved for this command already (submit, retry),
        # or to be asked once per run (collect).
        self._approved: bool | None = True if approved or not backend.is_paid else None
        self._approve = approve
        # Actual costs are priced with the table in force when the run was submitted.
        self.prices = run.prices
        self._exact: ExactAnswers | bool | None = None  # (False: cannot be computed; None: not made yet)

    @classmethod
    def load(
        cls,
        store: Store,
        run_id: int,
        *,
        holder: str,
        backend: Backend | None = None,
        approved: bool = False,
        approve: Approver | None = None,
    ) -> RunWorker:
        """Rebuild a worker from the database alone (a later process)."""
        run = store.ledger.run(run_id)
        stored = store.ledger.run_circuit(run_id)
        backend = backend or backend_of_run(run, store.artifacts)
        noise = run_noise(run)
        executable = Executable(
            circuit=circuits.from_qpy(stored.qpy), layout=run.layout, copies=run.copies, reuse=run.reuse, engine=run.engine, noise=noise
        )
        calibration = None
        if stored.calibration_qpy is not None:
            calibration = Executable(
                circuit=circuits.from_qpy(stored.calibration_qpy), layout=run.layout, copies=run.copies, reuse=run.reuse,
                engine=run.engine, noise=noise,
            )
        arrays = load_arrays(store.artifacts, store.catalogue.feature_set(run.feature_set_id))
        parameters = parameter_rows(arrays, stored.sample_order, run.circuits_per_sample)
        return cls(
            store, run, backend, executable, parameters,
            calibration=calibration, holder=holder, approved=approved, approve=approve,
        )

    @property
    def remote(self) -> RemoteBackend:
        """The backend, on the steps that only a provider's has (submit, follow, cancel)."""
        if not is_remote(self.backend):
            raise TypeError(f"{self.backend.name} runs its jobs here; it has no provider to ask")
        return self.backend

    @property
    def local(self) -> LocalBackend:
        """The backend, on the steps that only a simulator's has (a job run here)."""
        if not is_local(self.backend):
            raise TypeError(f"{self.backend.name} runs its jobs at a provider")
        return self.backend

    # --- one step on a claimed job ---------------------------------------------------------

    def work(self, job: JobRecord, tally: Tally) -> JobRecord:
        """Move a job this process has claimed one step on; never raises for
        the provider's transient trouble (it is recorded on the job).

        Raises:
            CredentialsError: the provider refused the credentials: the command stops.
        """
        try:
            if is_local(self.backend):
                return self._run_here(job)
            if job.state is JobState.PENDING:
                return self._submit(job, tally)
            return self._follow(job)
        except CredentialsError:
            raise
        except BackendError as err:  # no verdict on the job: record, keep its state
            current = self.store.ledger.job(job.id)
            if current.state in UNFINISHED_STATES:
                current = self.store.ledger.record_error(current, str(err)) or current
                tally.waiting_on_errors.add(job.id)
                log.warning("job %s: %s (error %d in a row; the job keeps its state)", job.id, err, current.error_count)
            return current

    def _inputs(self, job: JobRecord) -> tuple[Executable, np.ndarray, int | None]:
        """What a job sends: its executable, its rows (in the circuit's
        parameter order, ``copies`` logical executions to a row) and its seed."""
        # A later round of an adaptive run draws fresh shots, never the first round's again.
        seed = None if self.run.seed is None else self.run.seed + job.execution_start + job.round * ROUND_SEED_STRIDE
        if seed is not None and job.repair:  # (a repair measures again: fresh shots)
            seed += job.repair * REPAIR_SEED_STRIDE
        if job.purpose == "calibration":
            seed = None if seed is None else seed + len(self.parameters)
            # Calibration execution j prepares state j // slots on slot j % slots (every copy at every position).
            states = np.repeat(circuits.calibration_rows(self.run.num_qubits), self.run.slots, axis=0)
            executable, rows = self._executable_for(job), states[job.execution_indices]
        else:
            executable, rows = self.executable, self.parameters[job.execution_indices]
        factor = self._noise_factor(job)
        if factor is not None and executable.noise is not None:
            executable = replace(executable, noise=executable.noise.drifted(factor))
        if job.slots_used is not None:
            # Its executions ride on the slots it uses; the others carry the
            # job's first row (filler: their outcomes are never read).
            placed = np.repeat(rows[:1], job.sent(executable.slots) * executable.slots, axis=0)
            placed[job.places(executable.slots)] = rows
            rows = placed
        return executable, circuits.circuit_rows(rows, executable.circuit, executable.slots), seed

    def _noise_factor(self, job: JobRecord) -> float | None:
        """A --noise run's drift factor for this job (None: no drift), drawn
        from the spec's seed and the job's own place in the run (its purpose,
        round and first execution), so that any process draws the same one."""
        noise = self.run.noise
        if noise is None or noise.drift == 0:
            return None
        repair = (job.repair,) if job.repair else ()  # (a repair is run at another time than what it repairs)
        return noise.drift_factor(JOB_PURPOSES.index(job.purpose), job.round, job.execution_start, *repair)

    def _executable_for(self, job: JobRecord) -> Executable:
        """What a job of this purpose runs: the feature map, or the readout calibration's circuit."""
        if job.purpose != "calibration":
            return self.executable
        if self.calibration is None:
            raise JobFailedError(f"job {job.id} is a readout calibration's, and run {self.run.id} has no calibration circuit")
        return self.calibration

    def _result(self, job: JobRecord, provider_job_id: str) -> JobResult:
        executable = self._executable_for(job)
        executions = job.sent(executable.slots)
        return self.remote.result(provider_job_id, executable=executable, executions=executions, shots=job.shots(self.run.shots))

    def _send(self, job: JobRecord) -> str:
        executable, values, seed = self._inputs(job)
        return self.remote.submit(
            executable, values, job.shots(self.run.shots), job.tags, seed=seed, idempotency_key=job.idempotency_key,
            rep_delay=self.run.rep_delay, device_mitigation=self.run.device_mitigation,
        )

    def _run_here(self, job: JobRecord) -> JobRecord:
        """A local simulator: run the job in this process and store its counts.

        Its earlier run (if any) was in a process that has ended, and nothing
        at a provider can be found again or paid twice.
        """
        executable, values, seed = self._inputs(job)
        try:
            result = parallel.run_local_job(self.local, executable, values, job.shots(self.run.shots), seed)
        except TransientBackendError:
            raise
        except ResultMappingError as err:
            return self._end(job, JobState.FAILED, error=f"the simulator's results cannot be mapped to the job's executions ({err})")
        except (JobFailedError, BackendError) as err:  # a simulator's refusal is its verdict
            return self._end(job, JobState.FAILED, error=str(err))
        # The job's local id says where it ran.
        return self._store_counts(job, f"{self.backend.name}:{parallel.where_this_runs()}", result, ProviderUsage())

    def run_local(self, jobs: list[JobRecord], pool: Executor | None, tally: Tally, advance: Callable[[], object] = lambda: None) -> None:
        """Claimed jobs of a local simulator: on ``pool``'s workers (or in this
        process when None); this process stores each job's counts as it comes.

        A worker that dies takes nothing with it: Dask runs its job again
        elsewhere; a process pool that breaks leaves its jobs to this process.
        """
        if pool is None:
            for index, job in enumerate(jobs):
                # As it is now: --quality auto may have left slots out since it was claimed.
                self.work(self.store.ledger.job(job.id), tally)
                advance()
                self.store.ledger.renew([j.id for j in jobs[index + 1 :]], self.holder)
            return
        qpy = {"samples": circuits.to_qpy(self.executable.circuit)}  # (copies: the run's, for both purposes)
        if self.calibration is not None:
            qpy["calibration"] = circuits.to_qpy(self.calibration.circuit)
        self.store.ledger.mark_dispatched([job.id for job in jobs], self.holder)  # (their executions are fixed from here)
        futures = {}
        for job in jobs:
            executable, values, seed = self._inputs(job)
            task = parallel.LocalJob(
                backend=self.backend.name, backend_seed=self.run.seed, qpy=qpy[job.purpose], layout=executable.layout,
                copies=executable.copies, reuse=executable.reuse, engine=executable.engine, noise=executable.noise, values=values,
                shots=job.shots(self.run.shots), seed=seed, artifacts_url=self.store.artifacts_url,
            )
            futures[pool.submit(parallel.run_job, task)] = job
        left = dict(futures)
        try:
            for future in parallel.finished(futures):
                job = left.pop(future)
                try:
                    where, result = future.result()
                except (JobFailedError, BackendError) as err:  # the simulator's own verdict
                    self._end(job, JobState.FAILED, error=str(err))
                except Exception as err:  # the worker went away (a broken pool, a lost Dask worker)
                    log.warning("a worker was lost (%s: %s); the rest of the run goes on in this process", type(err).__name__, err)
                    for remaining in [job, *left.values()]:
                        self.work(remaining, tally)
                        advance()
                    return
                else:  # the job's local id says which worker ran it
                    self._store_counts(job, f"{self.backend.name}:{where}", result, ProviderUsage())
                advance()
                self.store.ledger.renew([j.id for j in left.values()], self.holder)  # a long run keeps its claims
        except KeyboardInterrupt:
            # Ctrl-C: what the workers have already given back is kept; the rest is the next collect's.
            for future, job in left.items():
                if future.done() and not future.cancelled() and future.exception() is None:
                    where, result = future.result()
                    self._store_counts(job, f"{self.backend.name}:{where}", result, ProviderUsage())
            raise

    def _submit(self, job: JobRecord, tally: Tally) -> JobRecord:
        """A pending remote job: find it at the provider, or send it (once)."""

        def attempt() -> JobRecord:
            current = self.store.ledger.job(job.id)
            if current.state is not JobState.PENDING:
                return current  # another process got there first
            if current.may_exist_at_provider:
                found = self._find(current)
                if found is not None:
                    note = "found at the provider by its qhw-key after an interrupted submission"
                    return self.store.ledger.record_submission(current, found, note=note) or self.store.ledger.job(job.id)
            if not self._may_spend(current):
                tally.awaiting_approval.add(job.id)
                return current
            started = self.store.ledger.start_submission(current, self.holder)
            if started is None:
                return self.store.ledger.job(job.id)  # the claim lapsed: leave it to its new holder
            try:
                provider_job_id = self._send(started)
            except (TransientBackendError, CredentialsError):
                raise  # the next attempt looks the job up before sending anything
            except BackendError as err:
                return self._end(started, JobState.FAILED, error=f"the provider refused the job: {err}")
            note = f"submitted (attempt {started.attempt})"
            return self.store.ledger.record_submission(started, provider_job_id, note=note) or self.store.ledger.job(job.id)

        return with_retries(attempt, f"submitting job {job.id}")

    def _follow(self, job: JobRecord) -> JobRecord:
        """A job at the provider: move it on to what the provider says now."""
        provider_job_id = _provider_id(job)
        try:
            status = with_retries(lambda: self.remote.status(provider_job_id), f"polling job {job.id}")
        except JobNotFoundError as err:
            found = with_retries(lambda: self.remote.find_job(job.idempotency_key, self._since(job)), f"looking up job {job.id}")
            if found is None:
                reason = f"{err}, and no job tagged qhw-key={job.idempotency_key}: the provider no longer has it"
                return self._end(job, JobState.FAILED, error=reason)
            provider_job_id = found
            status = with_retries(lambda: self.remote.status(found), f"polling job {job.id}")
        if status.state is JobState.DONE or (status.state is JobState.FAILED and status.results_available):
            # A failed program set may still hold the results of the executables that ran.
            return self._collect(job, provider_job_id, failure=status.error)
        if status.state in (JobState.FAILED, JobState.CANCELLED):
            return self._end(job, status.state, error=status.error, provider_job_id=provider_job_id)
        if _PROGRESS.get(status.state, 0) > _PROGRESS[job.state]:
            return self.store.ledger.move(job, status.state) or self.store.ledger.job(job.id)
        self.store.ledger.clear_errors(job)  # still queued or running: nothing to change
        return job

    def _collect(self, job: JobRecord, provider_job_id: str, failure: str | None = None) -> JobRecord:
        """The provider finished the job (or failed it, with the results of
        what ran): fetch its counts and store them, with the executions it failed."""
        try:
            result = with_retries(lambda: self._result(job, provider_job_id), f"fetching job {job.id}")
        except ResultMappingError as err:
            error = f"the provider's results cannot be mapped to the job's executions ({err}); nothing of them was stored"
            return self._end(job, JobState.FAILED, error=error, provider_job_id=provider_job_id)
        except JobFailedError as err:
            error = str(err) if failure is None or failure in str(err) else f"{failure} ({err})"
            return self._end(job, JobState.FAILED, error=error, provider_job_id=provider_job_id)
        except BackendError:
            # Finished but not fetched: it stays done (never failed) and the
            # fetch is repeated by the next collect.
            if job.state is not JobState.DONE:
                self.store.ledger.move(job, JobState.DONE, note="finished at the provider; fetching its counts failed")
            raise
        return self._store_counts(job, provider_job_id, result, self._usage(job, provider_job_id))

    def _store_counts(self, job: JobRecord, provider_job_id: str, result: JobResult, usage: ProviderUsage) -> JobRecord:
        stored = job if job.provider_job_id == provider_job_id else _with_provider_id(job, provider_job_id)
        result = demultiplexed(result, job, self.executable.slots)
        end = JobState.COLLECTED if len(result.failed) < job.executions else JobState.FAILED
        shots, cost, factor = job.shots(self.run.shots), self._cost(job, end, usage), self._noise_factor(job)
        if job.purpose == "calibration":
            self.store.results.store_calibration(stored, result.counts, shots, usage=usage, cost_usd=cost, failed=result.failed, noise_factor=factor)
        else:
            exact = self._exact_answers()
            fidelities = None if exact is None else exact.fidelities(self.parameters[job.execution_indices], result.counts)
            written = self.store.results.store_counts(
                stored, result.counts, shots, usage=usage, cost_usd=cost, failed=result.failed, noise_factor=factor, fidelities=fidelities
            )
            if written and self.run.quality == "auto":  # flagged slots are left out of the jobs not yet sent, from the first job on
                exclude_flagged(self.store, self.run, self.backend)
        return self.store.ledger.job(job.id)

    def _exact_answers(self) -> ExactAnswers | None:
        """The feature map's exact distributions (qhw.quality), made once a
        worker; None for a map too wide to simulate exactly (its counts are
        stored all the same, without their fidelities)."""
        if self._exact is None:
            feature_set = self.store.catalogue.feature_set(self.run.feature_set_id)
            try:
                self._exact = ExactAnswers(template_of(feature_set))
            except BackendError as err:
                log.warning("run %s: its circuits' exact answers cannot be computed (%s); results are stored without their fidelities", self.run.id, err)
                self._exact = False
        return self._exact if isinstance(self._exact, ExactAnswers) else None

    def _end(self, job: JobRecord, state: JobState, *, error: str | None = None, note: str | None = None,
             provider_job_id: str | None = None) -> JobRecord:
        """Move a job to a final state with what it used and cost."""
        usage = self._usage(job, provider_job_id) if provider_job_id else ProviderUsage()
        moved = self.store.ledger.move(job, state, error=error, note=note, usage=usage, cost_usd=self._cost(job, state, usage))
        return moved or self.store.ledger.job(job.id)

    def _usage(self, job: JobRecord, provider_job_id: str) -> ProviderUsage:
        try:
            return with_retries(lambda: self.remote.usage(provider_job_id), f"reading the usage of job {job.id}")
        except BackendError as err:  # the counts (and the verdict) matter more than the bill's detail
            log.warning("job %s: usage not recorded (%s)", job.id, err)
            return ProviderUsage()

    def _cost(self, job: JobRecord, state: JobState, usage: ProviderUsage) -> float | None:
        """What the job cost, priced with the run's own price table; None when
        unknown: the provider's figures are not final yet, or there is no price."""
        if not self.backend.is_paid or not is_remote(self.backend):
            return 0.0
        if self.prices is None or not usage.final:  # (no table: a run from before qhw kept them)
            return None
        return self.backend.job_cost(job.usage(job.shots(self.run.shots), usage, state, copies=self.run.slots), self.prices)

    def settle_usage(self, job: JobRecord) -> bool:
        """Ask the provider again for the usage of a finished job whose figures
        were not final; record them, and its cost, once they are."""
        usage = self._usage(job, job.provider_job_id) if job.provider_job_id else ProviderUsage()
        if not usage.final:
            return False
        return self.store.ledger.record_final_usage(job, usage, self._cost(job, job.state, usage))

    # --- cancelling ------------------------------------------------------------------------

    def cancel(self, job: JobRecord) -> str:
        """Ask the provider to cancel a claimed job; returns what became of it."""
        ledger = self.store.ledger
        if is_local(self.backend):
            # Local jobs finish inside the process that runs them; an unfinished
            # one belongs to a process that has ended: nothing runs anywhere.
            moved = self._end(job, JobState.CANCELLED, note="cancelled: its process had ended").state is JobState.CANCELLED
            return "cancelled" if moved else f"left {ledger.job(job.id).state.value}"
        if job.state is JobState.PENDING:
            found = None
            if job.may_exist_at_provider:
                found = with_retries(lambda: self._find(job), f"looking up job {job.id}")
            if found is None:
                moved = self._end(job, JobState.CANCELLED, note="cancelled before the provider had it").state is JobState.CANCELLED
                return "cancelled (never reached the provider)" if moved else f"left {ledger.job(job.id).state.value}"
            job = ledger.record_submission(job, found, note="found at the provider by its qhw-key, to cancel it") or ledger.job(job.id)
            if job.state not in UNFINISHED_STATES:
                return job.state.value
        ledger.request_cancel(job)
        provider_job_id = _provider_id(job)
        with_retries(lambda: self.remote.cancel(provider_job_id), f"cancelling job {job.id}")
        status = with_retries(lambda: self.remote.status(provider_job_id), f"polling job {job.id}")
        if status.state is JobState.CANCELLED:
            self._end(job, JobState.CANCELLED, note="the provider confirmed the cancel", provider_job_id=provider_job_id)
        elif status.state is JobState.DONE:
            job = self._collect(job, provider_job_id)
            return "finished before the cancel reached it: collected" if job.state is JobState.COLLECTED else job.state.value
        elif status.state is JobState.FAILED:
            self._end(job, JobState.FAILED, error=status.error, provider_job_id=provider_job_id)
        else:
            if _PROGRESS[status.state] > _PROGRESS[job.state]:
                ledger.move(job, status.state)
            return "cancel requested; the provider has not confirmed it yet"
        return ledger.job(job.id).state.value

    # --- approval ------------------------------------------------------------------------------

    def _may_spend(self, job: JobRecord) -> bool:
        """Whether this command may send the job to a paid backend (asked once per run)."""
        if self._approved is None:
            pending = self.store.ledger.jobs(self.run.id, states=[JobState.PENDING])
            estimate = pending_estimate(self.remote, self.remote.profile(), self.run, pending, load_prices())
            self._approved = bool(self._approve and self._approve(self.run, pending, estimate))
        return self._approved

    def _since(self, job: JobRecord) -> datetime:
        """Where to start looking for the job at the provider: from when its
        submission began (or the run was made), less the clocks' disagreement."""
        return (job.submit_started_at or self.run.created_at) - CLOCK_SKEW

    def _find(self, job: JobRecord) -> str | None:
        """The provider's job of a submission that was cut off; None once the
        provider's listing can be trusted not to show it.

        Raises:
            ListingLagError: nothing found yet, but the submission is younger
                than the provider's listing delay: "not found" is no answer yet.
        """
        found = self.remote.find_job(job.idempotency_key, self._since(job))
        if found is not None:
            return found
        started = job.submit_started_at or self.run.created_at
        trusted_from = started + timedelta(seconds=self.remote.listing_grace_seconds)
        if utcnow() < trusted_from:
            raise ListingLagError(
                f"{self.backend.name} lists no job tagged qhw-key={job.idempotency_key} yet, but its job listing may lag "
                f"a submission by up to {self.remote.listing_grace_seconds:g} s: it is looked for again until "
                f"{trusted_from:%Y-%m-%d %H:%M:%S} UTC before anything is sent again"
            )
        return None


def run_noise(run: RunRecord) -> NoiseSpec | None:
    """What --noise adds to a stored run's device, with the run's rep_delay (prep=auto reads it)."""
    return None if run.noise is None else replace(run.noise, rep_delay=run.rep_delay)


def backend_of_run(run: RunRecord, artifacts: ArtifactStore) -> Backend:
    """The backend a stored run ran on, with the engine it chose (a row of a
    shared ledger may say anything: an engine the backend does not have is
    refused, never run some other way).

    Raises:
        UnknownBackendError: no backend of that name.
        ConfigError: the run names an engine its backend does not have.
    """
    from qhw.boundary import quoted

    backend = get_backend(run.backend, seed=run.seed, artifacts=artifacts)
    engines = backend.engines if is_local(backend) else ()
    if run.engine is not None and run.engine not in engines:
        offered = f"its engines are {', '.join(engines)}" if engines else "it has no engines"
        raise ConfigError(f"run {run.id}: its row names the engine {quoted(run.engine)}, which {backend.name} does not have ({offered}); changed outside qhw?")
    return backend


def executor_for(
    backend: Backend, workers: int | None, scheduler: str | None, jobs: int, executable: Executable | None = None
) -> AbstractContextManager[Executor | None]:
    """Where a local simulator's jobs run (see qhw.parallel); remote jobs run
    here. Given the ``executable``, jobs that would hold the interpreter run in
    a worker process even alone (LocalBackend.needs_own_process)."""
    if not is_local(backend):
        return nullcontext(None)
    isolate = executable is not None and backend.needs_own_process(executable)
    return parallel.executor(workers=workers, scheduler=scheduler, jobs=jobs, preload=(type(backend).__module__,), isolate=isolate)


def work_all(
    store: Store, worker: RunWorker, jobs: list[JobRecord], progress: Progress, title: str, *, pool: Executor | None, workers: int | None
) -> Tally:
    """Work jobs this process has claimed (a local simulator's on ``pool``, a
    provider's in its batch); release the claims."""
    tally = Tally()
    try:
        with progress.task(title, total=len(jobs)) as task:
            if is_local(worker.backend):
                # One worker asked for: one thread; otherwise the simulator's own choice.
                worker.backend.use_threads(1 if workers == 1 else None)
                worker.run_local(jobs, pool, tally, task.advance)
            else:
                with worker.remote.batch(len(jobs)):
                    for job in jobs:
                        worker.work(job, tally)
                        task.advance()
    finally:
        store.ledger.release([job.id for job in jobs], worker.holder)
    return tally


def parameter_rows(arrays: FeatureArrays, order: np.ndarray, circuits_per_sample: int) -> np.ndarray:
    """Every execution's parameter values, in the run's sample order (index i
    of the template's vector in column i; see circuits.circuit_rows)."""
    angles = np.empty((len(order), arrays.angles_train.shape[1]))
    for code, name in SPLIT_NAMES.items():
        rows = order[:, 0] == code
        angles[rows] = arrays.angles(name)[order[rows, 1]]
    return circuits.logical_rows(angles, circuits_per_sample)


def demultiplexed(result: JobResult, job: JobRecord, slots: int) -> JobResult:
    """A packed job's result as its logical executions: logical execution i
    rode on place q = job.places(slots)[i], slot q % slots of packed execution
    q // slots (every slot in turn, or the slots it uses; the filler is
    dropped); a failed packed execution fails each of its executions."""
    if slots == 1:
        return result
    places = job.places(slots)
    failed = {int(i): result.failed[int(q) // slots] for i, q in enumerate(places) if int(q) // slots in result.failed}
    counts = result.counts.reshape(-1, result.counts.shape[-1])
    if job.slots_used is None:
        return JobResult(circuits.demultiplexed(counts.reshape(-1, slots, counts.shape[-1]), job.executions), failed)
    return JobResult(counts[places], failed)


def _provider_id(job: JobRecord) -> str:
    """The provider's id of a job that reached it (queued or later)."""
    if job.provider_job_id is None:
        raise JobNotFoundError(f"job {job.id} ({job.state.value}) has no provider job id")
    return job.provider_job_id


def _with_provider_id(job: JobRecord, provider_job_id: str) -> JobRecord:
    return replace(job, provider_job_id=provider_job_id)
