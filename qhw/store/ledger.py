"""The job ledger: runs, jobs, the state machine and the claims on jobs.

Every state change goes through :func:`transition`, a compare-and-set
(``UPDATE jobs SET state = :new ... WHERE id = :id AND state = :old``) checked
against :data:`qhw.jobstates.TRANSITIONS`: a stale process can never move a job
backwards, and a lost race changes nothing. Each change is written to the
job's history (job_events) in the same transaction. See docs/ledger.md.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, overload

import numpy as np
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.orm import Session

from qhw import settings
from qhw.boundary import quoted
from qhw.device_mitigation import DeviceMitigation, device_mitigation_of_text
from qhw.errors import ConflictError, NotFoundError, ParameterError, StoreError
from qhw.jobstates import UNFINISHED_STATES, JobState, can_move
from qhw.noise import NoiseSpec, parse_noise
from qhw.pricing import PriceTable
from qhw.records import (
    AdaptiveSettings,
    CalibrationSnapshot,
    ExecutionFailureRecord,
    JobEventRecord,
    JobPlan,
    JobRecord,
    Packing,
    PairCalibration,
    ProviderUsage,
    QubitCalibration,
    RunRecord,
    RunSpec,
)
from qhw.store.database import Database, changed_rows
from qhw.store.mapping import Column, columns_of, record_of
from qhw.store.models import DeviceSnapshotRow, ExecutionFailureRow, JobEventRow, JobRow, RunRow

log = logging.getLogger("qhw.ledger")

#: The unfinished states as their column values (what a claim may take).
_UNFINISHED_VALUES = tuple(state.value for state in UNFINISHED_STATES)


@dataclass(frozen=True)
class RunCircuit:
    """What a run needs to (re)submit jobs: the transpiled circuit and sample order."""

    qpy: bytes
    qasm3: str
    sample_order: np.ndarray  # (n_samples, 2) int32: split code, sample index
    calibration_qpy: bytes | None = None  # the readout-calibration circuit, when the run has one


def utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime | None) -> datetime | None:
    """A moment as UTC for the database (SQLite keeps no offset: an aware
    datetime of another zone would come back shifted)."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC)


@overload
def aware(moment: datetime) -> datetime: ...
@overload
def aware(moment: datetime | None) -> datetime | None: ...
def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; qhw writes them in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


# --- who holds a claim -------------------------------------------------------------------


def _process_start(pid: int) -> str:
    """The kernel's start time of a process (Linux), so that a reused pid is not
    taken for the process that held a claim; empty where /proc is absent."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return "" if fields[0] == b"Z" else fields[19].decode()  # a zombie has ended
    except (OSError, IndexError):
        return ""


def holder_id() -> str:
    """This process's name in claims: host, pid and the pid's start time."""
    return _holder_of(os.getpid())  # a fork is another holder


@functools.cache
def _holder_of(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def holder_is_gone(holder: str) -> bool:
    """True when the holder ran on this machine and its process has ended.

    A holder on another machine is never judged gone: its lease must lapse.
    """
    try:
        host, pid_text, started = holder.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    now_started = _process_start(pid)
    return bool(started) and now_started != started


# --- the one place state changes ------------------------------------------------------------


def usage_values(usage: ProviderUsage) -> dict[str, Any]:
    """The job columns of what a provider reported; figures not yet final stay unknown."""
    estimate = {} if usage.estimated_quantum_seconds is None else {"provider_estimate_seconds": usage.estimated_quantum_seconds}
    if not usage.final:
        return {"quantum_seconds": None, "duration_seconds": None, "usage_value": None, "usage_unit": None, "usage_pending": True, **estimate}
    return {
        "quantum_seconds": usage.quantum_seconds, "duration_seconds": usage.duration_seconds, "usage_value": usage.value,
        "usage_unit": usage.unit, "usage_pending": False, **estimate,
    }


def _fresh(session: Session, job_id: int) -> JobRow:
    row = session.execute(
        select(JobRow).where(JobRow.id == job_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"no job with id {job_id}")
    return row


def transition(
    session: Session,
    job_id: int,
    old: JobState,
    new: JobState,
    *,
    note: str | None = None,
    values: dict[str, Any] | None = None,
    only_if: Iterable[Any] = (),
) -> bool:
    """Move a job from ``old`` to ``new`` if, and only if, it is still ``old``.

    Args:
        session: the transaction the change belongs to (results are written in
            the same one as the move to collected).
        values: other columns to set with the state.
        only_if: extra conditions of the compare-and-set.

    Returns:
        True when this call moved the job; False for a lost race (another
        process moved it first) or a move the state machine forbids, which is
        logged and changes nothing.
    """
    if not can_move(old, new):
        log.warning("job %s: %s -> %s is not an allowed transition; the job is left as it is", job_id, old.value, new.value)
        return False
    values = dict(values or {})
    if new not in UNFINISHED_STATES:
        values.update(claimed_by=None, lease_until=None)  # nothing left to work on
    result = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.state == old.value, *only_if)
        .values(state=new.value, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    if changed_rows(result) != 1:
        log.debug("job %s: no longer %s (another process moved it); %s not applied", job_id, old.value, new.value)
        return False
    session.add(
        JobEventRow(
            job_id=job_id, at=utcnow(), old_state=old.value, new_state=new.value,
            provider_job_id=values.get("provider_job_id"), note=note,
        )
    )
    return True


class Ledger:
    """Runs and their jobs."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # --- runs ---------------------------------------------------------------------------

    def create_run(
        self,
        spec: RunSpec,
        circuit: RunCircuit,
        plans: list[JobPlan],
        *,
        claimed_by: str | None = None,
        calibration: CalibrationSnapshot | None = None,
    ) -> tuple[RunRecord, list[JobRecord]]:
        """Write a run, its jobs (all pending, each with a fresh idempotency
        key) and its device's calibration snapshot in one transaction;
        ``claimed_by`` claims every job for the caller."""
        now = utcnow()
        with self._db.transaction() as session:
            run = RunRow(
                created_at=now,
                **columns_of(spec, _RUN_COLUMNS),
                sample_order=np.ascontiguousarray(circuit.sample_order, dtype="<i4").tobytes(),
                transpiled_qasm3=circuit.qasm3,
                transpiled_qpy=circuit.qpy,
                calibration_qpy=circuit.calibration_qpy,
            )
            session.add(run)
            session.flush()
            if calibration is not None:
                session.add(
                    DeviceSnapshotRow(
                        run_id=run.id,
                        device=calibration.device,
                        calibrated_at=_utc(calibration.calibrated_at),
                        recorded_at=now,
                        qubits=json.dumps([vars(q) for q in calibration.qubits]),
                        pairs=json.dumps([{**vars(p), "qubits": list(p.qubits)} for p in calibration.pairs]),
                        properties=calibration.properties,
                    )
                )
            jobs = _add_jobs(session, run.id, plans, first_position=0, claimed_by=claimed_by, now=now)
            return run_record(run), [job_record(job) for job in jobs]

    def add_retry_jobs(self, run_id: int, plans: list[tuple[JobPlan, list[int]]], *, claimed_by: str) -> list[JobRecord]:
        """Jobs that run again executions a provider failed: each plan with the
        ids of the failures it answers. The jobs (pending, claimed) and the
        failures' ``retry_job_id`` are written in one transaction, and only if
        no other process has answered any of those failures first.

        Raises:
            ConflictError: another process is retrying some of them; nothing was written.
        """
        now = utcnow()
        with self._db.transaction() as session:
            jobs = _append_jobs(session, run_id, [plan for plan, _ in plans], claimed_by=claimed_by, now=now)
            for job, (_, failure_ids) in zip(jobs, plans, strict=True):
                taken = session.execute(
                    update(ExecutionFailureRow)
                    .where(ExecutionFailureRow.id.in_(failure_ids), ExecutionFailureRow.retry_job_id.is_(None))
                    .values(retry_job_id=job.id)
                    .execution_options(synchronize_session=False)
                )
                if changed_rows(taken) != len(failure_ids):
                    raise ConflictError(f"run {run_id}: another qhw process is already retrying these executions; nothing was written")
            return [job_record(job) for job in jobs]

    def next_round(self, run: RunRecord, plans: list[JobPlan]) -> list[JobRecord] | None:
        """An adaptive run's next round: its jobs (pending, unclaimed), or, with
        no plans, the end of its rounds. One compare-and-set on the run's round
        in the transaction that writes the jobs, so several collectors start a
        round once; None when another process moved the run on first."""
        values = {"round": run.round + 1} if plans else {"rounds_done": True}
        return self._move_run(run, (RunRow.round == run.round, RunRow.rounds_done.is_(False)), values, plans)

    def exclude_slots(
        self, run: RunRecord, excluded: tuple[int, ...], line: str, replanned: list[tuple[int | None, JobPlan]] | None = None,
    ) -> RunRecord | None:
        """--quality auto leaves ``excluded`` slots out: written on the run and
        on every job of it not yet sent (pending, no submission begun: what may
        be at a provider, or is running on a worker, keeps its slots), whose
        executions ride on the remaining slots from now on; ``line`` goes to
        the run's quality log. ``replanned``: those jobs planned again on the
        remaining slots, each plan with the id of the job row it rewrites
        (None: a new job). One compare-and-set on the run's excluded slots, so
        that two collectors that flag the same slot exclude it once; None when
        another process changed them, or sent one of those jobs, first."""
        used = tuple(slot for slot in range(run.slots) if slot not in excluded)
        if not used:
            raise ValueError("every slot excluded")
        unsent = (
            JobRow.run_id == run.id, JobRow.purpose == "samples", JobRow.state == JobState.PENDING.value,
            JobRow.submit_started_at.is_(None), JobRow.provider_job_id.is_(None),
        )
        with self._db.transaction() as session:
            moved = session.execute(
                update(RunRow)
                .where(RunRow.id == run.id, _same_text(RunRow.excluded_slots, _slots_text(run.excluded_slots or None)))
                .values(excluded_slots=_slots_text(excluded), quality_log=_appended(run.quality_log, line))
                .execution_options(synchronize_session=False)
            )
            if changed_rows(moved) != 1:
                return None
            now = utcnow()
            for job_id, plan in replanned or []:
                if job_id is None:
                    _append_jobs(session, run.id, [plan], claimed_by=None, now=now)
                    continue
                rewritten = session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, *unsent)
                    .values(
                        execution_start=plan.execution_start, execution_stop=plan.execution_stop,
                        execution_list=None if plan.indices is None else np.asarray(plan.indices, dtype="<i4").tobytes(),
                        slots_used=_slots_text(used), updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
                if changed_rows(rewritten) != 1:
                    raise ConflictError(f"run {run.id}: job {job_id} was sent while it was planned again")
            session.execute(update(JobRow).where(*unsent).values(slots_used=_slots_text(used), updated_at=now).execution_options(synchronize_session=False))
            return run_record(run_row(session, run.id))

    def start_repair(self, run: RunRecord, plans: list[JobPlan], line: str) -> list[JobRecord] | None:
        """A quality repair's jobs (pending, unclaimed), with ``line`` in the
        run's quality log; with no plans, only the line (a repair not sent),
        after which the run repairs nothing more. One compare-and-set on the
        run's repairs, as Ledger.next_round on its round; None when another
        process moved the run on first."""
        values: dict[str, Any] = {"quality_log": _appended(run.quality_log, line)}
        values.update({"repairs": run.repairs + 1} if plans else {"repairs_done": True})
        return self._move_run(run, (RunRow.repairs == run.repairs, RunRow.repairs_done.is_(False)), values, plans)

    def _move_run(self, run: RunRecord, expected: tuple[Any, ...], values: dict[str, Any], plans: list[JobPlan]) -> list[JobRecord] | None:
        """The compare-and-set that moves a run on (a round, a repair) with the
        jobs it starts (pending, unclaimed), in one transaction; [] with no
        plans, None when the run is no longer as ``expected`` says."""
        with self._db.transaction() as session:
            moved = session.execute(
                update(RunRow).where(RunRow.id == run.id, *expected).values(**values).execution_options(synchronize_session=False)
            )
            if changed_rows(moved) != 1:
                return None
            return [job_record(job) for job in _append_jobs(session, run.id, plans, claimed_by=None, now=utcnow())]

    def run(self, run_id: int | None = None) -> RunRecord:
        """The run with that id, or the newest one when None."""
        with self._db.transaction(write=False) as session:
            return run_record(run_row(session, run_id))

    def runs(self) -> list[RunRecord]:
        with self._db.transaction(write=False) as session:
            return [run_record(row) for row in session.scalars(select(RunRow).order_by(RunRow.id)).all()]

    def latest_device_document(self, device: str) -> str | None:
        """The device's own properties document kept with its newest run, if any
        (what an estimate made before the network knows of the device)."""
        with self._db.transaction(write=False) as session:
            return session.scalars(
                select(DeviceSnapshotRow.properties)
                .where(DeviceSnapshotRow.device == device, DeviceSnapshotRow.properties.is_not(None))
                .order_by(DeviceSnapshotRow.id.desc())
                .limit(1)
            ).first()

    def device_snapshot(self, run_id: int) -> tuple[CalibrationSnapshot, datetime] | None:
        """The calibration stored with a run at submit time, and when it was
        recorded; None for a run on a device without one."""
        with self._db.transaction(write=False) as session:
            row = session.scalars(select(DeviceSnapshotRow).where(DeviceSnapshotRow.run_id == run_id)).first()
            if row is None:
                return None
            snapshot = CalibrationSnapshot(
                device=row.device,
                calibrated_at=aware(row.calibrated_at),
                qubits=tuple(QubitCalibration(**q) for q in json.loads(row.qubits)),
                pairs=tuple(PairCalibration(**{**p, "qubits": tuple(p["qubits"])}) for p in json.loads(row.pairs)),
                properties=row.properties,
            )
            return snapshot, aware(row.recorded_at)

    def run_circuit(self, run_id: int) -> RunCircuit:
        with self._db.transaction(write=False) as session:
            row = run_row(session, run_id)
            order = np.frombuffer(row.sample_order, dtype="<i4").reshape(-1, 2)
            return RunCircuit(
                qpy=row.transpiled_qpy, qasm3=row.transpiled_qasm3, sample_order=order, calibration_qpy=row.calibration_qpy
            )

    # --- jobs ---------------------------------------------------------------------------

    def jobs(self, run_id: int | None = None, states: Iterable[JobState] | None = None) -> list[JobRecord]:
        """Jobs in run and position order, of one run or all, in the given states."""
        with self._db.transaction(write=False) as session:
            query = select(JobRow).order_by(JobRow.run_id, JobRow.position)
            if run_id is not None:
                run_row(session, run_id)
                query = query.where(JobRow.run_id == run_id)
            if states is not None:
                query = query.where(JobRow.state.in_([JobState(s).value for s in states]))
            return [job_record(row) for row in session.scalars(query).all()]

    def job(self, job_id: int) -> JobRecord:
        with self._db.transaction(write=False) as session:
            return job_record(_fresh(session, job_id))

    def events(self, job_id: int | None = None) -> list[JobEventRecord]:
        """A job's history (or every job's), oldest first."""
        with self._db.transaction(write=False) as session:
            query = select(JobEventRow).order_by(JobEventRow.id)
            if job_id is not None:
                query = query.where(JobEventRow.job_id == job_id)
            return [
                JobEventRecord(
                    job_id=row.job_id,
                    at=aware(row.at),
                    old_state=None if row.old_state is None else JobState(row.old_state),
                    new_state=JobState(row.new_state),
                    provider_job_id=row.provider_job_id,
                    note=row.note,
                )
                for row in session.scalars(query).all()
            ]

    def move(
        self,
        job: JobRecord,
        new: JobState,
        *,
        note: str | None = None,
        error: str | None = None,
        usage: ProviderUsage | None = None,
        cost_usd: float | None = None,
    ) -> JobRecord | None:
        """Compare-and-set ``job`` from the state it was read in to ``new``.

        Args:
            error: the reason of a failure; for any other move, None clears the
                errors of the calls before it (the move is news from the provider).
            usage, cost_usd: what a job that ends here used and cost, when known.

        Returns:
            The job as it is now, or None when it was no longer in that state
            (or the move is not allowed): nothing was changed.
        """
        values: dict[str, Any] = {"error": error}
        if usage is not None:
            values.update(usage_values(usage))
        if cost_usd is not None:
            values["cost_usd"] = cost_usd
        return self._move(job, new, note=note, values=values)

    def _move(self, job: JobRecord, new: JobState, *, note: str | None, values: dict[str, Any]) -> JobRecord | None:
        if new is not JobState.FAILED:
            values = {**values, "error_count": 0}
        with self._db.transaction() as session:
            if not transition(session, job.id, job.state, new, note=note, values=values):
                return None
            return job_record(_fresh(session, job.id))

    # --- submitting ------------------------------------------------------------------------

    def mark_dispatched(self, job_ids: Iterable[int], holder: str) -> None:
        """Local jobs this process has handed to its workers, marked as a
        submission begun: their executions are fixed (--quality auto plans
        again only what no one has started)."""
        now = utcnow()
        with self._db.transaction() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id.in_(list(job_ids)), JobRow.state == JobState.PENDING.value, JobRow.claimed_by == holder)
                .values(submit_started_at=now, updated_at=now)
                .execution_options(synchronize_session=False)
            )

    def start_submission(self, job: JobRecord, holder: str) -> JobRecord | None:
        """Record, and commit, that the provider is about to be called for a
        pending job this process holds; None when the claim was lost."""
        now = utcnow()
        with self._db.transaction() as session:
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job.id, JobRow.state == JobState.PENDING.value, JobRow.claimed_by == holder)
                .values(submit_started_at=now, lease_until=now + timedelta(seconds=settings.lease_seconds()), updated_at=now)
                .execution_options(synchronize_session=False)
            )
            return job_record(_fresh(session, job.id)) if changed_rows(result) == 1 else None

    def record_submission(self, job: JobRecord, provider_job_id: str, *, note: str) -> JobRecord | None:
        """The provider holds the job under ``provider_job_id``: pending -> queued."""
        return self._move(job, JobState.QUEUED, note=note, values={"provider_job_id": provider_job_id, "error": None})

    def record_error(self, job: JobRecord, error: str) -> JobRecord | None:
        """A call about the job failed without a verdict on the job (network,
        throttling, a refused fetch): count it and keep the job's state."""
        with self._db.transaction() as session:
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job.id, JobRow.state == job.state.value)
                .values(error=error[:2000], error_count=JobRow.error_count + 1, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return job_record(_fresh(session, job.id)) if changed_rows(result) == 1 else None

    def clear_errors(self, job: JobRecord) -> None:
        """A call about the job worked again: forget the errors before it."""
        if job.error_count == 0:
            return
        with self._db.transaction() as session:
            session.execute(
                update(JobRow).where(JobRow.id == job.id, JobRow.state == job.state.value)
                .values(error=None, error_count=0).execution_options(synchronize_session=False)
            )

    def request_cancel(self, job: JobRecord) -> None:
        with self._db.transaction() as session:
            session.execute(
                update(JobRow).where(JobRow.id == job.id).values(cancel_requested_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    def reset_for_retry(self, job: JobRecord) -> JobRecord | None:
        """failed -> pending with a fresh key, for `qhw retry`; the old provider
        job and the reason it failed stay in the job's history."""
        note = f"retry: attempt {job.attempt + 1} (attempt {job.attempt} was {job.provider_job_id or 'never accepted'}: {job.error})"
        values = {
            "provider_job_id": None,
            "idempotency_key": uuid.uuid4().hex,
            "attempt": job.attempt + 1,
            "submit_started_at": None,
            "cancel_requested_at": None,
            "error": None,
            "quantum_seconds": None,
            "duration_seconds": None,
            "usage_value": None,
            "usage_unit": None,
            "cost_usd": None,
            "usage_pending": False,
            "provider_estimate_seconds": None,
        }
        return self._move(job, JobState.PENDING, note=note, values=values)

    # --- usage a provider reports late ---------------------------------------------------

    def jobs_with_usage_pending(self, run_id: int | None = None) -> list[JobRecord]:
        """Finished jobs whose provider has not yet given its final usage."""
        with self._db.transaction(write=False) as session:
            query = select(JobRow).where(JobRow.usage_pending.is_(True)).order_by(JobRow.id)
            if run_id is not None:
                query = query.where(JobRow.run_id == run_id)
            return [job_record(row) for row in session.scalars(query).all()]

    def record_final_usage(self, job: JobRecord, usage: ProviderUsage, cost_usd: float | None) -> bool:
        """The provider's final usage of a finished job, and what it cost; once
        (a second writer finds it recorded and changes nothing)."""
        with self._db.transaction() as session:
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job.id, JobRow.usage_pending.is_(True))
                .values(**usage_values(usage), cost_usd=cost_usd, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return changed_rows(result) == 1

    # --- executions a provider failed ---------------------------------------------------

    def failed_execution_counts(self, run_id: int | None = None) -> dict[int, int]:
        """Executions the provider failed in each job's latest attempt, by job id."""
        with self._db.transaction(write=False) as session:
            query = (
                select(ExecutionFailureRow.job_id, func.count())
                .join(JobRow, JobRow.id == ExecutionFailureRow.job_id)
                .where(ExecutionFailureRow.attempt == JobRow.attempt)
                .group_by(ExecutionFailureRow.job_id)
            )
            if run_id is not None:
                query = query.where(ExecutionFailureRow.run_id == run_id)
            return {int(job_id): int(count) for job_id, count in session.execute(query).all()}

    def execution_failures(self, run_id: int) -> list[ExecutionFailureRecord]:
        """Every execution a provider failed in the run's jobs, oldest first."""
        with self._db.transaction(write=False) as session:
            rows = session.scalars(
                select(ExecutionFailureRow).where(ExecutionFailureRow.run_id == run_id).order_by(ExecutionFailureRow.id)
            ).all()
            return [
                ExecutionFailureRecord(
                    id=row.id, run_id=row.run_id, job_id=row.job_id, attempt=row.attempt, purpose=row.purpose,
                    execution=row.execution, reason=row.reason, recorded_at=aware(row.recorded_at), retry_job_id=row.retry_job_id,
                )
                for row in rows
            ]

    # --- claims ---------------------------------------------------------------------------

    def claim(self, job: JobRecord, holder: str) -> JobRecord | None:
        """Claim an unfinished job for ``holder``, or None when another live
        holder has it (or it is finished).

        A claim lapses at its lease's end, or at once when its holder ran on
        this machine and its process has ended (a SIGKILLed collector).
        """
        now = utcnow()
        lease = now + timedelta(seconds=settings.lease_seconds())
        with self._db.transaction() as session:
            free = or_(JobRow.claimed_by.is_(None), JobRow.claimed_by == holder, JobRow.lease_until < now)
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job.id, JobRow.state.in_(_UNFINISHED_VALUES), free)
                .values(claimed_by=holder, lease_until=lease)
                .execution_options(synchronize_session=False)
            )
            if changed_rows(result) != 1:
                row = _fresh(session, job.id)
                other = row.claimed_by
                if row.state not in _UNFINISHED_VALUES or other is None or not holder_is_gone(other):
                    return None
                result = session.execute(
                    update(JobRow)
                    .where(JobRow.id == job.id, JobRow.claimed_by == other, JobRow.state.in_(_UNFINISHED_VALUES))
                    .values(claimed_by=holder, lease_until=lease)
                    .execution_options(synchronize_session=False)
                )
                if changed_rows(result) != 1:
                    return None
                log.info("job %s: taken over from %s, whose process has ended", job.id, other)
            return job_record(_fresh(session, job.id))

    def renew(self, job_ids: Iterable[int], holder: str) -> None:
        """Extend this holder's claims on these jobs by a lease (those it still has)."""
        self._update_claims(job_ids, holder, lease_until=utcnow() + timedelta(seconds=settings.lease_seconds()))

    def release(self, job_ids: Iterable[int], holder: str) -> None:
        """Give up this holder's claims on these jobs (those it still has)."""
        self._update_claims(job_ids, holder, claimed_by=None, lease_until=None)

    def _update_claims(self, job_ids: Iterable[int], holder: str, **values: Any) -> None:
        ids = list(job_ids)
        if not ids:
            return
        with self._db.transaction() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id.in_(ids), JobRow.claimed_by == holder)
                .values(**values)
                .execution_options(synchronize_session=False)
            )


def _add_jobs(session: Session, run_id: int, plans: list[JobPlan], *, first_position: int, claimed_by: str | None, now: datetime) -> list[JobRow]:
    """Pending jobs of a run, each with a fresh idempotency key, and the first line of their histories."""
    lease = now + timedelta(seconds=settings.lease_seconds()) if claimed_by else None
    jobs = [
        JobRow(
            run_id=run_id,
            position=first_position + i,
            execution_start=plan.execution_start,
            execution_stop=plan.execution_stop,
            execution_list=None if plan.indices is None else np.asarray(plan.indices, dtype="<i4").tobytes(),
            purpose=plan.purpose,
            round=plan.round,
            shots=plan.shots,
            repair=plan.repair,
            slots_used=_slots_text(plan.slots_used),
            state=JobState.PENDING.value,
            idempotency_key=uuid.uuid4().hex,
            attempt=1,
            error_count=0,
            claimed_by=claimed_by,
            lease_until=lease,
            created_at=now,
            updated_at=now,
        )
        for i, plan in enumerate(plans)
    ]
    session.add_all(jobs)
    session.flush()
    session.execute(
        insert(JobEventRow),
        [{"job_id": job.id, "at": now, "old_state": None, "new_state": JobState.PENDING.value} for job in jobs],
    )
    return jobs


def _device_mitigation_of_row(text: str | None) -> DeviceMitigation | None:
    """A run's stored device mitigation read back (a row of a shared ledger may say anything).

    Raises:
        StoreError: it cannot be read.
    """
    try:
        return device_mitigation_of_text(text)
    except ParameterError as err:
        raise StoreError(f"a run's device mitigation {quoted(text)} cannot be read ({err.problem}); changed outside qhw?") from None


def _appended(log: str | None, line: str) -> str:
    return line if not log else f"{log}\n{line}"


def _same_text(column: Any, value: str | None) -> Any:
    return column.is_(None) if value is None else column == value


def _slots_text(slots: tuple[int, ...] | None) -> str | None:
    return None if slots is None else json.dumps([int(s) for s in slots])


def _slots_of_text(text: str | None) -> tuple[int, ...] | None:
    """Slots kept as a JSON list (a row of a shared ledger may say anything).

    Raises:
        StoreError: the list cannot be read.
    """
    if text is None:
        return None
    try:
        slots = json.loads(text)
        if not isinstance(slots, list) or not all(isinstance(s, int) and s >= 0 for s in slots):
            raise ValueError
    except ValueError:
        raise StoreError(f"a row's slots {quoted(text)} cannot be read (a JSON list of slot numbers); changed outside qhw?") from None
    return tuple(slots)


def _append_jobs(session: Session, run_id: int, plans: list[JobPlan], *, claimed_by: str | None, now: datetime) -> list[JobRow]:
    """Pending jobs after the run's last one (a retry's, a round's, a repair's)."""
    if not plans:
        return []
    last = session.scalar(select(func.max(JobRow.position)).where(JobRow.run_id == run_id))
    return _add_jobs(session, run_id, plans, first_position=(last or 0) + 1, claimed_by=claimed_by, now=now)


def run_row(session: Session, run_id: int | None) -> RunRow:
    """The run's row, or the newest run's when None."""
    if run_id is None:
        row = session.scalars(select(RunRow).order_by(RunRow.id.desc()).limit(1)).first()
        if row is None:
            raise NotFoundError("no run yet: run `qhw submit --backend aer_simulator` first")
        return row
    row = session.get(RunRow, run_id)
    if row is None:
        raise NotFoundError(f"no run with id {run_id} (see `qhw jobs`)")
    return row


def _json_or_none(to_dict: Callable[[Any], Any]) -> Callable[[Any], str | None]:
    return lambda value: None if value is None else json.dumps(to_dict(value), sort_keys=True)


def _from_json_or_none(from_dict: Callable[[Any], Any]) -> Callable[[str | None], Any]:
    return lambda text: None if text is None else from_dict(json.loads(text))


def _packing(data: dict[str, Any]) -> Packing:
    errors = data.get("estimated_errors")
    return Packing(spacing=data.get("spacing"), estimated_errors=None if errors is None else tuple(errors))


def _noise_of_row(text: str | None) -> NoiseSpec | None:
    """A run's stored --noise SPEC read back (a row of a shared ledger may say anything).

    Raises:
        StoreError: the row's SPEC cannot be read.
    """
    if text is None:
        return None
    try:
        return parse_noise(text)
    except ParameterError as err:
        raise StoreError(f"a run's noise {quoted(text)} cannot be read ({err.problem}); changed outside qhw?") from None


#: RunRecord fields kept other than as themselves in a column of their name.
#: Every other field of RunSpec and RunRecord is a column of the same name
#: (a new run field is a column in qhw/store/models.py, a migration and a
#: field of RunSpec: nothing here).
_RUN_COLUMNS = MappingProxyType({
    "layout": Column("layout", lambda layout: json.dumps([int(q) for q in layout]), lambda text: tuple(json.loads(text))),
    "prices": Column("prices_json", _json_or_none(lambda t: {"taken": t.taken, "values": dict(t.values), "sources": dict(t.sources)}),
                      _from_json_or_none(lambda d: PriceTable(values=d["values"], taken=d["taken"], sources=d.get("sources", {})))),
    "packing": Column("packing", _json_or_none(dataclasses.asdict), _from_json_or_none(_packing)),
    "adaptive": Column("adaptive", _json_or_none(dataclasses.asdict), _from_json_or_none(lambda d: AdaptiveSettings(**d))),
    "created_at": Column("created_at", read=aware),
    "rounds_done": Column("rounds_done", read=bool),
    "repairs_done": Column("repairs_done", read=bool),
    "noise": Column("noise", lambda spec: None if spec is None or spec.is_default else spec.text(), _noise_of_row),
    "device_mitigation": Column("device_mitigation", lambda m: None if m is None else m.text(), lambda text: _device_mitigation_of_row(text)),
    "excluded_slots": Column("excluded_slots", lambda slots: _slots_text(slots or None), lambda text: _slots_of_text(text) or ()),
})


def run_record(row: RunRow) -> RunRecord:
    return record_of(row, RunRecord, _RUN_COLUMNS)


#: JobRecord fields kept other than as themselves in a column of their name (see qhw.store.mapping).
_JOB_COLUMNS = MappingProxyType({
    "state": Column("state", read=JobState),
    "updated_at": Column("updated_at", read=aware),
    "submit_started_at": Column("submit_started_at", read=aware),
    "lease_until": Column("lease_until", read=aware),
    "cancel_requested_at": Column("cancel_requested_at", read=aware),
    "indices": Column("execution_list", read=lambda data: None if data is None else tuple(int(i) for i in np.frombuffer(data, dtype="<i4"))),
    "usage_pending": Column("usage_pending", read=bool),
    "own_shots": Column("shots"),
    "slots_used": Column("slots_used", _slots_text, _slots_of_text),
})


def job_record(row: JobRow) -> JobRecord:
    return record_of(row, JobRecord, _JOB_COLUMNS)
