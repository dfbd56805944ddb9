"""The tracking database. ORM rows stay in here; callers get frozen records."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, event, func, insert, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from qhw import schema
from qhw.errors import ConfigError, NotFoundError, StoreError
from qhw.models import (
    CalibrationRow,
    EvaluationRow,
    FeatureSetRow,
    JobRow,
    MitigatedResultRow,
    ModelRow,
    ResultRow,
    RunRow,
)
from qhw.records import (
    SPLIT_NAMES,
    EvaluationRecord,
    FeatureSetRecord,
    JobRecord,
    JobState,
    ModelRecord,
    RunRecord,
)

COUNTS_DTYPE = np.dtype("<u4")


@dataclass(frozen=True)
class RunCircuit:
    """What a run needs to (re)submit jobs: the transpiled circuit and sample order."""

    qpy: bytes
    qasm3: str
    sample_order: np.ndarray  # (n_samples, 2) int32: split code, sample index
    calibration_qpy: bytes | None = None  # the readout-calibration circuit, when the run has one


@dataclass(frozen=True)
class RunCounts:
    """The stored counts of a run's complete samples (all circuits present)."""

    splits: np.ndarray  # (n,) split names
    sample_index: np.ndarray  # (n,) index within the split
    counts: np.ndarray  # (n, circuits, 2**qubits) uint32
    shots: int


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _enable_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # pragma: no cover - driver callback
        # pysqlite commits DDL on its own, so a failed migration would leave half
        # a schema; SQLAlchemy's recipe: no driver transactions, BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets `qhw jobs` read while a long collect writes; FKs are off by default.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:  # pragma: no cover - driver callback
        connection.exec_driver_sql("BEGIN")


class Store:
    """Typed access to the tracking database.

    Opening a Store creates a fresh database at the schema head and refuses an
    outdated one (see :func:`qhw.schema.ensure_current`).
    """

    def __init__(self, url: str, *, check_schema: bool = True) -> None:
        self.display_url = masked_url(url)
        try:
            self.engine = create_engine(make_url(url))
        except (ArgumentError, NoSuchModuleError, ValueError) as err:
            raise ConfigError(f"invalid database URL {self.display_url!r}: {_reason(err)}") from err
        except ImportError as err:
            raise ConfigError(f"the database driver for {self.display_url} is not installed: {err}") from err
        if self.engine.dialect.name == "sqlite":
            _enable_sqlite_pragmas(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if check_schema:
            try:
                with self.engine.begin() as connection:
                    schema.ensure_current(connection)
            except SQLAlchemyError as err:
                raise StoreError(f"cannot open database {self.display_url}: {_reason(err)}") from err

    def upgrade(self) -> tuple[str | None, str]:
        """Upgrade the schema to head; returns (revision before, revision after).

        On SQLite, Alembic's batch mode rebuilds tables (copy, drop, rename),
        which the foreign keys of rows pointing at them would refuse; they are
        switched off for the migration (possible only outside a transaction)
        and checked before it commits.
        """
        try:
            with self.engine.connect() as connection:
                sqlite = connection.dialect.name == "sqlite"
                # The raw driver connection: a pragma outside any transaction.
                raw = connection.connection.driver_connection if sqlite else None
                if sqlite:
                    raw.execute("PRAGMA foreign_keys=OFF")
                try:
                    with connection.begin():
                        before = schema.current_revision(connection)
                        schema.upgrade(connection)
                        if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                            raise StoreError(f"upgrading {self.display_url} would break foreign keys; nothing was changed")
                        return before, schema.current_revision(connection) or ""
                finally:
                    if sqlite:
                        raw.execute("PRAGMA foreign_keys=ON")
        except SQLAlchemyError as err:
            raise StoreError(f"cannot upgrade database {self.display_url}: {_reason(err)}") from err

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as err:
            session.rollback()
            raise StoreError(f"database error on {self.display_url}: {_reason(err)}") from err
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def close(self) -> None:
        self.engine.dispose()

    # --- feature sets ---------------------------------------------------------

    def add_feature_set(self, **fields) -> FeatureSetRecord:
        with self.transaction() as session:
            row = FeatureSetRow(**{**fields, "artifact_dir": str(fields["artifact_dir"])})
            session.add(row)
            session.flush()
            return _feature_set_record(row)

    def feature_set(self, feature_set_id: int | None = None) -> FeatureSetRecord:
        """The feature set with that id, or the newest one when None."""
        with self.transaction() as session:
            if feature_set_id is None:
                row = session.scalars(select(FeatureSetRow).order_by(FeatureSetRow.id.desc()).limit(1)).first()
                if row is None:
                    raise NotFoundError("no feature set yet: run `qhw features build` first")
            else:
                row = session.get(FeatureSetRow, feature_set_id)
                if row is None:
                    raise NotFoundError(f"no feature set with id {feature_set_id} (see `qhw features list`)")
            return _feature_set_record(row)

    def feature_sets(self) -> list[FeatureSetRecord]:
        with self.transaction() as session:
            rows = session.scalars(select(FeatureSetRow).order_by(FeatureSetRow.id)).all()
            return [_feature_set_record(row) for row in rows]

    # --- runs and jobs ----------------------------------------------------------

    def create_run(
        self,
        *,
        run_fields: dict,
        circuit: RunCircuit,
        layout: Iterable[int],
        job_ranges: list[tuple[int, int]],
        calibration_executions: int = 0,
    ) -> tuple[RunRecord, list[JobRecord]]:
        """Write a run and its jobs (all pending) in one transaction; with
        ``calibration_executions`` a last job runs the readout calibration."""
        with self.transaction() as session:
            run = RunRow(
                **run_fields,
                sample_order=np.ascontiguousarray(circuit.sample_order, dtype="<i4").tobytes(),
                transpiled_qasm3=circuit.qasm3,
                transpiled_qpy=circuit.qpy,
                calibration_qpy=circuit.calibration_qpy,
                layout=json.dumps([int(q) for q in layout]),
            )
            session.add(run)
            session.flush()
            jobs = [
                JobRow(run_id=run.id, position=i, execution_start=start, execution_stop=stop, state="pending")
                for i, (start, stop) in enumerate(job_ranges)
            ]
            if calibration_executions:
                jobs.append(
                    JobRow(
                        run_id=run.id,
                        position=len(jobs),
                        execution_start=0,
                        execution_stop=calibration_executions,
                        state="pending",
                        purpose="calibration",
                    )
                )
            session.add_all(jobs)
            session.flush()
            return _run_record(run), [_job_record(job) for job in jobs]

    def run(self, run_id: int | None = None) -> RunRecord:
        """The run with that id, or the newest one when None."""
        with self.transaction() as session:
            return _run_record(self._run_row(session, run_id))

    def runs(self) -> list[RunRecord]:
        with self.transaction() as session:
            return [_run_record(row) for row in session.scalars(select(RunRow).order_by(RunRow.id)).all()]

    def run_circuit(self, run_id: int) -> RunCircuit:
        with self.transaction() as session:
            row = self._run_row(session, run_id)
            order = np.frombuffer(row.sample_order, dtype="<i4").reshape(-1, 2)
            return RunCircuit(
                qpy=row.transpiled_qpy, qasm3=row.transpiled_qasm3, sample_order=order, calibration_qpy=row.calibration_qpy
            )

    def jobs(self, run_id: int | None = None, states: Iterable[JobState] | None = None) -> list[JobRecord]:
        with self.transaction() as session:
            query = select(JobRow).order_by(JobRow.run_id, JobRow.position)
            if run_id is not None:
                self._run_row(session, run_id)
                query = query.where(JobRow.run_id == run_id)
            if states is not None:
                query = query.where(JobRow.state.in_([JobState(s).value for s in states]))
            return [_job_record(row) for row in session.scalars(query).all()]

    def update_job(
        self,
        job_id: int,
        *,
        state: JobState,
        provider_job_id: str | None = None,
        error: str | None = None,
    ) -> JobRecord:
        """Record a job's new state (and its provider id or error when given)."""
        with self.transaction() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                raise NotFoundError(f"no job with id {job_id}")
            row.state = JobState(state).value
            if provider_job_id is not None:
                row.provider_job_id = provider_job_id
            if error is not None:
                row.error = error
            row.updated_at = _utcnow()
            session.flush()
            return _job_record(row)

    def store_results(self, job: JobRecord, counts: np.ndarray, shots: int, quantum_seconds: float | None = None) -> int:
        """Store a job's counts and mark it collected, atomically and at most once.

        Args:
            job: the job the counts belong to.
            counts: (executions, 2**qubits) canonical counts, in the job's execution order.
            shots: shots per execution.
            quantum_seconds: the provider's reported usage of the job, if any.

        Returns:
            The number of result rows written (0 when the job was already collected).
        """
        with self.transaction() as session:
            row = _uncollected_job(session, job)
            if row is None:
                return 0
            run = session.get(RunRow, row.run_id)
            order = np.frombuffer(run.sample_order, dtype="<i4").reshape(-1, 2)
            k = run.circuits_per_sample
            executions = np.arange(row.execution_start, row.execution_stop)
            if counts.shape[0] != executions.size:
                raise StoreError(f"job {job.id} returned {counts.shape[0]} results for {executions.size} executions")
            blobs = np.ascontiguousarray(counts, dtype=COUNTS_DTYPE)
            samples = order[executions // k]
            session.execute(
                insert(ResultRow),
                [
                    {
                        "run_id": run.id,
                        "job_id": row.id,
                        "split": SPLIT_NAMES[int(split)],
                        "sample_index": int(index),
                        "circuit": int(circuit),
                        "shots": shots,
                        "counts": blob.tobytes(),
                    }
                    for (split, index), circuit, blob in zip(samples, executions % k, blobs)
                ],
            )
            row.state = JobState.COLLECTED.value
            row.quantum_seconds = quantum_seconds
            row.updated_at = _utcnow()
            return int(executions.size)

    def store_calibration(self, job: JobRecord, counts: np.ndarray, shots: int) -> int:
        """Store a calibration job's counts (row 0: all qubits prepared 0, row 1: all 1) and mark it collected."""
        with self.transaction() as session:
            row = _uncollected_job(session, job)
            if row is None:
                return 0
            width = counts.shape[1]
            session.execute(
                insert(CalibrationRow),
                [
                    {
                        "run_id": row.run_id,
                        "job_id": row.id,
                        "prepared": prepared,
                        "shots": shots,
                        "counts": np.ascontiguousarray(blob, dtype=COUNTS_DTYPE).tobytes(),
                    }
                    for prepared, blob in zip((0, width - 1), counts)
                ],
            )
            row.state = JobState.COLLECTED.value
            row.updated_at = _utcnow()
            return len(counts)

    def calibration(self, run_id: int) -> dict[int, np.ndarray]:
        """The run's calibration counts by prepared state (empty when not collected)."""
        with self.transaction() as session:
            rows = session.execute(
                select(CalibrationRow.prepared, CalibrationRow.counts).where(CalibrationRow.run_id == run_id)
            ).all()
            return {prepared: np.frombuffer(blob, dtype=COUNTS_DTYPE).astype(np.int64) for prepared, blob in rows}

    def store_mitigated(self, run_id: int, method: str, stored: RunCounts, quasi: np.ndarray) -> None:
        """Store mitigated quasi-probabilities (samples, circuits, 2**q) beside the raw counts."""
        with self.transaction() as session:
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
                    for split, index, per_circuit in zip(stored.splits, stored.sample_index, quasi)
                    for circuit, values in enumerate(per_circuit)
                ],
            )

    def mitigated(self, run_id: int, method: str) -> dict[tuple[str, int], np.ndarray]:
        """Stored quasi-probabilities by (split, sample index): (circuits, 2**q) each."""
        with self.transaction() as session:
            rows = session.execute(
                select(MitigatedResultRow.split, MitigatedResultRow.sample_index, MitigatedResultRow.circuit, MitigatedResultRow.quasi)
                .where(MitigatedResultRow.run_id == run_id, MitigatedResultRow.method == method)
                .order_by(MitigatedResultRow.circuit)
            ).all()
        grouped: dict[tuple[str, int], list[np.ndarray]] = {}
        for split, index, _, blob in rows:
            grouped.setdefault((split, index), []).append(np.frombuffer(blob, dtype="<f8"))
        return {key: np.stack(values) for key, values in grouped.items()}

    def count_samples(self, run_id: int | None = None) -> int:
        """Samples with at least one stored result, for one run or all runs."""
        with self.transaction() as session:
            inner = select(ResultRow.run_id, ResultRow.split, ResultRow.sample_index).distinct()
            if run_id is not None:
                inner = inner.where(ResultRow.run_id == run_id)
            return int(session.scalar(select(func.count()).select_from(inner.subquery())))

    def run_counts(self, run_id: int) -> RunCounts:
        """All complete samples of a run, ordered by split then sample index."""
        with self.transaction() as session:
            run = self._run_row(session, run_id)
            rows = session.execute(
                select(ResultRow.split, ResultRow.sample_index, ResultRow.circuit, ResultRow.counts)
                .where(ResultRow.run_id == run.id)
                .order_by(ResultRow.split.desc(), ResultRow.sample_index, ResultRow.circuit)
            ).all()
            k, width = run.circuits_per_sample, 2**run.num_qubits
            shots = run.shots
        grouped: dict[tuple[str, int], list[bytes | None]] = {}
        for split, index, circuit, blob in rows:
            grouped.setdefault((split, index), [None] * k)[circuit] = blob
        complete = [(key, blobs) for key, blobs in grouped.items() if all(b is not None for b in blobs)]
        counts = np.zeros((len(complete), k, width), dtype=np.uint32)
        for i, (_, blobs) in enumerate(complete):
            counts[i] = np.frombuffer(b"".join(blobs), dtype=COUNTS_DTYPE).reshape(k, width)
        return RunCounts(
            splits=np.array([key[0] for key, _ in complete], dtype="<U5"),
            sample_index=np.array([key[1] for key, _ in complete], dtype=np.int64),
            counts=counts,
            shots=shots,
        )

    # --- models and evaluations -------------------------------------------------

    def add_model(self, *, evaluation_accuracy: float, test_samples: int, **fields) -> tuple[ModelRecord, EvaluationRecord]:
        """Register a trained model with its own evaluation, in one transaction."""
        with self.transaction() as session:
            model = ModelRow(**{**fields, "weights_path": str(fields["weights_path"])})
            session.add(model)
            session.flush()
            evaluation = EvaluationRow(
                model_id=model.id, run_id=model.run_id, accuracy=evaluation_accuracy, test_samples=test_samples
            )
            session.add(evaluation)
            session.flush()
            return _model_record(model), _evaluation_record(evaluation)

    def add_evaluation(self, *, model_id: int, run_id: int | None, accuracy: float, test_samples: int) -> EvaluationRecord:
        with self.transaction() as session:
            row = EvaluationRow(model_id=model_id, run_id=run_id, accuracy=accuracy, test_samples=test_samples)
            session.add(row)
            session.flush()
            return _evaluation_record(row)

    def model(self, model_id: int) -> ModelRecord:
        with self.transaction() as session:
            row = session.get(ModelRow, model_id)
            if row is None:
                raise NotFoundError(f"no model with id {model_id}")
            return _model_record(row)

    def evaluations(self, model_id: int | None = None) -> list[EvaluationRecord]:
        with self.transaction() as session:
            query = select(EvaluationRow).order_by(EvaluationRow.id)
            if model_id is not None:
                query = query.where(EvaluationRow.model_id == model_id)
            return [_evaluation_record(row) for row in session.scalars(query).all()]

    # --- helpers ----------------------------------------------------------------

    @staticmethod
    def _run_row(session: Session, run_id: int | None) -> RunRow:
        if run_id is None:
            row = session.scalars(select(RunRow).order_by(RunRow.id.desc()).limit(1)).first()
            if row is None:
                raise NotFoundError("no run yet: run `qhw submit --backend aer_simulator` first")
            return row
        row = session.get(RunRow, run_id)
        if row is None:
            raise NotFoundError(f"no run with id {run_id} (see `qhw jobs`)")
        return row



def _uncollected_job(session: Session, job: JobRecord) -> JobRow | None:
    """The job's row, or None when its results are already stored (collecting is idempotent)."""
    row = session.get(JobRow, job.id)
    if row is None:
        raise NotFoundError(f"no job with id {job.id}")
    return None if row.state == JobState.COLLECTED.value else row


def masked_url(url: str) -> str:
    """The URL with its password hidden, for every message and log line."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def _reason(err: Exception) -> str:
    original = getattr(err, "orig", None)
    text = str(original if original is not None else err)
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__


def _feature_set_record(row: FeatureSetRow) -> FeatureSetRecord:
    return FeatureSetRecord(
        id=row.id,
        created_at=row.created_at,
        dataset=row.dataset,
        dataset_fingerprint=row.dataset_fingerprint,
        seed=row.seed,
        components=row.components,
        latent_dim=row.latent_dim,
        epochs=row.epochs,
        n_train=row.n_train,
        n_test=row.n_test,
        reconstruction_mse=row.reconstruction_mse,
        artifact_dir=Path(row.artifact_dir),
    )


def _run_record(row: RunRow) -> RunRecord:
    return RunRecord(
        id=row.id,
        created_at=row.created_at,
        feature_set_id=row.feature_set_id,
        backend=row.backend,
        provider=row.provider,
        split=row.split,
        shots=row.shots,
        num_qubits=row.num_qubits,
        circuits_per_sample=row.circuits_per_sample,
        n_samples=row.n_samples,
        seed=row.seed,
        layout=tuple(json.loads(row.layout)),
        cost_estimate_usd=row.cost_estimate_usd,
        mitigation=row.mitigation,
    )


def _job_record(row: JobRow) -> JobRecord:
    return JobRecord(
        id=row.id,
        run_id=row.run_id,
        position=row.position,
        provider_job_id=row.provider_job_id,
        state=JobState(row.state),
        execution_start=row.execution_start,
        execution_stop=row.execution_stop,
        error=row.error,
        updated_at=row.updated_at,
        quantum_seconds=row.quantum_seconds,
        purpose=row.purpose,
    )


def _model_record(row: ModelRow) -> ModelRecord:
    return ModelRecord(
        id=row.id,
        created_at=row.created_at,
        kind=row.kind,
        feature_set_id=row.feature_set_id,
        run_id=row.run_id,
        train_samples=row.train_samples,
        epochs=row.epochs,
        seed=row.seed,
        weights_path=Path(row.weights_path),
    )


def _evaluation_record(row: EvaluationRow) -> EvaluationRecord:
    return EvaluationRecord(
        id=row.id, model_id=row.model_id, run_id=row.run_id, accuracy=row.accuracy, test_samples=row.test_samples
    )
