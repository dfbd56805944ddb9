"""What the jobs measured: counts per sample and circuit, readout calibrations,
and mitigated quasi-probabilities beside the raw counts.

Counts are written in the transaction that moves their job to collected (one
compare-and-set through :func:`qhw.store.ledger.transition`), so they are
written once: a second writer finds the job collected and writes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from qhw.errors import StoreError
from qhw.jobstates import UNFINISHED_STATES, JobState
from qhw.records import SPLIT_NAMES, JobRecord, ProviderUsage
from qhw.store.database import Database
from qhw.store.ledger import _fresh, _slots_text, run_row, transition, usage_values, utcnow
from qhw.store.models import CalibrationRow, ExecutionFailureRow, MitigatedResultRow, ResultRow

COUNTS_DTYPE = np.dtype("<u4")


@dataclass(frozen=True)
class RunCounts:
    """The stored counts of a run's complete samples (all circuits present)."""

    splits: np.ndarray  # (n,) split names
    sample_index: np.ndarray  # (n,) index within the split
    counts: np.ndarray  # (n, circuits, 2**qubits) uint32: the sum of a sample's rounds
    shots: int  # the run's shots: the most any sample got
    copies: np.ndarray | None = None  # (n, circuits): the copy of a packed run that measured each; None: all copy 0
    sample_shots: np.ndarray | None = None  # (n, circuits): the shots each got (an adaptive run's differ); None: ``shots``
    positions: np.ndarray | None = None  # (n, circuits): the position (of a reused run) that measured each; None: all 0

    @property
    def shots_each(self) -> np.ndarray:
        """(n, circuits) shots of each sample's circuits."""
        if self.sample_shots is not None:
            return self.sample_shots
        return np.full(self.counts.shape[:2], self.shots, dtype=np.int64)

    def frequencies(self, dtype: type[np.floating[Any]] = np.float32) -> np.ndarray:
        """(n, circuits, 2**qubits) counts / shots of each sample's circuit."""
        frequencies: np.ndarray = (self.counts / self.shots_each[..., None]).astype(dtype)
        return frequencies

    def subset(self, rows: np.ndarray | list[int]) -> RunCounts:
        """These rows only."""
        return RunCounts(
            self.splits[rows], self.sample_index[rows], self.counts[rows], self.shots,
            None if self.copies is None else self.copies[rows], None if self.sample_shots is None else self.sample_shots[rows],
            None if self.positions is None else self.positions[rows],
        )


def failure_summary(failed: Mapping[int, str], executions: int) -> str:
    """A job's error line for the executions its provider failed."""
    reasons = Counter(failed.values())
    (first, _), *others = reasons.most_common()
    more = f" (and {len(others)} other reason(s))" if others else ""
    return (
        f"{len(failed)} of {executions} execution(s) failed at the provider: {first}{more}; "
        "`qhw runs show` lists them, `qhw retry` runs them again"
    )


class Results:
    """Counts, calibrations and mitigated results of runs."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def store_counts(
        self,
        job: JobRecord,
        counts: np.ndarray,
        shots: int,
        *,
        usage: ProviderUsage | None = None,
        cost_usd: float | None = None,
        failed: Mapping[int, str] | None = None,
        noise_factor: float | None = None,
        fidelities: np.ndarray | None = None,
    ) -> int:
        """Store a job's counts and end it, atomically and at most once.

        Args:
            job: the job the counts belong to.
            counts: (executions, 2**qubits) canonical counts, in the job's execution order.
            shots: shots per execution.
            usage: what the provider reported of the job's use, if anything.
            cost_usd: what the job cost, when known.
            failed: executions (positions in the job) the provider failed, with
                its reasons: recorded, never stored as counts. The job is
                collected when anything ran, failed when nothing did.
            noise_factor: a --noise run's drift factor for this job, kept with it.
            fidelities: each execution's fidelity to its exact distribution
                (qhw.quality), in the job's execution order; None: not known.

        Returns:
            The number of result rows written: 0 when another process ended the job first.

        Raises:
            StoreError: the counts do not fit the job.
        """
        if counts.shape[0] != job.executions:
            raise StoreError(f"job {job.id} returned {counts.shape[0]} results for {job.executions} executions")
        failed = dict(failed or {})
        with self._db.transaction() as session:
            ran = [position for position in range(job.executions) if position not in failed]
            if not self._end(session, job, usage, cost_usd, failed, noise_factor, f"{len(ran)} result(s) stored"):
                return 0
            run = run_row(session, job.run_id)
            order = np.frombuffer(run.sample_order, dtype="<i4").reshape(-1, 2)
            k = run.circuits_per_sample
            executions = job.execution_indices[ran]
            # Place q of a packed job ran as slot q % slots: copy (q % slots) % copies,
            # at position (q % slots) // copies (qhw.circuits.packed); its
            # executions ride on every slot in turn, or on the slots it uses.
            slots = run.copies * run.reuse
            places = job.places(slots)[ran]
            copies = [int(place % slots) % run.copies for place in places]
            positions = [int(place % slots) // run.copies for place in places]
            blobs = np.ascontiguousarray(counts[ran], dtype=COUNTS_DTYPE)
            known = [None] * len(ran) if fidelities is None else [float(f) for f in np.asarray(fidelities)[ran]]
            samples = order[executions // k]
            if len(ran):
                session.execute(
                    insert(cast(Table, ResultRow.__table__)),  # Core executemany: the ORM bulk path costs more than the rows
                    [
                        {
                            "run_id": run.id,
                            "job_id": job.id,
                            "split": SPLIT_NAMES[int(split)],
                            "sample_index": int(index),
                            "circuit": int(circuit),
                            "shots": shots,
                            "copy": copy,
                            "position": position,
                            "round": job.round,
                            "counts": blob.tobytes(),
                            "fidelity": fidelity,
                            "repair": job.repair,
                        }
                        for (split, index), circuit, copy, position, blob, fidelity in zip(
                            samples, executions % k, copies, positions, blobs, known, strict=True
                        )
                    ],
                )
                if job.repair:
                    # The counts it measured again are kept, superseded: read by the run's quality alone.
                    table = cast(Table, ResultRow.__table__)  # (Core executemany, as the insert)
                    session.execute(
                        update(table)
                        .where(
                            table.c.run_id == run.id, table.c.split == bindparam("b_split"),
                            table.c.sample_index == bindparam("b_index"), table.c.circuit == bindparam("b_circuit"),
                            table.c.round == job.round, table.c.repair < job.repair,
                        )
                        .values(superseded=True),
                        [
                            {"b_split": SPLIT_NAMES[int(split)], "b_index": int(index), "b_circuit": int(circuit)}
                            for (split, index), circuit in zip(samples, executions % k, strict=True)
                        ],
                    )
            return len(ran)

    def store_calibration(
        self,
        job: JobRecord,
        counts: np.ndarray,
        shots: int,
        *,
        usage: ProviderUsage | None = None,
        cost_usd: float | None = None,
        failed: Mapping[int, str] | None = None,
        noise_factor: float | None = None,
    ) -> int:
        """Store a calibration job's counts and end it, at most once (as ``store_counts``).

        Execution e of the calibration is the prepared state e // slots of
        :func:`qhw.circuits.calibration_rows` (0: every qubit 0, 1: every qubit
        1), whichever job of the run carries it, measured by the slot (a copy
        at a position) its place in the job ran it on (a packed run's jobs hold
        whole packed executions: slot e % slots).
        """
        if counts.shape[0] != job.executions:
            raise StoreError(f"calibration job {job.id} returned {counts.shape[0]} results for {job.executions} executions")
        failed = dict(failed or {})
        width = counts.shape[1]
        prepared_states = (0, width - 1)
        with self._db.transaction() as session:
            ran = [position for position in range(job.executions) if position not in failed]
            if not self._end(session, job, usage, cost_usd, failed, noise_factor, f"{len(ran)} calibration state(s) stored"):
                return 0
            run = run_row(session, job.run_id)
            copies, slots = run.copies, run.copies * run.reuse
            if ran:
                session.execute(
                    insert(CalibrationRow),
                    [
                        {
                            "run_id": job.run_id,
                            "job_id": job.id,
                            "prepared": prepared_states[int(job.execution_indices[position]) // slots],
                            # the slot that ran it, as for samples: its copy and position
                            "copy": (position % slots) % copies,
                            "position": (position % slots) // copies,
                            "shots": shots,
                            "counts": np.ascontiguousarray(counts[position], dtype=COUNTS_DTYPE).tobytes(),
                        }
                        for position in ran
                    ],
                )
            return len(ran)

    @staticmethod
    def _end(
        session: Session, job: JobRecord, usage: ProviderUsage | None, cost_usd: float | None, failed: dict[int, str],
        noise_factor: float | None, note: str,
    ) -> bool:
        """The compare-and-set that ends the job with its results: collected
        when anything ran, failed when the provider failed every execution;
        the executions it failed are recorded with its reasons."""
        current = JobState(_fresh(session, job.id).state)
        if current not in UNFINISHED_STATES:
            return False  # collected (or ended) by another process: nothing to write
        values = {
            **usage_values(usage or ProviderUsage()), "cost_usd": cost_usd, "error_count": 0, "error": None, "noise_factor": noise_factor,
            # The slots it ran on (a local job computed before --quality auto left some out keeps the ones it used).
            "slots_used": _slots_text(job.slots_used),
        }
        if job.provider_job_id is not None:
            values["provider_job_id"] = job.provider_job_id
        end = JobState.COLLECTED
        if failed:
            values["error"] = failure_summary(failed, job.executions)[:2000]
            end = JobState.COLLECTED if len(failed) < job.executions else JobState.FAILED
            note = f"{note}; {len(failed)} execution(s) failed at the provider"
        if not transition(session, job.id, current, end, note=note, values=values):
            return False
        if failed:
            executions = job.execution_indices
            session.execute(
                insert(ExecutionFailureRow),
                [
                    {
                        "run_id": job.run_id,
                        "job_id": job.id,
                        "attempt": job.attempt,
                        "purpose": job.purpose,
                        "execution": int(executions[position]),
                        "reason": reason[:2000],
                        "recorded_at": utcnow(),
                    }
                    for position, reason in sorted(failed.items())
                ],
            )
        return True

    def calibration(self, run_id: int) -> dict[tuple[int, int], np.ndarray]:
        """The run's calibration counts by (slot, prepared state) (only those
        collected); slot = position * copies + copy, as in qhw.circuits.packed."""
        with self._db.transaction(write=False) as session:
            copies = run_row(session, run_id).copies
            rows = session.execute(
                select(CalibrationRow.copy, CalibrationRow.position, CalibrationRow.prepared, CalibrationRow.counts).where(
                    CalibrationRow.run_id == run_id
                )
            ).all()
            return {
                (position * copies + copy, prepared): np.frombuffer(blob, dtype=COUNTS_DTYPE).astype(np.int64)
                for copy, position, prepared, blob in rows
            }

    def store_mitigated(self, run_id: int, method: str, stored: RunCounts, quasi: np.ndarray) -> None:
        """Store mitigated quasi-probabilities (samples, circuits, 2**q) beside the raw counts."""
        with self._db.transaction() as session:
            session.execute(
                insert(MitigatedResultRow),
                [
                    {
                        "run_id": run_id,
                        "split": str(split),
                        "sample_index": int(index),
                        "circuit": circuit,
                        "method": method,
                        "quasi": np.ascontiguousarray(values, dtype="<f8").tobytes(),
                    }
                    for split, index, per_circuit in zip(stored.splits, stored.sample_index, quasi, strict=True)
                    for circuit, values in enumerate(per_circuit)
                ],
            )

    def mitigated(self, run_id: int, method: str) -> dict[tuple[str, int], np.ndarray]:
        """Stored quasi-probabilities by (split, sample index): (circuits, 2**q) each."""
        with self._db.transaction(write=False) as session:
            rows = session.execute(
                select(MitigatedResultRow.split, MitigatedResultRow.sample_index, MitigatedResultRow.circuit, MitigatedResultRow.quasi)
                .where(MitigatedResultRow.run_id == run_id, MitigatedResultRow.method == method)
                .order_by(MitigatedResultRow.circuit)
            ).all()
        grouped: dict[tuple[str, int], list[np.ndarray]] = {}
        for split, index, _, blob in rows:
            grouped.setdefault((split, index), []).append(np.frombuffer(blob, dtype="<f8"))
        return {key: np.stack(values) for key, values in grouped.items()}

    def stored_keys(self, run_id: int) -> set[tuple[str, int, int]]:
        """(split, sample index, circuit) of every result stored for a run."""
        with self._db.transaction(write=False) as session:
            rows = session.execute(
                select(ResultRow.split, ResultRow.sample_index, ResultRow.circuit).where(ResultRow.run_id == run_id)
            ).all()
            return {(split, int(index), int(circuit)) for split, index, circuit in rows}

    def count_samples(self, run_id: int | None = None) -> int:
        """Samples with at least one stored result, for one run or all runs."""
        with self._db.transaction(write=False) as session:
            inner = select(ResultRow.run_id, ResultRow.split, ResultRow.sample_index).distinct()
            if run_id is not None:
                inner = inner.where(ResultRow.run_id == run_id)
            return int(session.scalar(select(func.count()).select_from(inner.subquery())) or 0)

    def samples_by_run(self) -> dict[int, int]:
        """Samples with at least one stored result, for every run at once."""
        with self._db.transaction(write=False) as session:
            inner = select(ResultRow.run_id, ResultRow.split, ResultRow.sample_index).distinct().subquery()
            rows = session.execute(select(inner.c.run_id, func.count()).group_by(inner.c.run_id)).all()
            return {int(run_id): int(count) for run_id, count in rows}

    def shots_used(self, run_id: int) -> int:
        """Shots the stored results of a run's samples got (every round's; calibrations left out)."""
        with self._db.transaction(write=False) as session:
            return int(
                session.scalar(
                    select(func.coalesce(func.sum(ResultRow.shots), 0)).where(ResultRow.run_id == run_id, ResultRow.superseded.is_(False))
                )
                or 0
            )

    def fidelities(self, run_id: int, *, current: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every stored result's fidelity to its exact distribution, with its
        copy, position and job: four arrays, the results that have one only;
        superseded ones too (what the device did), unless ``current``."""
        with self._db.transaction(write=False) as session:
            query = select(ResultRow.fidelity, ResultRow.copy, ResultRow.position, ResultRow.job_id).where(
                ResultRow.run_id == run_id, ResultRow.fidelity.is_not(None)
            )
            if current:
                query = query.where(ResultRow.superseded.is_(False))
            rows = session.execute(query.order_by(ResultRow.id)).all()
        if not rows:
            return np.zeros(0), np.zeros(0, dtype=int), np.zeros(0, dtype=int), np.zeros(0, dtype=int)
        fidelity, copy, position, job = zip(*rows, strict=True)
        return np.array(fidelity, dtype=float), np.array(copy, dtype=int), np.array(position, dtype=int), np.array(job, dtype=int)

    def repaired(self, run_id: int) -> int:
        """Results of a run a quality repair measured again (kept, superseded)."""
        with self._db.transaction(write=False) as session:
            return int(
                session.scalar(select(func.count()).select_from(ResultRow).where(ResultRow.run_id == run_id, ResultRow.superseded.is_(True))) or 0
            )

    def current_slots(self, run_id: int) -> list[tuple[str, int, int, int, int, int, int]]:
        """(split, sample index, circuit, round, copy, position, job) of every result a run reads (none superseded)."""
        with self._db.transaction(write=False) as session:
            rows = session.execute(
                select(
                    ResultRow.split, ResultRow.sample_index, ResultRow.circuit, ResultRow.round, ResultRow.copy, ResultRow.position,
                    ResultRow.job_id,
                ).where(ResultRow.run_id == run_id, ResultRow.superseded.is_(False))
            ).all()
        return [(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6])) for r in rows]

    def count_rows(self, run_id: int) -> int:
        """Result rows (samples x circuits) stored for a run."""
        with self._db.transaction(write=False) as session:
            return int(
                session.scalar(select(func.count()).select_from(ResultRow).where(ResultRow.run_id == run_id, ResultRow.superseded.is_(False))) or 0
            )

    def run_counts(self, run_id: int, *, through_round: int | None = None) -> RunCounts:
        """All complete samples of a run, ordered by split then sample index;
        a sample's counts (and shots) are the sum of its rounds (through
        ``through_round`` only, when given)."""
        with self._db.transaction(write=False) as session:
            run = run_row(session, run_id)
            query = select(
                ResultRow.split, ResultRow.sample_index, ResultRow.circuit, ResultRow.counts, ResultRow.copy, ResultRow.shots,
                ResultRow.position,
            ).where(ResultRow.run_id == run.id, ResultRow.superseded.is_(False))
            if through_round is not None:
                query = query.where(ResultRow.round <= through_round)
            rows = session.execute(query.order_by(ResultRow.split.desc(), ResultRow.sample_index, ResultRow.circuit, ResultRow.round)).all()
            k, width = run.circuits_per_sample, 2**run.num_qubits
            shots = run.shots
        summed: dict[tuple[str, int], list[np.ndarray | None]] = {}
        shots_of: dict[tuple[str, int], np.ndarray] = {}
        copy_of: dict[tuple[str, int], np.ndarray] = {}
        position_of: dict[tuple[str, int], np.ndarray] = {}
        for split, index, circuit, blob, copy, row_shots, position in rows:
            key = (split, index)
            if key not in summed:
                summed[key] = [None] * k
                shots_of[key] = np.zeros(k, dtype=np.int64)
                copy_of[key] = np.zeros(k, dtype=np.int64)
                position_of[key] = np.zeros(k, dtype=np.int64)
            counts = np.frombuffer(blob, dtype=COUNTS_DTYPE)
            previous = summed[key][circuit]
            if previous is None:
                summed[key][circuit] = counts
                copy_of[key][circuit] = copy  # the copy (and position) that measured its first round
                position_of[key][circuit] = position
            else:
                summed[key][circuit] = previous + counts
            shots_of[key][circuit] += row_shots
        complete = [key for key, blobs in summed.items() if all(b is not None for b in blobs)]
        counts = np.zeros((len(complete), k, width), dtype=np.uint32)
        for i, key in enumerate(complete):
            counts[i] = np.stack([blob for blob in summed[key] if blob is not None])
        return RunCounts(
            splits=np.array([key[0] for key in complete], dtype="<U5"),
            sample_index=np.array([key[1] for key in complete], dtype=np.int64),
            counts=counts,
            shots=shots,
            copies=np.array([copy_of[key] for key in complete], dtype=np.int64).reshape(len(complete), k),
            sample_shots=np.array([shots_of[key] for key in complete], dtype=np.int64).reshape(len(complete), k),
            positions=np.array([position_of[key] for key in complete], dtype=np.int64).reshape(len(complete), k),
        )

    def counts_by_slot(self, run_id: int, keys: list[tuple[str, int]]) -> np.ndarray:
        """(samples, circuits, slots, 2**qubits): the counts of these samples
        that each slot (a copy at a position: position * copies + copy) of a
        packed run measured, summed over rounds (an adaptive run's rounds may
        run a sample on different slots)."""
        with self._db.transaction(write=False) as session:
            run = run_row(session, run_id)
            rows = session.execute(
                select(ResultRow.split, ResultRow.sample_index, ResultRow.circuit, ResultRow.copy, ResultRow.position, ResultRow.counts).where(
                    ResultRow.run_id == run.id, ResultRow.superseded.is_(False)
                )
            ).all()
            shape = (len(keys), run.circuits_per_sample, run.copies * run.reuse, 2**run.num_qubits)
            copies = run.copies
        row_of = {key: i for i, key in enumerate(keys)}
        counts = np.zeros(shape, dtype=np.int64)
        for split, index, circuit, copy, position, blob in rows:
            row = row_of.get((split, int(index)))
            if row is not None:
                counts[row, circuit, position * copies + copy] += np.frombuffer(blob, dtype=COUNTS_DTYPE)
        return counts

    def round_keys(self, run_id: int, round: int) -> set[tuple[str, int, int]]:
        """(split, sample index, circuit) of every result a round of a run stored."""
        with self._db.transaction(write=False) as session:
            rows = session.execute(
                select(ResultRow.split, ResultRow.sample_index, ResultRow.circuit).where(
                    ResultRow.run_id == run_id, ResultRow.round == round
                )
            ).all()
            return {(split, int(index), int(circuit)) for split, index, circuit in rows}
