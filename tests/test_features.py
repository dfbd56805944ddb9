"""Feature sets: angles in [-pi/2, pi/2], fitted on train, reproducible, K circuits per sample."""

from __future__ import annotations

import numpy as np
import pytest

from qhw import config, runs
from qhw.errors import ConfigError, DatasetError
from qhw.features import AUTOENCODER_FILE, ENCODER_FILE, build_features
from qhw.store.arrays import ARRAYS_FILE, load_arrays

from conftest import SMALL_TEST, SMALL_TRAIN, circuit_distribution


def test_a_feature_set_is_registered_with_its_files(featured_store):
    record = featured_store.catalogue.feature_set()
    assert (record.id, record.components, record.latent_dim) == (1, 5, 64)
    assert (record.n_train, record.n_test) == (SMALL_TRAIN, SMALL_TEST)
    assert len(record.dataset_fingerprint) == 64 and record.reconstruction_mse > 0
    assert record.artifacts.startswith("sha256:")  # its files' manifest in the artifact store
    folder = featured_store.artifacts.local_folder(record.artifacts, "the feature set's files")
    for name in (ARRAYS_FILE, ENCODER_FILE, AUTOENCODER_FILE):
        assert (folder / name).is_file()
    with np.load(folder / ARRAYS_FILE) as saved:
        assert saved["pca_components"].shape == (5, 64) and saved["scaler_min"].shape == (5,)
    arrays = load_arrays(featured_store.artifacts, record)
    assert arrays.angles_train.shape == (SMALL_TRAIN, 5) and arrays.latent_test.shape == (SMALL_TEST, 64)


def test_angles_span_minus_to_plus_half_pi_on_train_and_test_is_clipped(featured_store):
    arrays = load_arrays(featured_store.artifacts, featured_store.catalogue.feature_set())
    assert np.allclose(arrays.angles_train.min(axis=0), -np.pi / 2)
    assert np.allclose(arrays.angles_train.max(axis=0), np.pi / 2)
    assert np.abs(arrays.angles_test).max() <= np.pi / 2 + 1e-12


def test_the_same_seed_gives_the_same_features(store):
    first = build_features(store, limit_train=100, limit_test=30, epochs=2, seed=3)
    second = build_features(store, limit_train=100, limit_test=30, epochs=2, seed=3)
    assert first.id != second.id and first.dataset_fingerprint == second.dataset_fingerprint
    a, b = load_arrays(store.artifacts, first), load_arrays(store.artifacts, second)
    assert np.allclose(a.angles_train, b.angles_train, atol=1e-5)
    assert np.allclose(a.angles_test, b.angles_test, atol=1e-5)
    assert [r.id for r in store.catalogue.feature_sets()] == [first.id, second.id]


def test_ten_components_run_two_circuits_per_sample(store):
    record = build_features(store, limit_train=100, limit_test=30, epochs=2, components=10)
    assert record.circuits_per_sample == 2
    run = runs.submit(store, backend_name="aer_simulator", feature_set_id=record.id, split="test", shots=4000).run
    stored = store.results.run_counts(run.id)
    assert stored.counts.shape == (30, 2, 32)
    angles = load_arrays(store.artifacts, record).angles_test[stored.sample_index]
    for k in range(2):
        exact = circuit_distribution(angles[:, 5 * k : 5 * k + 5])
        distance = 0.5 * np.abs(stored.counts[:, k, :] / 4000 - exact).sum(axis=1)
        assert (distance < 0.06).all(), (k, distance)


@pytest.mark.parametrize(
    "options, error, message",
    [
        (dict(components=7), ConfigError, "multiple of the 5 parameters"),
        (dict(components=0), ConfigError, "multiple of the 5 parameters"),
        (dict(components=10, latent_dim=8), ConfigError, "^latent_dim \\(8\\) must be at least components"),
        (dict(epochs=0), ConfigError, "^epochs must be"),
        (dict(dataset="/nowhere/mnist.npz"), DatasetError, "unknown dataset"),
        (dict(limit_train=4001), ConfigError, "exceeds the 4000 train images"),
    ],
)
def test_bad_options_write_nothing(store, options, error, message):
    with pytest.raises(error, match=message):
        build_features(store, **options)
    assert store.catalogue.feature_sets() == []
    assert not any(config.data_dir("features").iterdir())
