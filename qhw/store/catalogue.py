"""The catalogue: feature sets, trained models and their evaluations."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from qhw import circuits, feature_maps
from qhw.errors import NotFoundError
from qhw.feature_maps import FeatureMap
from qhw.records import EvaluationRecord, FeatureSetRecord, ModelRecord, ModelSpec
from qhw.store.database import Database
from qhw.store.ledger import aware
from qhw.store.models import EvaluationRow, FeatureSetRow, ModelRow


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
        artifact_dir: Path,
        feature_map: FeatureMap | None = None,
    ) -> FeatureSetRecord:
        """Register a feature set whose arrays are complete under ``artifact_dir``
        (``feature_map``: the paper's 5-qubit map when None)."""
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
                artifact_dir=stored_path(artifact_dir),
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

    def add_model(self, spec: ModelSpec, *, accuracy: float, test_samples: int) -> tuple[ModelRecord, EvaluationRecord]:
        """Register a trained model with its own evaluation, in one transaction."""
        with self._db.transaction() as session:
            model = ModelRow(
                kind=spec.kind,
                feature_set_id=spec.feature_set_id,
                run_id=spec.run_id,
                train_samples=spec.train_samples,
                epochs=spec.epochs,
                seed=spec.seed,
                weights_path=stored_path(spec.weights_path),
                epochs_run=spec.epochs_run,
            )
            session.add(model)
            session.flush()
            evaluation = EvaluationRow(model_id=model.id, run_id=model.run_id, accuracy=accuracy, test_samples=test_samples)
            session.add(evaluation)
            session.flush()
            return _model_record(model), _evaluation_record(evaluation)

    def add_evaluation(self, *, model_id: int, run_id: int | None, accuracy: float, test_samples: int) -> EvaluationRecord:
        with self._db.transaction() as session:
            row = EvaluationRow(model_id=model_id, run_id=run_id, accuracy=accuracy, test_samples=test_samples)
            session.add(row)
            session.flush()
            return _evaluation_record(row)

    def model(self, model_id: int) -> ModelRecord:
        with self._db.transaction(write=False) as session:
            row = session.get(ModelRow, model_id)
            if row is None:
                raise NotFoundError(f"no model with id {model_id}")
            return _model_record(row)

    def evaluations(self, model_id: int | None = None) -> list[EvaluationRecord]:
        with self._db.transaction(write=False) as session:
            query = select(EvaluationRow).order_by(EvaluationRow.id)
            if model_id is not None:
                query = query.where(EvaluationRow.model_id == model_id)
            return [_evaluation_record(row) for row in session.scalars(query).all()]


def stored_path(path: Path) -> str:
    """A file of the home as the database keeps it: relative to QHW_HOME, so that
    a home restored from a backup, or moved, keeps working (anything outside
    the home stays absolute)."""
    from qhw import config

    path = Path(path).absolute()
    try:
        return path.relative_to(config.home().absolute()).as_posix()
    except ValueError:
        return str(path)


def resolved_path(stored: str) -> Path:
    """Where a stored path is now: under the current QHW_HOME when it is relative."""
    from qhw import config

    path = Path(stored)
    return path if path.is_absolute() else config.home() / path


def _feature_set_record(row: FeatureSetRow) -> FeatureSetRecord:
    return FeatureSetRecord(
        id=row.id,
        created_at=aware(row.created_at),
        dataset=row.dataset,
        dataset_fingerprint=row.dataset_fingerprint,
        seed=row.seed,
        components=row.components,
        latent_dim=row.latent_dim,
        epochs=row.epochs,
        n_train=row.n_train,
        n_test=row.n_test,
        reconstruction_mse=row.reconstruction_mse,
        artifact_dir=resolved_path(row.artifact_dir),
        feature_map=row.feature_map,
        num_qubits=row.num_qubits,
        num_parameters=row.num_parameters,
        reps=row.reps,
        angle_range=(row.angle_low, row.angle_high),
        # A set from before feature maps (schema 0011) ran the paper's map of its width.
        template_qpy=row.template_qpy or circuits.to_qpy(circuits.feature_map(row.num_qubits)),
        template_qasm3=row.template_qasm3 or circuits.to_qasm3(circuits.feature_map(row.num_qubits)),
        source_sha256=row.source_sha256,
    )


def _model_record(row: ModelRow) -> ModelRecord:
    return ModelRecord(
        id=row.id,
        created_at=aware(row.created_at),
        kind=row.kind,
        feature_set_id=row.feature_set_id,
        run_id=row.run_id,
        train_samples=row.train_samples,
        epochs=row.epochs,
        seed=row.seed,
        weights_path=resolved_path(row.weights_path),
        epochs_run=row.epochs_run,
    )


def _evaluation_record(row: EvaluationRow) -> EvaluationRecord:
    return EvaluationRecord(
        id=row.id, model_id=row.model_id, run_id=row.run_id, accuracy=row.accuracy, test_samples=row.test_samples
    )
