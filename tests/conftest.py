"""Shared fixtures: a private QHW_HOME per test, real SQLite files, one small feature set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from qhw.store import Store  # noqa: E402

SMALL_TRAIN = 300
SMALL_TEST = 100


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh QHW_HOME and no database URL from the caller's environment."""
    path = tmp_path / "home"
    monkeypatch.setenv("QHW_HOME", str(path))
    monkeypatch.delenv("QHW_DB_URL", raising=False)
    return path


@pytest.fixture
def store(home):
    from qhw import config

    store = Store(config.database_url())  # the default: SQLite in QHW_HOME
    yield store
    store.close()


@pytest.fixture(scope="session")
def built_home(tmp_path_factory) -> Path:
    """A home with one small 5-component feature set (id 1), built once per session."""
    from qhw.features import build_features

    path = tmp_path_factory.mktemp("built-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QHW_HOME", str(path))
        store = Store(f"sqlite:///{path}/qhw.db")
        build_features(store, limit_train=SMALL_TRAIN, limit_test=SMALL_TEST, epochs=5, seed=0)
        store.close()
    return path


@pytest.fixture
def featured_store(built_home, home):
    """A store in a fresh home whose database already holds the small feature set."""
    home.mkdir(parents=True, exist_ok=True)
    for name in ("qhw.db", "qhw.db-wal"):
        if (built_home / name).exists():
            shutil.copy(built_home / name, home / name)
    store = Store(f"sqlite:///{home}/qhw.db")
    yield store
    store.close()


@pytest.fixture
def ibm_cloud(monkeypatch, tmp_path):
    """A stateful fake IBM Quantum (kept in a file) in place of the Runtime client."""
    from fake_clouds import FakeIBMCloud

    return FakeIBMCloud(tmp_path / "ibm.cloud").install(monkeypatch)


@pytest.fixture
def braket_cloud(monkeypatch, tmp_path):
    """A stateful fake Amazon Braket (kept in a file) in place of the AWS clients."""
    from fake_clouds import FakeBraketCloud

    return FakeBraketCloud(tmp_path / "braket.cloud").install(monkeypatch)


@pytest.fixture
def fast_retries(monkeypatch):
    """Retries without the waits between them (the backoff itself is tenacity's)."""
    monkeypatch.setenv("QHW_RETRY_INITIAL_WAIT", "0")
    monkeypatch.setenv("QHW_RETRY_MAX_WAIT", "0")


def circuit_distribution(angles: np.ndarray) -> np.ndarray:
    """The feature map's exact outcome distribution, computed without Qiskit.

    After Ry(theta) and H, qubit i reads 1 with probability (1 - sin theta_i)/2,
    independently; the CNOT cascade then maps pre-cascade bits b to outputs
    o_i = b_0 xor ... xor b_i. Index bit i of the result is output qubit i.
    """
    angles = np.atleast_2d(angles)
    p_one = (1 - np.sin(angles)) / 2
    n, q = angles.shape
    out = np.ones((n, 2**q))
    for index in range(2**q):
        outputs = [(index >> i) & 1 for i in range(q)]
        before = [outputs[0]] + [outputs[i] ^ outputs[i - 1] for i in range(1, q)]
        for i, bit in enumerate(before):
            out[:, index] *= p_one[:, i] if bit else 1 - p_one[:, i]
    return out


def expected_index(signs: np.ndarray) -> int:
    """Deterministic outcome for angles +-pi/2: -pi/2 reads 1, then prefix xor."""
    bits = (np.asarray(signs) < 0).astype(int)
    outputs = np.bitwise_xor.accumulate(bits)
    return int(sum(int(b) << i for i, b in enumerate(outputs)))
