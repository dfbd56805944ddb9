"""Shared fixtures: a private QHW_HOME per test, real SQLite files, one small feature set."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from qhw.store import Store  # noqa: E402

SMALL_TRAIN = 300
SMALL_TEST = 100


def pytest_itemcollected(item):
    """Under pytest-xdist (the README's test command runs a worker a core), a
    module's tests stay on one worker, so that its module-scoped fixtures are
    built once; the PostgreSQL tests, which share one database, all on one.
    (Marked as each test is collected: xdist reads the groups in its own
    pytest_collection_modifyitems, which runs before a conftest's.)"""
    group = "postgres" if item.get_closest_marker("postgres") else item.module.__name__
    if group in SPREAD:
        group = item.nodeid  # processes of their own, with nothing to share: spread over the workers
    item.add_marker(pytest.mark.xdist_group(group))


#: Modules whose tests each start processes of their own and share no
#: module-scoped fixture: spread test by test over the workers, so that the
#: longest modules (benchmarks, kills, interrupts, races) do not leave one
#: worker idle at the end while the other finishes them.
SPREAD = {"test_benchmarks", "test_crashes", "test_conditions", "test_concurrency"}


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
    # The feature set's files are in the home's artifact store (the default store).
    shutil.copytree(built_home / "artifacts", home / "artifacts")
    store = Store(f"sqlite:///{home}/qhw.db")
    yield store
    store.close()


#: What a user with accounts has in the environment; the fake clouds accept anything.
FAKE_CREDENTIALS = {
    "ibm": {"QISKIT_IBM_TOKEN": "fake-ibm-token-for-tests", "QISKIT_IBM_INSTANCE": "qhw-tests"},
    "braket": {"AWS_ACCESS_KEY_ID": "AKIAFAKEFORTESTS", "AWS_SECRET_ACCESS_KEY": "fake-aws-secret-for-tests"},
}


@pytest.fixture
def ibm_cloud(monkeypatch, tmp_path):
    """A stateful fake IBM Quantum (kept in a file) answering the real Runtime client."""
    from fake_ibm import FakeIBMCloud

    for name, value in FAKE_CREDENTIALS["ibm"].items():
        monkeypatch.setenv(name, value)
    # The fake lists a job as soon as it has it; tests of the listing's lag set both.
    monkeypatch.setenv("QHW_IBM_LISTING_GRACE_SECONDS", "0")
    return FakeIBMCloud(tmp_path / "ibm.cloud").install(monkeypatch)


@pytest.fixture
def braket_cloud(monkeypatch, tmp_path):
    """A stateful fake Amazon Braket, S3 and STS (kept in a file) answering real boto3 clients."""
    from fake_braket import FakeBraketCloud

    for name, value in FAKE_CREDENTIALS["braket"].items():
        monkeypatch.setenv(name, value)
    return FakeBraketCloud(tmp_path / "braket.cloud").install(monkeypatch)


@pytest.fixture
def braket_local_without_program_sets(monkeypatch):
    """Braket's local simulator as a device that takes one circuit a task (no program sets)."""
    from braket.device_schema import DeviceActionType
    from braket.devices import LocalSimulator

    real_init = LocalSimulator.__init__

    def without_program_sets(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        properties = self.properties.copy(deep=True)
        properties.action.pop(DeviceActionType.OPENQASM_PROGRAM_SET)
        type(self).properties = property(lambda _self: properties)

    monkeypatch.setattr(LocalSimulator, "__init__", without_program_sets)
    monkeypatch.setattr(LocalSimulator, "properties", LocalSimulator.properties)


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


QHW_WITH_FAKE_CLOUDS = Path(__file__).parent / "qhw_with_fake_clouds.py"


def qhw_env(home: Path, *, ibm: Path | None = None, braket: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a real `qhw` process on the fake clouds, retrying without waits."""
    env = {key: value for key, value in os.environ.items() if key != "QHW_DB_URL"}
    env.update(QHW_HOME=str(home), QHW_RETRY_INITIAL_WAIT="0", QHW_RETRY_MAX_WAIT="0", TF_CPP_MIN_LOG_LEVEL="3")
    if ibm is not None:
        env.update(QHW_TEST_FAKE_IBM=str(ibm), QHW_IBM_LISTING_GRACE_SECONDS="0", **FAKE_CREDENTIALS["ibm"])
    if braket is not None:
        env.update(QHW_TEST_FAKE_BRAKET=str(braket), **FAKE_CREDENTIALS["braket"])
    env.update(extra)
    return env


def start_qhw(env: dict[str, str], *args: str, group: bool = False) -> subprocess.Popen:
    """`qhw ARGS` as a process of its own (so that it can be SIGKILLed), with
    SIGINT as a terminal leaves it: a child inherits ignored and blocked
    signals across exec, and libraries this test process loads may have left
    SIGINT so (a qhw started so would never see a Ctrl-C). ``group``: in a
    process group of its own, which os.killpg signals whole, as a terminal's
    Ctrl-C reaches a command and every process it started."""
    return subprocess.Popen(
        [sys.executable, str(QHW_WITH_FAKE_CLOUDS), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_as_from_a_terminal,
        start_new_session=group,
    )


def _sigint_as_from_a_terminal() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def run_qhw(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    process = start_qhw(env, *args)
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def assert_ledger_sound(store, fake, run_id: int, *, attempts: int = 1) -> None:
    """The ledger's promises for a run: every job collected, every sample
    stored exactly once, each qhw job sent to the provider ``attempts`` times
    (``fake``: the fake cloud, or None for a local simulator), and every job's
    history moving forwards only."""
    from qhw.jobstates import JobState, can_move

    run = store.ledger.run(run_id)
    jobs = store.ledger.jobs(run_id)
    assert all(job.state is JobState.COLLECTED for job in jobs), [(j.id, j.state, j.error) for j in jobs]
    samples = [job for job in jobs if job.purpose == "samples" and not job.repair]
    assert sum(job.executions for job in samples) == run.n_samples * run.circuits_per_sample
    assert store.results.count_rows(run_id) == run.n_samples * run.circuits_per_sample
    # A --quality auto repair measured each of its circuits once more, superseding the first.
    assert store.results.repaired(run_id) == sum(job.executions for job in jobs if job.repair)
    assert store.results.count_samples(run_id) == run.n_samples
    for job in jobs:
        if fake is not None:
            assert len(fake.submitted(f"qhw-job={job.id}")) == attempts, job
        moves = [(event.old_state, event.new_state) for event in store.ledger.events(job.id) if event.old_state is not None]
        assert all(can_move(old, new) for old, new in moves), moves


def assert_rounds_sound(store, run_id: int, fake=None) -> None:
    """An adaptive run whose rounds ended: each round ran each of its
    executions once, on samples of the round before; each sample's counts are
    the sum of its rounds, and its shots the schedule's total after its last
    round; every job collected (and, at a provider, sent once)."""
    from qhw.jobstates import JobState

    run = store.ledger.run(run_id)
    rounds = run.adaptive
    jobs = store.ledger.jobs(run_id)
    assert run.rounds_done and all(job.state is JobState.COLLECTED for job in jobs), [(j.id, j.state, j.error) for j in jobs]
    by_round: dict[int, list[int]] = {}
    for job in jobs:
        if job.purpose == "samples":
            assert job.shots(run.shots) == rounds.round_shots(job.round)
            by_round.setdefault(job.round, []).extend(int(e) for e in job.execution_indices)
        if fake is not None:
            assert len(fake.submitted(f"qhw-job={job.id}")) == 1, job
    assert sorted(by_round) == list(range(run.round + 1))
    assert sorted(by_round[0]) == list(range(run.n_samples * run.circuits_per_sample))
    for r in range(1, run.round + 1):
        assert len(by_round[r]) == len(set(by_round[r])), f"round {r} ran an execution twice"
        assert set(by_round[r]) <= set(by_round[r - 1])
    ran = {r: set(executions) for r, executions in by_round.items()}
    last_round = {e: max(r for r, executions in ran.items() if e in executions) for e in ran[0]}
    stored = store.results.run_counts(run_id)
    assert len(stored.counts) == run.n_samples
    from qhw.jobstates import can_move
    from qhw.records import SPLIT_NAMES

    order = store.ledger.run_circuit(run_id).sample_order
    position = {(SPLIT_NAMES[int(code)], int(index)): p for p, (code, index) in enumerate(order)}
    for row, (split, index) in enumerate(zip(stored.splits, stored.sample_index, strict=True)):
        for circuit in range(run.circuits_per_sample):
            e = position[(str(split), int(index))] * run.circuits_per_sample + circuit
            assert stored.shots_each[row, circuit] == rounds.totals[last_round[e]]
            assert stored.counts[row, circuit].sum() == rounds.totals[last_round[e]]
    assert store.results.shots_used(run_id) == int(stored.shots_each.sum())
    for job in jobs:
        moves = [(event.old_state, event.new_state) for event in store.ledger.events(job.id) if event.old_state is not None]
        assert all(can_move(old, new) for old, new in moves), moves


def recomputed_accuracy(store, model_id: int, run_id: int) -> float:
    """A hybrid model's accuracy on a run's test samples, recomputed here from
    the raw counts and the dataset's labels (not through qhw.training)."""
    import keras

    from qhw.store.arrays import load_arrays

    model = keras.models.load_model(store.artifacts.local_file(store.catalogue.model(model_id).weights, f"model {model_id}", suffix=".keras"))
    stored = store.results.run_counts(run_id)
    test = stored.splits == "test"
    counts = stored.counts[test].astype(np.float64)
    x = (counts / counts.sum(axis=-1, keepdims=True)).reshape(int(test.sum()), -1).astype(np.float32)
    labels = load_arrays(store.artifacts, store.catalogue.feature_set(store.ledger.run(run_id).feature_set_id)).labels("test")[stored.sample_index[test]]
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == labels))


def snapshot(home: Path) -> tuple:
    """A digest of every row of every table of a home's SQLite database, and
    every file of the home but the database's own."""
    rows = {}
    with sqlite3.connect(home / "qhw.db") as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in sorted(tables):
            rows[table] = connection.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
    files = {
        str(path.relative_to(home)): hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else "folder"
        for path in sorted(home.rglob("*"))
        if not path.name.startswith("qhw.db")
    }
    return hashlib.sha1(repr(rows).encode()).hexdigest(), files


@pytest.fixture
def signed_features(featured_store, monkeypatch):
    """The feature set with every angle turned to +-pi/2 (by its sign), every
    third one flipped, so each sample has one known outcome and neighbouring
    samples (of a packed execution, or of one shot's positions) different
    ones: a copy, a position or a bit that lands on the wrong sample is caught."""
    from dataclasses import replace

    from qhw import runs, worker
    from qhw.store import arrays as arrays_module

    real = arrays_module.load_arrays

    def signed(artifacts, feature_set):
        arrays = real(artifacts, feature_set)
        def flip(a):
            return np.where(np.arange(a.size).reshape(a.shape) % 3 == 0, -1, 1) * np.where(a < 0, -np.pi / 2, np.pi / 2)

        return replace(arrays, angles_train=flip(arrays.angles_train), angles_test=flip(arrays.angles_test))

    monkeypatch.setattr(runs, "load_arrays", signed)
    monkeypatch.setattr(worker, "load_arrays", signed)
    return featured_store, signed(featured_store.artifacts, featured_store.catalogue.feature_set(None))


@pytest.fixture(scope="session")
def s3_endpoint():
    """An S3 API to test the artifact store against: the server .ci/run
    starts (moto's server mode, QHW_TEST_S3_ENDPOINT), or else moto's server
    in a thread of this process (the same HTTP API, for a run outside CI)."""
    url = os.environ.get("QHW_TEST_S3_ENDPOINT")
    if url:
        yield url
        return
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint, monkeypatch):
    """A fresh bucket on that server; the standard AWS variables point s3fs
    at it (moto takes any credentials). Yields its s3:// URL."""
    import uuid

    import boto3

    for name, value in {
        "AWS_ENDPOINT_URL_S3": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "QHW_RETRY_INITIAL_WAIT": "0", "QHW_RETRY_MAX_WAIT": "0",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"qhw-team-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    yield f"s3://{bucket}/qhw"


def engine_agreement(store, density_run: int, other_run: int, ideal_run: int) -> tuple[float, float]:
    """Two engines' runs of one emulated device, and an ideal run: the total
    variation between the engines' outcome distributions (pooled over every
    sample's shots) and between the density engine's and the ideal one."""
    def pooled(run_id: int) -> np.ndarray:
        counts = store.results.run_counts(run_id).counts[:, 0].astype(float)
        return counts.sum(axis=0) / counts.sum()

    density, other, ideal = pooled(density_run), pooled(other_run), pooled(ideal_run)
    between, noise = 0.5 * np.abs(density - other).sum(), 0.5 * np.abs(density - ideal).sum()
    print(f"between engines {between:.4f}, against ideal {noise:.4f}")
    return between, noise


def shot_noise_floor(store, run_id: int, draws: int = 50) -> float:
    """The total variation two runs of a run's shots differ by from shot noise
    alone: the mean over ``draws`` pairs of multinomial draws of its pooled
    shots from its own pooled distribution. Braket's local simulators take no
    seed, so engines compared against one agree to about this, never exactly."""
    counts = store.results.run_counts(run_id).counts[:, 0]
    shots, p = int(counts.sum()), counts.sum(axis=0) / counts.sum()
    rng = np.random.default_rng(0)
    pairs = rng.multinomial(shots, p, size=(draws, 2)) / shots
    return float(np.mean(0.5 * np.abs(pairs[:, 0] - pairs[:, 1]).sum(axis=1)))


def fake_ibm_device(name: str):
    """A fake IBM device of qiskit-ibm-runtime (its calibrated snapshot), by class name."""
    import warnings

    from qiskit_ibm_runtime import fake_provider

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(fake_provider, name)()


@pytest.fixture(scope="module")
def manila():
    return fake_ibm_device("FakeManilaV2")


@pytest.fixture(scope="module")
def fez():
    return fake_ibm_device("FakeFez")
