"""Datasets: the embedded subset, Keras's cache, IDX folders and .npz files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from qhw.datasets import load_dataset, read_idx
from qhw.errors import ConfigError, DatasetError


def write_idx(path, array: np.ndarray, compress: bool = False) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


def small_mnist(seed: int = 0):
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
        np.tile(np.arange(10), 4).astype(np.uint8),
        rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        np.tile(np.arange(10), 2).astype(np.uint8),
    )


def test_mnist_5k_is_split_4000_1000_stratified_and_scaled():
    data = load_dataset("mnist-5k", seed=0)
    assert data.x_train.shape == (4000, 784) and data.x_test.shape == (1000, 784)
    assert np.bincount(data.y_train).tolist() == [400] * 10
    assert np.bincount(data.y_test).tolist() == [100] * 10
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0


def test_the_split_and_subsets_follow_the_seed():
    first, again, other = (load_dataset("mnist-5k", seed=s, limit_train=200, limit_test=50) for s in (0, 0, 1))
    assert first.fingerprint == again.fingerprint != other.fingerprint
    assert np.bincount(first.y_train).tolist() == [20] * 10
    assert np.bincount(first.y_test).tolist() == [5] * 10


@pytest.mark.parametrize("compress", [False, True])
def test_an_idx_folder_loads(tmp_path, compress):
    x_train, y_train, x_test, y_test = small_mnist()
    for name, array in [
        ("train-images-idx3-ubyte", x_train),
        ("train-labels-idx1-ubyte", y_train),
        ("t10k-images-idx3-ubyte", x_test),
        ("t10k-labels-idx1-ubyte", y_test),
    ]:
        write_idx(tmp_path / name, array, compress)
    data = load_dataset(str(tmp_path))
    assert data.x_train.shape == (40, 784) and data.x_test.shape == (20, 784)
    assert np.allclose(data.x_train, x_train.reshape(40, 784) / 255.0)
    assert (data.y_test == y_test).all()


def test_an_npz_file_loads(tmp_path):
    x_train, y_train, x_test, y_test = small_mnist()
    np.savez(tmp_path / "d.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    data = load_dataset(str(tmp_path / "d.npz"), limit_test=10)
    assert data.x_train.shape == (40, 784) and len(data.y_test) == 10
    assert np.bincount(data.y_test).tolist() == [1] * 10


def test_a_truncated_idx_file_is_named(tmp_path):
    x_train, *_ = small_mnist()
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, x_train)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte: truncated"):
        read_idx(path)


def test_a_file_that_is_not_idx_is_named(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte: not an IDX file"):
        read_idx(path)


def test_a_missing_idx_file_is_named(tmp_path):
    x_train, y_train, *_ = small_mnist()
    write_idx(tmp_path / "train-images-idx3-ubyte", x_train)
    write_idx(tmp_path / "train-labels-idx1-ubyte", y_train)
    with pytest.raises(DatasetError, match="missing t10k-images-idx3-ubyte"):
        load_dataset(str(tmp_path))


def test_an_npz_without_the_arrays_names_them(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((2, 784)))
    with pytest.raises(DatasetError, match="missing arrays x_train, y_train, x_test, y_test"):
        load_dataset(str(tmp_path / "d.npz"))


def test_a_corrupt_npz_is_named(tmp_path):
    (tmp_path / "d.npz").write_bytes(b"not a zip file")
    with pytest.raises(DatasetError, match="d.npz: not an .npz archive"):
        load_dataset(str(tmp_path / "d.npz"))


def test_wrong_image_size_and_labels_are_refused(tmp_path):
    x_train, y_train, x_test, y_test = small_mnist()
    np.savez(tmp_path / "a.npz", x_train=x_train[:, :20, :20], y_train=y_train, x_test=x_test, y_test=y_test)
    with pytest.raises(DatasetError, match="expected \\(n, 28, 28\\)"):
        load_dataset(str(tmp_path / "a.npz"))
    np.savez(tmp_path / "b.npz", x_train=x_train, y_train=y_train + 5, x_test=x_test, y_test=y_test)
    with pytest.raises(DatasetError, match="labels must be integers 0-9"):
        load_dataset(str(tmp_path / "b.npz"))


def test_keras_mnist_comes_only_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(DatasetError, match="not cached at .*mnist.npz; qhw never downloads it"):
        load_dataset("mnist")
    (tmp_path / "datasets").mkdir()
    x_train, y_train, x_test, y_test = small_mnist()
    np.savez(tmp_path / "datasets" / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    assert load_dataset("mnist").x_train.shape == (40, 784)


def test_unknown_names_and_bad_limits_are_refused():
    with pytest.raises(DatasetError, match="unknown dataset 'fashion'"):
        load_dataset("fashion")
    with pytest.raises(ConfigError, match="^limit_train 5000 exceeds the 4000 train images"):
        load_dataset("mnist-5k", limit_train=5000)
    with pytest.raises(ConfigError, match="^limit_test must be positive"):
        load_dataset("mnist-5k", limit_test=0)
