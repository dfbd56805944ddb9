"""SQLAlchemy ORM models of the tracking database.

Only the :mod:`qhw.store` package and the Alembic environment import this
module: the rest of qhw sees the frozen records of :mod:`qhw.records`, where job
states, splits and purposes are declared once. Every constraint is named
(through the metadata naming convention) so migrations can refer to it on any
database, SQLite's batch mode included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from qhw.jobstates import JobState
from qhw.records import DEVICE_KINDS, JOB_PURPOSES, QUALITY_MODES, RUN_SPLITS, SPLITS

NAMING_CONVENTION = MappingProxyType({
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

JOB_STATES = tuple(state.value for state in JobState)
MODEL_KINDS = ("hybrid", "classical")
MITIGATIONS = ("readout",)
#: The paper map's angle range, [-pi/2, pi/2], as the server default of rows from before migration 0011.
PAPER_ANGLE_LOW, PAPER_ANGLE_HIGH = "-1.5707963267948966", "1.5707963267948966"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class FeatureSetRow(Base):
    __tablename__ = "feature_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    dataset: Mapped[str] = mapped_column(String(1024))
    dataset_fingerprint: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(Integer)
    components: Mapped[int] = mapped_column(Integer)
    latent_dim: Mapped[int] = mapped_column(Integer)
    epochs: Mapped[int] = mapped_column(Integer)
    n_train: Mapped[int] = mapped_column(Integer)
    n_test: Mapped[int] = mapped_column(Integer)
    reconstruction_mse: Mapped[float] = mapped_column(Float)
    artifact_dir: Mapped[str] = mapped_column(String(1024))
    # The feature map (qhw.feature_maps): a built-in's name or "file:<name>",
    # its template (QPY, and OpenQASM 3 for anyone to read), and the range the
    # components are scaled to. Rows from before maps had a choice are the
    # paper's 5-qubit map, whose template is rebuilt from its name.
    feature_map: Mapped[str] = mapped_column(String(300), server_default="paper")
    num_qubits: Mapped[int] = mapped_column(Integer, server_default="5")
    num_parameters: Mapped[int] = mapped_column(Integer, server_default="5")
    reps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    angle_low: Mapped[float] = mapped_column(Float, server_default=PAPER_ANGLE_LOW)
    angle_high: Mapped[float] = mapped_column(Float, server_default=PAPER_ANGLE_HIGH)
    template_qpy: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    template_qasm3: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        CheckConstraint("components > 0", name="components_positive"),
        CheckConstraint("n_train >= 0 AND n_test >= 0", name="sizes_nonnegative"),
        CheckConstraint("num_qubits BETWEEN 2 AND 12", name="map_qubits_in_range"),
        CheckConstraint("num_parameters > 0 AND components % num_parameters = 0", name="components_fill_circuits"),
        CheckConstraint("angle_low < angle_high", name="angle_range_ordered"),
    )


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    feature_set_id: Mapped[int] = mapped_column(ForeignKey("feature_sets.id"), index=True)
    backend: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(64))
    split: Mapped[str] = mapped_column(String(8))
    shots: Mapped[int] = mapped_column(Integer)
    num_qubits: Mapped[int] = mapped_column(Integer)
    circuits_per_sample: Mapped[int] = mapped_column(Integer)
    n_samples: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # (split code, sample index) per sample, int32, in execution order.
    sample_order: Mapped[bytes] = mapped_column(LargeBinary)
    transpiled_qasm3: Mapped[str] = mapped_column(Text)
    transpiled_qpy: Mapped[bytes] = mapped_column(LargeBinary)
    # JSON list: physical qubit that ran logical (feature-map) qubit i of copy
    # i // num_qubits (one copy unless the run was packed).
    layout: Mapped[str] = mapped_column(Text)
    cost_estimate_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    # "readout" when the run also measured readout-calibration circuits.
    mitigation: Mapped[str | None] = mapped_column(String(16), nullable=True)
    calibration_qpy: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # What ran it, as its adapter described it at submit (reports need no adapter).
    device_kind: Mapped[str] = mapped_column(String(32))
    device_label: Mapped[str] = mapped_column(Text)
    # The price table in force at submit (JSON), by which actual costs are priced.
    prices_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Copies of the template side by side in each execution (qhw.packing), and
    # the partition that placed them (JSON: spacing, each copy's estimated error).
    copies: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    packing: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Samples each copy's qubits run one after another in a shot (measured,
    # then reset): a packed execution carries copies x reuse samples.
    reuse: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The pause between shots asked of the device (seconds; None: the device's default).
    rep_delay: Mapped[float | None] = mapped_column(Float, nullable=True)
    # How an emulation computes the run ("density": qhw's noisy engine; "aer":
    # Runtime's local mode), chosen once at submit; None where there is one way.
    engine: Mapped[str | None] = mapped_column(String(16), nullable=True)
    engine_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    # What --noise added to an emulated device's own noise (its SPEC, every
    # key written out); None: nothing (and every run from before it existed).
    noise: Mapped[str | None] = mapped_column(Text, nullable=True)
    # An adaptive run (qhw.adaptive): its settings (JSON), its newest round,
    # and whether its rounds have ended (every sample settled or at --shots).
    adaptive: Mapped[str | None] = mapped_column(Text, nullable=True)
    round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rounds_done: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # --quality (qhw.repair): "auto" or "off", a fixed floor in place of the
    # rule, and the reserve of device time repairs may take (a share of the
    # run's); then what it did: the slots left out of jobs not yet sent
    # (JSON list), the repairs started, whether they have ended (one not
    # sent ends them), and its log, line by line.
    quality: Mapped[str] = mapped_column(String(8), default="off", server_default="off")
    quality_floor: Mapped[float | None] = mapped_column(Float, nullable=True)
    quality_reserve: Mapped[float] = mapped_column(Float, default=0.1, server_default="0.1")
    excluded_slots: Mapped[str | None] = mapped_column(Text, nullable=True)
    repairs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    repairs_done: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    quality_log: Mapped[str | None] = mapped_column(Text, nullable=True)
    # IBM's own mitigation asked of its sampler, as --mitigate writes it
    # ("twirling-gates,dd=XY4"); None: none (readout calibration is ``mitigation``).
    device_mitigation: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        CheckConstraint(_in("split", RUN_SPLITS), name="split_valid"),
        CheckConstraint("copies > 0", name="copies_positive"),
        CheckConstraint("reuse > 0", name="reuse_positive"),
        CheckConstraint(_in("device_kind", DEVICE_KINDS), name="device_kind_valid"),
        CheckConstraint(f"mitigation IS NULL OR {_in('mitigation', MITIGATIONS)}", name="mitigation_valid"),
        CheckConstraint("shots > 0", name="shots_positive"),
        CheckConstraint(_in("quality", QUALITY_MODES), name="quality_valid"),
    )


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    provider_job_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    # "samples": executions index the run's samples; "calibration": the readout states.
    purpose: Mapped[str] = mapped_column(String(16), default="samples", server_default="samples")
    # Executions [start, stop) of the run; execution e is sample e // K, circuit e % K.
    execution_start: Mapped[int] = mapped_column(Integer)
    execution_stop: Mapped[int] = mapped_column(Integer)
    # Or exactly these executions (little-endian int32, ascending, within
    # [start, stop)): a retry of the executables a provider failed.
    execution_list: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Quantum seconds the provider reported for the finished job (IBM's usage).
    quantum_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The provider's own usage figure and its unit, where it bills in a unit of
    # its own (IBM's resource units, "RU"): the figure its cost is priced by.
    usage_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    usage_unit: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    # The ledger (docs/ledger.md). A fresh random key per submission attempt,
    # stored before the provider is called and sent as the qhw-key tag (and as
    # Braket's clientToken), finds the provider's job again after a crash.
    idempotency_key: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Set and committed just before the provider is called: from then on the
    # provider may hold a job that we have no id for.
    submit_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Calls about the job that failed in a row (network, 429, 5xx, a refused
    # fetch); ``error`` holds the last one. Reset by the next call that works.
    error_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A collector's claim on the job; it lapses at lease_until (or when its process is gone).
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # A managed simulator's reported execution time, and what the job cost once
    # finished (None: not known), priced with the run's price table.
    duration_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    cost_usd: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The provider has not yet reported its final usage (IBM computes it after
    # the job ends): quantum_seconds and cost_usd stay unknown until it has.
    usage_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The provider's own estimate of the job's QPU time (IBM's usage_estimation), beside qhw's.
    provider_estimate_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The round of an adaptive run the job belongs to, and the shots each of its
    # executions gets (None: the run's shots).
    round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    shots: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A --noise run's drift: the factor this job's error rates were scaled by
    # (None: no drift, or not run yet).
    noise_factor: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The quality repair that made it (0: none), and the slots its executions
    # ride on (JSON list; None: every slot): --quality auto leaves flagged ones out.
    repair: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    slots_used: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        UniqueConstraint("run_id", "position", name="uq_jobs_run_position"),
        CheckConstraint("shots IS NULL OR shots > 0", name="shots_positive"),
        UniqueConstraint("idempotency_key", name="uq_jobs_idempotency_key"),
        CheckConstraint(_in("state", JOB_STATES), name="state_valid"),
        CheckConstraint(_in("purpose", JOB_PURPOSES), name="purpose_valid"),
        CheckConstraint("execution_stop > execution_start", name="executions_nonempty"),
        CheckConstraint("attempt > 0 AND error_count >= 0", name="counters_valid"),
    )


class JobEventRow(Base):
    """A job's history: every state change and every change of provider job, in order."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    old_state: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: the job was created
    new_state: Mapped[str] = mapped_column(String(16))
    provider_job_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        CheckConstraint(f"old_state IS NULL OR {_in('old_state', JOB_STATES)}", name="old_state_valid"),
        CheckConstraint(_in("new_state", JOB_STATES), name="new_state_valid"),
    )


class ResultRow(Base):
    __tablename__ = "results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    split: Mapped[str] = mapped_column(String(8))
    sample_index: Mapped[int] = mapped_column(Integer)
    circuit: Mapped[int] = mapped_column(Integer)
    shots: Mapped[int] = mapped_column(Integer)
    # The copy (of a packed run) that measured it: its physical qubits are the run's;
    # and its position in the samples those qubits ran in one shot (0: first, or not reused).
    copy: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The round of an adaptive run that measured these counts (0 otherwise):
    # a sample's counts are the sum of its rounds.
    round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Little-endian uint32 counts, length 2**num_qubits, canonical bit order.
    counts: Mapped[bytes] = mapped_column(LargeBinary)
    # The counts' Hellinger fidelity to the circuit's exact distribution
    # (qhw.quality), stored with them; None: a result from before it was kept.
    fidelity: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The quality repair that measured it (0: the run's own jobs), and whether
    # a later repair measured the same circuit again: superseded counts are
    # kept, and read by nothing but the run's quality.
    repair: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    superseded: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        UniqueConstraint("run_id", "split", "sample_index", "circuit", "round", "repair", name="uq_results_sample"),
        CheckConstraint(_in("split", SPLITS), name="split_valid"),
    )


class ExecutionFailureRow(Base):
    """An execution a provider failed inside a job that otherwise ran (a program
    set's failed executable), with the provider's reason. ``retry_job_id``
    names the job that runs it again (`qhw retry`), once there is one."""

    __tablename__ = "execution_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)  # the job's attempt that failed it
    purpose: Mapped[str] = mapped_column(String(16))
    execution: Mapped[int] = mapped_column(Integer)  # of the run, within its purpose
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    retry_job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)

    __table_args__ = (
        UniqueConstraint("job_id", "attempt", "execution", name="uq_execution_failures_job_attempt_execution"),
        CheckConstraint(_in("purpose", JOB_PURPOSES), name="purpose_valid"),
    )


class DeviceSnapshotRow(Base):
    """A device's calibration when a run was submitted: never refetched."""

    __tablename__ = "device_snapshots"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), unique=True)
    device: Mapped[str] = mapped_column(String(255))
    calibrated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    # JSON lists of qhw.records.QubitCalibration and PairCalibration fields.
    qubits: Mapped[str] = mapped_column(Text)
    pairs: Mapped[str] = mapped_column(Text)
    # The provider's whole device document as it returned it (Braket), or None.
    properties: Mapped[str | None] = mapped_column(Text, nullable=True)


class CalibrationRow(Base):
    """Counts of one readout-calibration state of a run (0: all qubits 0, 2**q - 1: all 1)."""

    __tablename__ = "calibrations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    prepared: Mapped[int] = mapped_column(Integer)
    shots: Mapped[int] = mapped_column(Integer)
    counts: Mapped[bytes] = mapped_column(LargeBinary)
    # The copy (of a packed run) whose qubits were calibrated, at the position
    # (of a reused run) measured: a mid-circuit measurement errs as it does.
    copy: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (UniqueConstraint("run_id", "copy", "position", "prepared", name="uq_calibrations_run_copy_position_prepared"),)


class MitigatedResultRow(Base):
    """Mitigated quasi-probabilities of one sample and circuit, beside its raw counts."""

    __tablename__ = "mitigated_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    split: Mapped[str] = mapped_column(String(8))
    sample_index: Mapped[int] = mapped_column(Integer)
    circuit: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(32))
    # Little-endian float64, length 2**num_qubits, canonical order; may hold small negatives.
    quasi: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        UniqueConstraint("run_id", "split", "sample_index", "circuit", "method", name="uq_mitigated_results_sample"),
        CheckConstraint(_in("split", SPLITS), name="split_valid"),
    )


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    feature_set_id: Mapped[int] = mapped_column(ForeignKey("feature_sets.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), nullable=True, index=True)
    train_samples: Mapped[int] = mapped_column(Integer)
    epochs: Mapped[int] = mapped_column(Integer)
    # The epochs training actually ran (early stopping); None for models from before it was kept.
    epochs_run: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seed: Mapped[int] = mapped_column(Integer)
    weights_path: Mapped[str] = mapped_column(String(1024))
    # How a hybrid model reads each circuit (qhw.records.READOUTS); None for a
    # classical model, and for a hybrid one from before it was kept.
    readout: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Its training curve, epoch by epoch (JSON: Keras's history, e.g. loss,
    # accuracy, val_loss, val_accuracy); None for models from before it was kept.
    history: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (CheckConstraint(_in("kind", MODEL_KINDS), name="kind_valid"),)


class EvaluationRow(Base):
    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    # The run whose outcomes were classified; None for the classical baseline.
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"), nullable=True, index=True)
    accuracy: Mapped[float] = mapped_column(Float)
    test_samples: Mapped[int] = mapped_column(Integer)
    # The accuracy's 95 % bootstrap interval over the test samples; None where
    # it was not kept (evaluations from before it was, and of other runs).
    low: Mapped[float | None] = mapped_column(Float, nullable=True)
    high: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (CheckConstraint("accuracy >= 0 AND accuracy <= 1", name="accuracy_range"),)


class ReportRow(Base):
    """A comparison's HTML report, in the artifact store (a manifest of its
    files), so that any member of a team can open it (`qhw reports get`)."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_utcnow)
    simulator_run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    hardware_run_ids: Mapped[str] = mapped_column(Text)  # a JSON list of run ids
    artifacts: Mapped[str] = mapped_column(String(1024))


class TrackerClaimRow(Base):
    """A process's claim on creating the experiment tracker's run of one qhw
    object (qhw.tracking): MLflow cannot refuse a second run with the same tag,
    so the ledger serialises the find-or-create. A claim lapses at lease_until
    (a process killed while holding it)."""

    __tablename__ = "tracker_claims"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of tracker, experiment and object
    holder: Mapped[str] = mapped_column(String(128))
    lease_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
