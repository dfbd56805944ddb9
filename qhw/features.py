"""Feature sets: autoencoder 784 -> latent, PCA -> components, angles in the feature map's range.

Each map scales its components into the range where its encoding is
one-to-one (qhw.feature_maps). The paper's: after Ry(theta) then H a qubit
reads 1 with probability (1 - sin theta) / 2, which is one-to-one only on
[-pi/2, pi/2]; on [0, pi] theta and pi - theta fold together and the hybrid
loses most of its accuracy (docs/design.md).
"""

from __future__ import annotations

import shutil
import uuid

import numpy as np

from qhw import config, feature_maps
from qhw.checks import check_positive, check_seed
from qhw.datasets import IMAGE_PIXELS, MNIST_5K, load_dataset
from qhw.errors import ConfigError, ParameterError
from qhw.feature_maps import FeatureMap
from qhw.progress import Progress, SilentProgress, import_keras, keras_callback
from qhw.records import FeatureSetRecord
from qhw.store import Store
from qhw.store.arrays import ARRAYS_FILE

ENCODER_FILE = "encoder.keras"
AUTOENCODER_FILE = "autoencoder.keras"


def build_features(
    store: Store,
    *,
    dataset: str = MNIST_5K,
    seed: int = 0,
    components: int | None = None,
    latent_dim: int = 64,
    epochs: int = 30,
    limit_train: int | None = None,
    limit_test: int | None = None,
    progress: Progress | None = None,
    feature_map: FeatureMap | None = None,
) -> FeatureSetRecord:
    """Train the autoencoder, fit PCA and the angle scaler, save and register.

    Everything is fitted on the train split only; test angles are clipped to
    the map's range. ``feature_map``: the paper's 5-qubit map when None;
    ``components``: one circuit's parameters when None (a multiple of them
    gives K circuits a sample).

    Returns:
        The registered feature set.

    Raises:
        ConfigError: an option is out of range.
        DatasetError: the dataset cannot be loaded.
    """
    feature_map = feature_map or feature_maps.resolve()
    components = feature_map.num_parameters * feature_map.circuits_for(components)
    check_seed(seed)
    check_positive(latent_dim, "latent_dim")
    check_positive(limit_train, "limit_train")
    check_positive(limit_test, "limit_test")
    if latent_dim < components:
        raise ParameterError("latent_dim", f"({latent_dim}) must be at least {ParameterError.ref('components')} ({components})")
    if epochs <= 0:
        raise ParameterError("epochs", f"must be positive, got {epochs}")
    progress = progress or SilentProgress()
    data = load_dataset(dataset, seed=seed, limit_train=limit_train, limit_test=limit_test)
    if len(data.y_train) < components:
        raise ConfigError(f"PCA to {components} components needs at least {components} train images")
    store_of_artifacts = store.artifacts
    store_of_artifacts.check_reachable()  # before the minutes of training, before any row or folder
    features_dir = config.writable_dir(config.home() / "features", "the feature-set folder")

    autoencoder, encoder, mse = _train_autoencoder(data, latent_dim, epochs, seed, progress)
    latent_train = encoder.predict(data.x_train, verbose=0, batch_size=512)
    latent_test = encoder.predict(data.x_test, verbose=0, batch_size=512)

    from sklearn.decomposition import PCA
    from sklearn.preprocessing import MinMaxScaler

    pca = PCA(n_components=components, random_state=seed).fit(latent_train)
    low, high = feature_map.angle_range
    scaler = MinMaxScaler(feature_range=(low, high)).fit(pca.transform(latent_train))
    angles_train = np.clip(scaler.transform(pca.transform(latent_train)), low, high)
    angles_test = np.clip(scaler.transform(pca.transform(latent_test)), low, high)

    # Files first under a fresh folder, then into the artifact store; the row only once they are there.
    artifact_dir = features_dir / uuid.uuid4().hex
    artifact_dir.mkdir(parents=True)
    try:
        np.savez_compressed(
            artifact_dir / ARRAYS_FILE,
            angles_train=angles_train,
            angles_test=angles_test,
            latent_train=latent_train,
            latent_test=latent_test,
            y_train=data.y_train,
            y_test=data.y_test,
            pca_components=pca.components_,
            pca_mean=pca.mean_,
            pca_explained_variance_ratio=pca.explained_variance_ratio_,
            scaler_min=scaler.data_min_,
            scaler_max=scaler.data_max_,
        )
        autoencoder.save(artifact_dir / AUTOENCODER_FILE)
        encoder.save(artifact_dir / ENCODER_FILE)
        files = {name: artifact_dir / name for name in (ARRAYS_FILE, AUTOENCODER_FILE, ENCODER_FILE)}
        reference = store_of_artifacts.put_tree(files, "the feature set's files")
        return store.catalogue.add_feature_set(
            dataset=dataset,
            dataset_fingerprint=data.fingerprint,
            seed=seed,
            components=components,
            latent_dim=latent_dim,
            epochs=epochs,
            n_train=len(data.y_train),
            n_test=len(data.y_test),
            reconstruction_mse=mse,
            artifacts=reference,
            feature_map=feature_map,
        )
    finally:
        shutil.rmtree(artifact_dir, ignore_errors=True)  # the store holds them now


def _train_autoencoder(data, latent_dim: int, epochs: int, seed: int, progress: Progress):
    """Dense autoencoder 784 -> 256 -> latent -> 256 -> 784; returns (autoencoder, encoder, test MSE)."""
    keras = import_keras(seed)
    inputs = keras.Input((IMAGE_PIXELS,))
    hidden = keras.layers.Dense(256, activation="relu")(inputs)
    # A linear code layer: with ReLU here some latent units die and the first
    # five PCA components carry less (measured on mnist-5k: a classifier on the
    # 5 angles reaches 0.71 with ReLU, 0.75 linear).
    latent = keras.layers.Dense(latent_dim, activation=None, name="latent")(hidden)
    decoded = keras.layers.Dense(256, activation="relu")(latent)
    outputs = keras.layers.Dense(IMAGE_PIXELS, activation="sigmoid")(decoded)
    autoencoder = keras.Model(inputs, outputs, name="autoencoder")
    encoder = keras.Model(inputs, latent, name="encoder")
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")
    with progress.task("autoencoder epochs", total=epochs) as task:
        autoencoder.fit(
            data.x_train,
            data.x_train,
            epochs=epochs,
            batch_size=128,
            shuffle=True,
            verbose=0,
            callbacks=[keras_callback(task)],
        )
    reconstructed = autoencoder.predict(data.x_test, verbose=0, batch_size=512)
    mse = float(np.mean((reconstructed - data.x_test) ** 2))
    return autoencoder, encoder, mse
