"""The classical stage: the paper's dense classifier on outcome distributions or on the latent."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from qhw import config
from qhw.checks import check_seed
from qhw.datasets import NUM_CLASSES
from qhw.errors import ArtifactError, ConfigError, ParameterError, TrainingError
from qhw.jobstates import UNFINISHED_STATES
from qhw.progress import Progress, SilentProgress, import_keras, keras_callback
from qhw.records import OBSERVABLES, PROBABILITIES, READOUTS, EvaluationRecord, ModelRecord, ModelSpec, RunRecord
from qhw.store import ArtifactStore, Store
from qhw.store.arrays import load_arrays

DEFAULT_EPOCHS = 60
BATCH_SIZE = 64
#: Early stopping: the share of the train samples held out to watch, the
#: fewest worth watching, and how many epochs without improvement end training.
VALIDATION_FRACTION = 0.1
MIN_VALIDATION = 50
PATIENCE = 8
BOOTSTRAP_RESAMPLES = 2000


log = logging.getLogger("qhw.training")


def bootstrap_interval(correct: np.ndarray, *, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean of a 0/1 vector (resampling test samples)."""
    correct = np.asarray(correct, dtype=float)
    if correct.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, correct.size, size=(resamples, correct.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class TrainResult:
    model: ModelRecord
    evaluation: EvaluationRecord
    train_samples: int
    test_samples: int
    readout: str | None = None  # the hybrid's (Readout); None for the classical
    classifier: Any = None  # the Keras model itself, as trained (not read back from the store)

    @property
    def accuracy(self) -> float:
        return self.evaluation.accuracy

    @property
    def kind(self) -> str:
        return self.model.kind


@dataclass(frozen=True)
class OutcomeFeatures:
    """A run's complete samples as classifier inputs."""

    x: np.ndarray  # (n, K * 2**qubits) outcome frequencies
    y: np.ndarray
    splits: np.ndarray


@dataclass(frozen=True)
class Readout:
    """The hybrid classifier's first step, from K x 2**Q outcome probabilities.

    ``probabilities`` feeds them all, scaled so a uniform outcome reads 1.
    ``observables`` feeds, for each of a circuit's P parameters, the Pauli-Z
    expectation that moves most with it (qhw.feature_maps.sensitive_observables,
    chosen from the template alone): K x P inputs through a fixed, untrained
    first layer, saved inside the model, so a model still takes probabilities
    and evaluates on any run of its feature set. Measured on mnist-5k at 1,024
    shots (benchmarks/accuracy.py, docs/how-to/datasets-and-feature-maps.md; means over three classifier seeds):
    the paper's map at 20 components reads 0.942 this way against 0.933 from
    all probabilities, whose other correlators are mostly shot noise to a
    classifier trained on 4,000 images; ``zz`` and ``reupload`` spread their
    information over many correlators and lose with it (0.43 and 0.72 against
    0.53 and 0.86 at 30 components).
    """

    name: str
    input_scale: float | None
    matrix: np.ndarray | None  # (K * 2**Q, K * P), or None

    def classifier_args(self) -> dict:
        return dict(input_scale=self.input_scale, readout_matrix=self.matrix)


def hybrid_readout(feature_set, readout: str = PROBABILITIES) -> Readout:
    """The readout ``readout`` for the runs of ``feature_set``."""
    if readout == PROBABILITIES:
        # Frequencies average 1/2**qubits; scaled so a uniform outcome reads 1,
        # the network trains on a few hundred samples as well as on thousands
        # (measured: 0.14 -> 0.57 accuracy at 300 train images, same at 4,000).
        return Readout(PROBABILITIES, float(2**feature_set.num_qubits), None)
    if readout != OBSERVABLES:
        raise ConfigError(f"unknown readout {readout!r}: choose one of {', '.join(READOUTS)}")
    from qhw import feature_maps

    masks = feature_maps.sensitive_observables(feature_maps.template_of(feature_set), feature_set.angle_range)
    one_circuit = feature_maps.observable_matrix(masks, feature_set.num_qubits)
    matrix = np.kron(np.eye(feature_set.circuits_per_sample, dtype=np.float32), one_circuit)
    return Readout(OBSERVABLES, None, matrix)


def outcome_features(store: Store, run: RunRecord) -> OutcomeFeatures:
    """Counts / shots of every complete sample of a run, K distributions side by side."""
    stored = store.results.run_counts(run.id)
    arrays = load_arrays(store.artifacts, store.catalogue.feature_set(run.feature_set_id))
    labels = np.array(
        [arrays.labels(split)[index] for split, index in zip(stored.splits, stored.sample_index, strict=True)], dtype=np.int64
    )
    # Each circuit by its own shots: an adaptive run's samples got different numbers of them.
    x = stored.frequencies().reshape(len(stored.counts), int(np.prod(stored.counts.shape[1:])))
    return OutcomeFeatures(x=x, y=labels, splits=stored.splits)


def train_hybrid(
    store: Store,
    *,
    run_id: int | None = None,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    readout: str = PROBABILITIES,
    progress: Progress | None = None,
) -> TrainResult:
    """Train on a run's train samples' outcome distributions, test on its test samples.

    ``readout``: how the classifier reads them (Readout).

    Raises:
        TrainingError: the run has no stored train or test samples.
    """
    _check_epochs(epochs)
    check_seed(seed)
    run = store.ledger.run(run_id)
    data = outcome_features(store, run)
    train, test = data.splits == "train", data.splits == "test"
    if not train.any() or not test.any():
        _refuse_uncollected(store, run)
    if not train.any():
        raise TrainingError(
            f"run {run.id} has no collected train samples: submit with --split train or --split all "
            "(and run `qhw collect`), or evaluate a model trained on another run"
        )
    if not test.any():
        raise TrainingError(f"run {run.id} has no collected test samples: submit with --split test or --split all")
    # After the refusals: choosing observables simulates the template (seconds at 12 qubits).
    chosen = hybrid_readout(store.catalogue.feature_set(run.feature_set_id), readout)
    result = _fit_and_register(
        store,
        kind="hybrid",
        feature_set_id=run.feature_set_id,
        run_id=run.id,
        x_train=data.x[train],
        y_train=data.y[train],
        x_test=data.x[test],
        y_test=data.y[test],
        **chosen.classifier_args(),
        readout=chosen.name,
        epochs=epochs,
        seed=seed,
        progress=progress,
    )
    return dataclasses.replace(result, readout=chosen.name)


def train_classical(
    store: Store,
    *,
    feature_set_id: int | None = None,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    progress: Progress | None = None,
) -> TrainResult:
    """The baseline: the same kind of classifier on the autoencoder's latent."""
    _check_epochs(epochs)
    check_seed(seed)
    feature_set = store.catalogue.feature_set(feature_set_id)
    arrays = load_arrays(store.artifacts, feature_set)
    return _fit_and_register(
        store,
        kind="classical",
        feature_set_id=feature_set.id,
        run_id=None,
        x_train=arrays.latent_train,
        y_train=arrays.y_train,
        x_test=arrays.latent_test,
        y_test=arrays.y_test,
        # The latent is unbounded and unevenly scaled; standardise inside the model.
        normalize=True,
        input_scale=None,
        epochs=epochs,
        seed=seed,
        progress=progress,
    )


def evaluate_on_run(store: Store, *, model_id: int, run_id: int) -> EvaluationRecord:
    """Apply a hybrid model to the test samples of another run of the same feature set.

    This is the transfer case: trained on simulator outcomes, applied to
    what a (real or emulated) device measured.
    """
    model_record = store.catalogue.model(model_id)
    run = store.ledger.run(run_id)
    if model_record.kind != "hybrid":
        raise ConfigError(f"model {model_id} is {model_record.kind}; only hybrid models classify run outcomes")
    if run.feature_set_id != model_record.feature_set_id:
        raise ConfigError(
            f"run {run.id} uses feature set {run.feature_set_id}, model {model_id} was trained on feature set "
            f"{model_record.feature_set_id}"
        )
    data = outcome_features(store, run)
    test = data.splits == "test"
    if not test.any():
        raise TrainingError(f"run {run.id} has no collected test samples to evaluate on")
    accuracy = _accuracy(load_model(store.artifacts, model_record), data.x[test], data.y[test])
    return store.catalogue.add_evaluation(model_id=model_id, run_id=run.id, accuracy=accuracy, test_samples=int(test.sum()))


def load_model(artifacts: ArtifactStore, model_record: ModelRecord):
    """A stored model's Keras model.

    Raises:
        ArtifactError: its weights are missing or unreadable.
    """
    keras = import_keras()
    path = artifacts.local_file(model_record.weights, f"model {model_record.id}'s weights", suffix=".keras")
    try:
        return keras.models.load_model(path)
    except Exception as err:  # missing, truncated or overwritten
        raise ArtifactError(
            f"model {model_record.id}: its weights at {path} are missing or unreadable ({type(err).__name__}); train it again"
        ) from err


def build_classifier(
    keras,
    input_dim: int,
    *,
    normalizer_data: np.ndarray | None = None,
    input_scale: float | None = None,
    readout_matrix: np.ndarray | None = None,
):
    """The paper's classifier: dense layers with batch normalisation and dropout, softmax over 10.

    Args:
        normalizer_data: standardise inputs with statistics of this array (the latent).
        input_scale: multiply inputs by this constant first (outcome frequencies).
        readout_matrix: a fixed first layer, inputs @ it (Readout).
    """
    layers = [keras.Input((input_dim,))]
    if readout_matrix is not None:
        layers.append(keras.layers.Dense(readout_matrix.shape[1], use_bias=False, trainable=False, name="readout"))
    if input_scale is not None:
        layers.append(keras.layers.Rescaling(input_scale))
    if normalizer_data is not None:
        normalizer = keras.layers.Normalization()
        normalizer.adapt(normalizer_data)
        layers.append(normalizer)
    for width in (256, 128):
        layers += [
            keras.layers.Dense(width, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.3),
        ]
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax"))
    model = keras.Sequential(layers)
    if readout_matrix is not None:
        model.get_layer("readout").set_weights([readout_matrix])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@dataclass(frozen=True)
class Classifier:
    """A trained Keras classifier and the epochs it actually ran."""

    model: Any  # a keras.Model (Keras loads lazily)
    epochs_run: int
    epochs: int  # the most it could have run
    # Keras's history, epoch by epoch: loss and accuracy on the samples fitted
    # (and val_loss, val_accuracy on the validation split, where there is one).
    history: tuple[tuple[str, tuple[float, ...]], ...] = ()


def fit_classifier(
    kind: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    normalize: bool = False,
    input_scale: float | None = None,
    readout_matrix: np.ndarray | None = None,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    progress: Progress | None = None,
) -> Classifier:
    """Build and train the classifier, for at most ``epochs`` epochs.

    Training stops early once the loss on a validation split, carved from the
    train samples only (stratified, seeded), has not improved for PATIENCE
    epochs, and keeps the best weights; too few train samples for a steady
    validation signal train for all the epochs.
    """
    progress = progress or SilentProgress()
    keras = import_keras(seed)
    model = build_classifier(
        keras,
        x_train.shape[1],
        normalizer_data=x_train if normalize else None,
        input_scale=input_scale,
        readout_matrix=readout_matrix,
    )
    x_fit, y_fit, validation = _validation_split(x_train, y_train, seed)
    with progress.task(f"{kind} classifier epochs (at most)", total=epochs) as task:
        callbacks = [keras_callback(task)]
        if validation is not None:
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=PATIENCE, restore_best_weights=True))
        history = model.fit(
            x_fit, y_fit, validation_data=validation, epochs=epochs, batch_size=batch_size(len(x_fit)), verbose=0, callbacks=callbacks
        )
    curve = tuple((key, tuple(float(value) for value in values)) for key, values in history.history.items())
    return Classifier(model=model, epochs_run=len(history.history["loss"]), epochs=epochs, history=curve)


def batch_size(samples: int) -> int:
    """64 a step on small sets (a few hundred images train well); on large ones
    a step of 0.5 % of the samples (at most 512), which costs the same accuracy
    and far fewer steps (measured on Fashion-MNIST: benchmarks/scale.py)."""
    return int(min(512, max(BATCH_SIZE, samples // 200)))


def _validation_split(x: np.ndarray, y: np.ndarray, seed: int):
    """(x, y, (x_val, y_val)), or (x, y, None) when the set is too small for one."""
    size = int(round(len(y) * VALIDATION_FRACTION))
    counts = np.bincount(y)
    if size < MIN_VALIDATION or (counts[counts > 0] < 2).any():
        return x, y, None
    from sklearn.model_selection import train_test_split

    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=size, stratify=y, random_state=seed)
    return x_fit, y_fit, (x_val, y_val)


def predict(classifier, x: np.ndarray) -> np.ndarray:
    """Predicted class per row (of a Classifier, or a Keras model)."""
    model = getattr(classifier, "model", classifier)
    return np.argmax(model.predict(x, verbose=0, batch_size=1024), axis=1)


def _fit_and_register(
    store: Store,
    *,
    kind: str,
    feature_set_id: int,
    run_id: int | None,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    normalize: bool = False,
    input_scale: float | None,
    readout_matrix: np.ndarray | None = None,
    readout: str | None = None,
    epochs: int,
    seed: int,
    progress: Progress | None,
) -> TrainResult:
    # Before the minutes of training, not after: the model has somewhere to go.
    models_dir = config.writable_dir(config.home() / "models", "the models folder")
    store_of_artifacts = store.artifacts
    store_of_artifacts.check_reachable()
    classifier = fit_classifier(
        kind,
        x_train,
        y_train,
        normalize=normalize,
        input_scale=input_scale,
        readout_matrix=readout_matrix,
        epochs=epochs,
        seed=seed,
        progress=progress,
    )
    correct = predict(classifier, x_test) == y_test
    accuracy = float(np.mean(correct))
    interval = bootstrap_interval(correct, seed=seed)
    path = models_dir / f"{uuid.uuid4().hex}.keras"
    try:
        classifier.model.save(path)
        # Into the artifact store before the row that names it.
        weights = store_of_artifacts.put_file(path, "the model's weights")
        spec = ModelSpec(
            kind=kind,
            feature_set_id=feature_set_id,
            run_id=run_id,
            train_samples=len(y_train),
            epochs=epochs,
            seed=seed,
            weights=weights,
            epochs_run=classifier.epochs_run,
            readout=readout,
            history=classifier.history,
        )
        model_record, evaluation = store.catalogue.add_model(spec, accuracy=accuracy, test_samples=len(y_test), interval=interval)
    finally:
        path.unlink(missing_ok=True)  # the store holds it now
    return TrainResult(
        model=model_record, evaluation=evaluation, train_samples=len(y_train), test_samples=len(y_test), classifier=classifier.model
    )


@dataclass(frozen=True)
class StoredModel:
    """A stored model and its Keras model: one ``train`` (or an earlier
    ``compare``) made, found again, or one trained now and stored."""

    record: ModelRecord
    model: Any  # the Keras model
    reused: bool


def hybrid_for(store: Store, run: RunRecord, *, epochs: int, seed: int, readout: str = PROBABILITIES,
               progress: Progress | None = None) -> StoredModel:
    """The hybrid classifier of a run's train samples with these settings:
    the stored one, when one was trained on the same samples (their number,
    as the run holds them now) with the same epochs, seed and readout (what
    ``qhw train --run`` stores); else trained now, and stored with its
    evaluation, as ``qhw train`` would (so that the next comparison finds it).

    Raises:
        TrainingError: as ``train_hybrid``.
    """
    data = outcome_features(store, run)
    chosen = hybrid_readout(store.catalogue.feature_set(run.feature_set_id), readout)
    found = _stored(store, kind="hybrid", feature_set_id=run.feature_set_id, run_id=run.id,
                    train_samples=int((data.splits == "train").sum()), epochs=epochs, seed=seed, readout=chosen.name)
    if found is not None:
        return found
    result = train_hybrid(store, run_id=run.id, epochs=epochs, seed=seed, readout=readout, progress=progress)
    return StoredModel(result.model, result.classifier, reused=False)


def classical_for(store: Store, feature_set_id: int, *, epochs: int, seed: int, progress: Progress | None = None) -> StoredModel:
    """The classical baseline of a feature set with these settings: the
    stored one (``qhw train --classical``'s), else trained now and stored."""
    feature_set = store.catalogue.feature_set(feature_set_id)
    found = _stored(store, kind="classical", feature_set_id=feature_set.id, run_id=None, train_samples=feature_set.n_train,
                    epochs=epochs, seed=seed, readout=None)
    if found is not None:
        return found
    result = train_classical(store, feature_set_id=feature_set.id, epochs=epochs, seed=seed, progress=progress)
    return StoredModel(result.model, result.classifier, reused=False)


def _stored(store: Store, *, kind: str, feature_set_id: int, run_id: int | None, train_samples: int, epochs: int, seed: int,
            readout: str | None) -> StoredModel | None:
    """The newest stored model trained so whose weights can still be read."""
    for record in store.catalogue.trained_like(
        kind=kind, feature_set_id=feature_set_id, run_id=run_id, train_samples=train_samples, epochs=epochs, seed=seed, readout=readout
    ):
        try:
            return StoredModel(record, load_model(store.artifacts, record), reused=True)
        except ArtifactError as err:  # its object gone or damaged: another, or a fresh one
            log.warning("model %s cannot be used again (%s); training another", record.id, err)
    return None


def _refuse_uncollected(store: Store, run: RunRecord) -> None:
    """A run whose jobs are still out: say how many, and how to bring them in."""
    unfinished = store.ledger.jobs(run.id, states=UNFINISHED_STATES)
    if unfinished:
        collected = store.results.count_samples(run.id)
        raise TrainingError(
            f"run {run.id} has {collected} of {run.n_samples} samples collected and {len(unfinished)} job(s) still "
            "unfinished: run `qhw collect --wait` first"
        )


def _accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(predict(model, x) == y))


def _check_epochs(epochs: int) -> None:
    if epochs <= 0:
        raise ParameterError("epochs", f"must be positive, got {epochs}")
