"""The classical stage: hybrid on outcome distributions, the latent baseline, transfer to another run."""

from __future__ import annotations

import pytest

from qhw import runs, training
from qhw.errors import ConfigError, TrainingError
from qhw.features import build_features

from conftest import SMALL_TEST, SMALL_TRAIN, recomputed_accuracy

CHANCE = 0.1


def test_classical_baseline_learns_from_the_latent(featured_store):
    result = training.train_classical(featured_store, epochs=30)
    assert result.kind == "classical" and result.model.run_id is None
    assert (result.train_samples, result.test_samples) == (SMALL_TRAIN, SMALL_TEST)
    assert result.accuracy > 4 * CHANCE
    assert result.model.weights.startswith("sha256:")
    assert featured_store.artifacts.local_file(result.model.weights, "the model's weights").is_file()
    assert [e.accuracy for e in featured_store.catalogue.evaluations(result.model.id)] == [result.accuracy]


def test_hybrid_learns_from_outcomes_and_transfers_to_a_noisy_device(featured_store):
    simulator = runs.submit(featured_store, backend_name="aer_simulator", split="all", shots=1024).run
    device = runs.submit(featured_store, backend_name="fake_manila", split="test", shots=1024).run
    result = training.train_hybrid(featured_store, run_id=simulator.id, epochs=40)
    assert result.kind == "hybrid" and result.model.run_id == simulator.id
    assert (result.train_samples, result.test_samples) == (SMALL_TRAIN, SMALL_TEST)
    assert result.accuracy > 3 * CHANCE
    transferred = training.evaluate_on_run(featured_store, model_id=result.model.id, run_id=device.id)
    assert transferred.run_id == device.id and transferred.test_samples == SMALL_TEST
    assert transferred.accuracy == pytest.approx(recomputed_accuracy(featured_store, result.model.id, device.id))
    assert len(featured_store.catalogue.evaluations(result.model.id)) == 2


def test_a_run_without_train_samples_says_how_to_get_them(featured_store):
    runs.submit(featured_store, backend_name="aer_simulator", split="test", limit=20, shots=64)
    with pytest.raises(TrainingError, match="--split train or --split all"):
        training.train_hybrid(featured_store)


def test_transfer_needs_a_hybrid_model_and_the_same_feature_set(featured_store):
    classical = training.train_classical(featured_store, epochs=1)
    run = runs.submit(featured_store, backend_name="aer_simulator", split="all", limit=20, shots=64).run
    with pytest.raises(ConfigError, match="only hybrid models"):
        training.evaluate_on_run(featured_store, model_id=classical.model.id, run_id=run.id)
    hybrid = training.train_hybrid(featured_store, run_id=run.id, epochs=1)
    other = build_features(featured_store, limit_train=50, limit_test=20, epochs=1)
    other_run = runs.submit(featured_store, backend_name="aer_simulator", feature_set_id=other.id, split="test", shots=64).run
    with pytest.raises(ConfigError, match="feature set"):
        training.evaluate_on_run(featured_store, model_id=hybrid.model.id, run_id=other_run.id)


def test_non_positive_epochs_are_refused(featured_store):
    with pytest.raises(ConfigError, match="^epochs must be positive"):
        training.train_classical(featured_store, epochs=0)


# --- early stopping ---------------------------------------------------------------------------------


def _blobs(n: int, seed: int = 0):
    """Ten well-separated classes in 8 dimensions: learnt in a few epochs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    centres = rng.normal(0, 4, (10, 8))
    return (centres[y] + rng.normal(0, 1, (n, 8))).astype("float32"), y


def test_training_stops_early_on_a_validation_split_of_the_train_samples():
    x, y = _blobs(2000)
    classifier = training.fit_classifier("classical", x, y, normalize=True, epochs=200, seed=0)
    assert classifier.epochs == 200 and training.PATIENCE < classifier.epochs_run < 200
    x_fit, y_fit, (x_val, y_val) = training._validation_split(x, y, seed=0)
    assert len(y_val) == 200 and len(y_fit) == 1800  # carved from the train samples only
    assert sorted(set(y_val.tolist())) == list(range(10))  # stratified


def test_early_stopping_keeps_the_weights_of_the_best_validation_epoch(monkeypatch):
    """Noisy labels overfit: the validation loss falls, then rises. The model
    returned must be the one of the lowest validation loss seen (recorded
    epoch by epoch through Keras's own callback), not the last epoch's."""
    import numpy as np

    keras = training.import_keras(0)
    losses: list[float] = []

    class Recorder(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            losses.append(float(logs["val_loss"]))

    # In the slot of qhw's progress callback (progress is not under test here).
    monkeypatch.setattr(training, "keras_callback", lambda task: Recorder())
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (800, 16)).astype("float32")
    y = np.where(rng.random(800) < 0.6, (x[:, 0] > 0).astype(int), rng.integers(0, 10, 800))
    classifier = training.fit_classifier("classical", x, y, normalize=True, epochs=150, seed=0)
    assert classifier.epochs_run == len(losses) < 150
    best = int(np.argmin(losses))
    assert losses[-1] > losses[best] + 1e-3  # the last epoch was worse: restoring matters here
    _, _, (x_val, y_val) = training._validation_split(x, y, seed=0)
    restored = classifier.model.evaluate(x_val, y_val, verbose=0, batch_size=1024)[0]
    assert restored == pytest.approx(losses[best], abs=1e-4)


def test_too_few_train_samples_train_for_every_epoch():
    x, y = _blobs(300)  # 30 validation samples would be too noisy a signal
    classifier = training.fit_classifier("classical", x, y, normalize=True, epochs=12, seed=0)
    assert classifier.epochs_run == 12
    assert training._validation_split(x, y, seed=0)[2] is None


def test_the_epochs_run_are_stored_with_the_model(featured_store):
    from click.testing import CliRunner

    from qhw.cli import main

    result = CliRunner().invoke(main, ["train", "--classical", "--epochs", "5", "--json"])
    assert result.exit_code == 0, result.output
    import json

    model_id = json.loads(result.stdout)["model"]
    assert json.loads(result.stdout)["epochs_run"] == 5 == featured_store.catalogue.model(model_id).epochs_run


def test_the_batch_grows_with_the_data():
    assert training.batch_size(300) == 64 and training.batch_size(12_800) == 64
    assert training.batch_size(54_000) == 270 and training.batch_size(10**7) == 512
