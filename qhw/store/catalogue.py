"""The catalogue: feature sets, trained models and their evaluations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from qhw import circuits, feature_maps
from qhw.boundary import quoted
from qhw.errors import ArtifactError, NotFoundError, StoreError
from qhw.feature_maps import FeatureMap
from qhw.records import EvaluationRecord, FeatureSetRecord, ModelRecord, ModelSpec, ReportRecord
from qhw.store.database import Database, changed_rows
from qhw.store.ledger import aware
from qhw.store.mapping import Column, columns_of, record_of
from qhw.store.models import EvaluationRow, FeatureSetRow, ModelRow, ReportRow, TrackerClaimRow

if TYPE_CHECKING:
    from qhw.store.artifacts import ArtifactStore


class Catalogue:
    """Feature sets and models, each registered once its files are complete."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # --- feature sets ---------------------------------------------------------------

    def add_feature_set(
        self,
        *,
        dataset: str,
        dataset_fingerprint: str,
        seed: int,
        components: int,
        latent_dim: int,
        epochs: int,
        n_train: int,
        n_test: int,
        reconstruction_mse: float,
        artifacts: str,
        feature_map: FeatureMap | None = None,
    ) -> FeatureSetRecord:
        """Register a feature set whose files are in the artifact store under
        the reference ``artifacts`` (``feature_map``: the paper's 5-qubit map when None)."""
        feature_map = feature_map or feature_maps.resolve()
        with self._db.transaction() as session:
            row = FeatureSetRow(
                dataset=dataset,
                dataset_fingerprint=dataset_fingerprint,
                seed=seed,
                components=components,
                latent_dim=latent_dim,
                epochs=epochs,
                n_train=n_train,
                n_test=n_test,
                reconstruction_mse=reconstruction_mse,
                artifact_dir=artifacts,
                feature_map=feature_map.name,
                num_qubits=feature_map.num_qubits,
                num_parameters=feature_map.num_parameters,
                reps=feature_map.reps,
                angle_low=feature_map.angle_range[0],
                angle_high=feature_map.angle_range[1],
                template_qpy=circuits.to_qpy(feature_map.template),
                template_qasm3=circuits.to_qasm3(feature_map.template),
                source_sha256=feature_map.source_sha256,
            )
            session.add(row)
            session.flush()
            return _feature_set_record(row)

    def feature_set(self, feature_set_id: int | None = None) -> FeatureSetRecord:
        """The feature set with that id, or the newest one when None."""
        with self._db.transaction(write=False) as session:
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
        with self._db.transaction(write=False) as session:
            rows = session.scalars(select(FeatureSetRow).order_by(FeatureSetRow.id)).all()
            return [_feature_set_record(row) for row in rows]

    # --- models and evaluations -----------------------------------------------------------

    def add_model(
        self, spec: ModelSpec, *, accuracy: float, test_samples: int, interval: tuple[float, float] | None = None
    ) -> tuple[ModelRecord, EvaluationRecord]:
        """Register a trained model with its own evaluation (and the accuracy's
        95 % ``interval``), in one transaction."""
        low, high = interval if interval is not None else (None, None)
        with self._db.transaction() as session:
            model = ModelRow(**columns_of(spec, _MODEL_COLUMNS))
            session.add(model)
            session.flush()
            evaluation = EvaluationRow(
                model_id=model.id, run_id=model.run_id, accuracy=accuracy, test_samples=test_samples, low=low, high=high
            )
            session.add(evaluation)
            session.flush()
            return _model_record(model), _evaluation_record(evaluation)

    def add_evaluation(self, *, model_id: int, run_id: int | None, accuracy: float, test_samples: int) -> EvaluationRecord:
        with self._db.transaction() as session:
            row = EvaluationRow(model_id=model_id, run_id=run_id, accuracy=accuracy, test_samples=test_samples)
            session.add(row)
            session.flush()
            return _evaluation_record(row)

    def trained_like(
        self, *, kind: str, feature_set_id: int, run_id: int | None, train_samples: int, epochs: int, seed: int, readout: str | None,
    ) -> list[ModelRecord]:
        """Models trained with these settings on as many samples of this run
        (or feature set), newest first: what a comparison uses instead of
        training the same model again."""
        query = select(ModelRow).where(
            ModelRow.kind == kind, ModelRow.feature_set_id == feature_set_id, ModelRow.train_samples == train_samples,
            ModelRow.epochs == epochs, ModelRow.seed == seed,
            ModelRow.run_id.is_(None) if run_id is None else ModelRow.run_id == run_id,
            ModelRow.readout.is_(None) if readout is None else ModelRow.readout == readout,
        )
        with self._db.transaction(write=False) as session:
            return [_model_record(row) for row in session.scalars(query.order_by(ModelRow.id.desc()))]

    def models(self) -> list[ModelRecord]:
        with self._db.transaction(write=False) as session:
            return [_model_record(row) for row in session.scalars(select(ModelRow).order_by(ModelRow.id))]

    def model(self, model_id: int) -> ModelRecord:
        with self._db.transaction(write=False) as session:
            row = session.get(ModelRow, model_id)
            if row is None:
                raise NotFoundError(f"no model with id {model_id}")
            return _model_record(row)

    # --- reports -----------------------------------------------------------------------------

    def add_report(self, *, simulator_run: int, hardware_runs: list[int], artifacts: str) -> ReportRecord:
        """Register a report whose files are in the artifact store under ``artifacts``."""
        with self._db.transaction() as session:
            row = ReportRow(simulator_run_id=simulator_run, hardware_run_ids=json.dumps(list(hardware_runs)), artifacts=artifacts)
            session.add(row)
            session.flush()
            return _report_record(row)

    def reports(self) -> list[ReportRecord]:
        with self._db.transaction(write=False) as session:
            return [_report_record(row) for row in session.scalars(select(ReportRow).order_by(ReportRow.id))]

    def report(self, report_id: int) -> ReportRecord:
        with self._db.transaction(write=False) as session:
            row = session.get(ReportRow, report_id)
            if row is None:
                raise NotFoundError(f"no report with id {report_id} (see `qhw reports list`)")
            return _report_record(row)

    # --- claims on the experiment tracker's runs ----------------------------------------------

    def take_claim(self, key: str, holder: str, lease: timedelta) -> bool:
        """Whether ``holder`` now holds the claim ``key`` (for ``lease``): it
        was free, or its holder's lease has lapsed (a process killed holding it)."""
        now = datetime.now(UTC)
        try:
            with self._db.transaction() as session:
                row = session.get(TrackerClaimRow, key)
                if row is None:
                    session.add(TrackerClaimRow(key=key, holder=holder, lease_until=now + lease))
                    return True
                if aware(row.lease_until) > now:
                    return False
                taken = session.execute(
                    update(TrackerClaimRow)
                    .where(TrackerClaimRow.key == key, TrackerClaimRow.holder == row.holder, TrackerClaimRow.lease_until == row.lease_until)
                    .values(holder=holder, lease_until=now + lease)
                )
                return changed_rows(taken) == 1
        except StoreError as err:
            if isinstance(err.__cause__, IntegrityError):  # another process inserted it first
                return False
            raise

    def drop_claim(self, key: str, holder: str) -> None:
        with self._db.transaction() as session:
            session.execute(delete(TrackerClaimRow).where(TrackerClaimRow.key == key, TrackerClaimRow.holder == holder))

    def evaluations(self, model_id: int | None = None) -> list[EvaluationRecord]:
        with self._db.transaction(write=False) as session:
            query = select(EvaluationRow).order_by(EvaluationRow.id)
            if model_id is not None:
                query = query.where(EvaluationRow.model_id == model_id)
            return [_evaluation_record(row) for row in session.scalars(query).all()]


@dataclass(frozen=True)
class PushReport:
    """What ``push_artifacts`` did: rows repointed, objects copied, rows it could not move."""

    feature_sets: int
    models: int
    objects: int
    skipped: tuple[str, ...]


def push_artifacts(catalogue: Catalogue, target: ArtifactStore) -> PushReport:
    """Move a home's feature sets' and models' files into the artifact store
    ``target`` and point their rows at the objects, idempotently (run again,
    it finds nothing to move and copies nothing): files of rows from before
    the store are stored and their rows repointed (each row by compare-and-set:
    a row another process moved meanwhile is left as it is); objects rows
    name that ``target`` lacks (or holds corrupt) are copied from the home's
    own store. A row's path is read only inside the home (artifacts.home_path):
    a row of a shared ledger cannot push another member's files."""
    import qhw.store.artifacts as artifacts

    source = artifacts.home_store()
    moved_sets = moved_models = copied = 0
    skipped: list[str] = []
    kinds: tuple[tuple[str, Any, str], ...] = (  # (what, its row class, the column naming its files)
        ("feature set", FeatureSetRow, "artifact_dir"), ("model", ModelRow, "weights_path"), ("report", ReportRow, "artifacts"),
    )
    for kind, row_type, column in kinds:
        with catalogue._db.transaction(write=False) as session:
            stored = [(row.id, getattr(row, column)) for row in session.scalars(select(row_type).order_by(row_type.id))]
        for row_id, value in stored:
            what = f"{kind} {row_id}'s weights" if kind == "model" else f"{kind} {row_id}'s files"
            try:
                if artifacts.is_reference(value):
                    if source.url != target.url:
                        copy = artifacts.copy_object if kind == "model" else artifacts.copy_tree
                        copied += int(copy(value, source, target, what))
                    continue
                reference = _store_home_files(target, value, folder=kind != "model", what=what)
            except ArtifactError as err:
                skipped.append(str(err))
                continue
            with catalogue._db.transaction() as session:
                changed = changed_rows(session.execute(
                    update(row_type).where(row_type.id == row_id, getattr(row_type, column) == value).values({column: reference})
                ))
            if changed:
                moved_sets += kind == "feature set"
                moved_models += kind == "model"
    return PushReport(moved_sets, moved_models, copied, tuple(skipped))


def _store_home_files(target: ArtifactStore, stored: str, *, folder: bool, what: str) -> str:
    """A row's files from before the store (a folder, or one file, of the
    home) into ``target``: the reference the row is to name.

    Raises:
        ArtifactError: the row names nothing to move, or a path outside the home.
    """
    from qhw.store.artifacts import home_path

    path = home_path(stored, what)
    if not folder:
        if not path.is_file():
            raise ArtifactError(f"{what}: nothing to move at {path}")
        return target.put_file(path, what)
    # Each file too: a link inside the folder may lead out of the home.
    files = {p.name: home_path(str(p), f"{what}: {p.name}") for p in sorted(path.iterdir())} if path.is_dir() else {}
    files = {name: p for name, p in files.items() if p.is_file()}
    if not files:
        raise ArtifactError(f"{what}: nothing to move at {path}")
    return target.put_tree(files, what)


@dataclass(frozen=True)
class StoreCheck:
    """Objects no row names (a command killed between an object and its row),
    rows whose objects the store lacks, rows whose manifest cannot be read,
    and temporary objects of writes (under way, or cut off: ``stale``)."""

    unreferenced: tuple[str, ...]  # digests
    missing: tuple[str, ...]  # "feature set 3: sha256:..." lines
    damaged: tuple[str, ...] = ()  # "report 2: ..." lines: a manifest the store holds but that is not one
    partial: tuple[str, ...] = ()  # paths of temporary objects
    stale: tuple[str, ...] = ()  # those of them untouched for an hour: left by a write that was cut off
    removed: tuple[str, ...] = ()  # stale ones removed (``clean``)


def check_artifacts(catalogue: Catalogue, store: ArtifactStore, *, clean: bool = False) -> StoreCheck:
    """What the artifact store holds against what the rows name (feature
    sets' manifests and their files, models, the documents braket_emulator:
    runs are named by); every row is checked, whatever the ones before it
    hold. ``clean``: remove the temporary objects of writes cut off (untouched
    for an hour: a write under way touches its own)."""
    import qhw.store.artifacts as artifacts
    from qhw.store.models import RunRow

    with catalogue._db.transaction(write=False) as session:
        named = [(f"feature set {i}", v, True) for i, v in session.execute(select(FeatureSetRow.id, FeatureSetRow.artifact_dir))]
        named += [(f"model {i}", v, False) for i, v in session.execute(select(ModelRow.id, ModelRow.weights_path))]
        named += [(f"report {i}", v, True) for i, v in session.execute(select(ReportRow.id, ReportRow.artifacts))]
        named += [
            (f"run {i}", v.split(":", 1)[1], False)
            for i, v in session.execute(select(RunRow.id, RunRow.backend)) if v.startswith("braket_emulator:sha256:")
        ]
    removed = tuple(store.remove_stale_partial_writes()) if clean else ()
    partial = store.partial_writes()
    present = store.digests()
    referenced: set[str] = set()
    missing: list[str] = []
    damaged: list[str] = []
    for owner, value, is_tree in named:
        if not artifacts.is_reference(value):
            continue
        digest = value[len(artifacts.PREFIX):]
        referenced.add(digest)
        if digest not in present:
            missing.append(f"{owner}: {value}")
            continue
        if is_tree:
            try:
                manifest = store.manifest(value, owner)
            except ArtifactError as err:
                damaged.append(str(err))
                continue
            for name, file_digest in manifest.items():
                referenced.add(file_digest)
                if file_digest not in present:
                    missing.append(f"{owner}: {name} {artifacts.PREFIX}{file_digest}")
    stale = [path for path, age in partial if age is not None and age >= artifacts.STALE_PARTIAL_SECONDS]
    return StoreCheck(
        tuple(sorted(present - referenced)), tuple(missing), tuple(damaged), tuple(path for path, _ in partial), tuple(stale), removed,
    )


def resolved_path(stored: str) -> Path:
    """Where a stored path is now: under the current QHW_HOME when it is relative."""
    from qhw import config

    path = Path(stored)
    return path if path.is_absolute() else config.home() / path


def _report_record(row: ReportRow) -> ReportRecord:
    return ReportRecord(
        id=row.id, created_at=aware(row.created_at), simulator_run=row.simulator_run_id,
        hardware_runs=_run_ids(row.hardware_run_ids, f"report {row.id}"), artifacts=row.artifacts,
    )


def _run_ids(stored: str, owner: str) -> tuple[int, ...]:
    """A row's JSON list of run ids.

    Raises:
        StoreError: one line naming the row: the column holds anything else
            (a row changed outside qhw).
    """
    try:
        ids = json.loads(stored)
    except (TypeError, ValueError):
        ids = None
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise StoreError(f"{owner}: its row's hardware runs {quoted(stored)} are not a list of run ids (changed outside qhw?)")
    return tuple(ids)


def stored_reference(stored: str) -> str:
    """What a row names: an object of the artifact store as it is, a file of
    the home (rows from before the store) as its path now."""
    from qhw.store.artifacts import is_reference

    return stored if is_reference(stored) else str(resolved_path(stored))


#: FeatureSetRecord fields kept other than as themselves in a column of their name (see qhw.store.mapping).
_FEATURE_SET_COLUMNS = MappingProxyType({
    "created_at": Column("created_at", read=aware),
    "artifacts": Column("artifact_dir", read=stored_reference),
    "angle_range": Column(("angle_low", "angle_high"), read=lambda low, high: (low, high)),
    # A set from before feature maps (schema 0011) ran the paper's map of its width.
    "template_qpy": Column(("template_qpy", "num_qubits"), read=lambda qpy, qubits: qpy or circuits.to_qpy(circuits.feature_map(qubits))),
    "template_qasm3": Column(
        ("template_qasm3", "num_qubits"), read=lambda qasm3, qubits: qasm3 or circuits.to_qasm3(circuits.feature_map(qubits))
    ),
})


def _feature_set_record(row: FeatureSetRow) -> FeatureSetRecord:
    return record_of(row, FeatureSetRecord, _FEATURE_SET_COLUMNS)


#: ModelRecord fields kept other than as themselves in a column of their name (see qhw.store.mapping).
_MODEL_COLUMNS = MappingProxyType({
    "weights": Column("weights_path", read=stored_reference),
    "history": Column(
        "history",
        stored=lambda history: None if history is None else json.dumps({key: list(values) for key, values in history}),
        read=lambda text: None if text is None else tuple((key, tuple(values)) for key, values in json.loads(text).items()),
    ),
    "created_at": Column("created_at", read=aware),
})


def _model_record(row: ModelRow) -> ModelRecord:
    return record_of(row, ModelRecord, _MODEL_COLUMNS)


def _evaluation_record(row: EvaluationRow) -> EvaluationRecord:
    return EvaluationRecord(
        id=row.id, model_id=row.model_id, run_id=row.run_id, accuracy=row.accuracy, test_samples=row.test_samples, low=row.low,
        high=row.high,
    )
