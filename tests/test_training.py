"""The classical stage: hybrid on outcome distributions, the latent baseline, transfer to another run."""

from __future__ import annotations

import pytest

from qhw import runs, training
from qhw.errors import ConfigError, TrainingError
from qhw.features import build_features

from conftest import SMALL_TEST, SMALL_TRAIN

CHANCE = 0.1


def test_classical_baseline_learns_from_the_latent(featured_store):
    result = training.train_classical(featured_store, epochs=30)
    assert result.kind == "classical" and result.model.run_id is None
    assert (result.train_samples, result.test_samples) == (SMALL_TRAIN, SMALL_TEST)
    assert result.accuracy > 4 * CHANCE
    assert result.model.weights_path.is_file()
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
    assert 0.0 <= transferred.accuracy <= 1.0
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
    with pytest.raises(ConfigError, match="--epochs"):
        training.train_classical(featured_store, epochs=0)
