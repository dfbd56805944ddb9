"""Several `qhw collect` processes at once on one database: SQLite, and the
PostgreSQL that .ci/run starts.

The scene is the issue's: runs whose `qhw submit` was killed half-way (jobs
sent, jobs whose submission was cut off after the provider accepted them,
jobs never sent), then four collectors started together. None may fail; every
sample is stored once; no job is sent twice to the provider.
"""

from __future__ import annotations

import os
import signal

import pytest

from qhw.store import Store

from conftest import assert_ledger_sound, assert_rounds_sound, qhw_env, run_qhw, start_qhw
from fake_braket import FakeBraketCloud
from fake_ibm import FakeIBMCloud

pytestmark = pytest.mark.slow
COLLECTORS = 4
POSTGRES_URL = os.environ.get("QHW_TEST_POSTGRES_URL")


def _interrupted_runs(env: dict, ibm: FakeIBMCloud, braket: FakeBraketCloud, db: list[str]) -> None:
    """Three runs, each left half-done by a SIGKILLed `qhw submit`."""
    # IBM, packed 2 copies an execution: 3 jobs of 20 executions (40 samples); the
    # 3rd is accepted by the provider and the process dies before the commit.
    ibm.inject("submit", "kill", when="after", after_calls=2)
    killed = run_qhw(env, *db, "submit", "--backend", "ibm_fez", "--split", "test", "--shots", "100", "--pack", "2", "--yes")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # Braket: 4 program sets of 25; the process dies before the provider gets the 2nd.
    braket.inject("submit", "kill", when="before", after_calls=1)
    killed = run_qhw(env, *db, "submit", "--backend", "braket_sv1", "--split", "test", "--shots", "100", "--yes")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # A local simulator, killed while storing its counts.
    killed = run_qhw({**env, "QHW_TEST_KILL_AT": "storing:1"}, *db, "submit", "--backend", "aer_simulator", "--split", "all", "--shots", "64")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # An adaptive IBM run, two samples a shot on the same qubits: its round 0
    # sent; the collectors then race to start round 1 (32 shots more).
    sent = run_qhw(
        env, *db, "submit", "--backend", "ibm_fez", "--split", "test", "--limit", "20", "--shots", "64", "--adaptive", "--reuse", "2", "--yes"
    )
    assert sent.returncode == 0, sent.stderr


def _collectors_side_by_side(env: dict, db: list[str]) -> list:
    processes = [
        start_qhw(env, *db, "collect", "--wait", "--yes", "--interval", "0.05", "--timeout", "240", "--json")
        for _ in range(COLLECTORS)
    ]
    return [(process, *process.communicate(timeout=300)) for process in processes]


def _check(store, ibm, braket, outcomes) -> None:
    for process, _stdout, stderr in outcomes:
        assert process.returncode == 0, stderr
        for sign in ("locked", "UNIQUE", "duplicate key", "Traceback", "deadlock"):
            assert sign not in stderr, stderr
    runs = store.ledger.runs()
    assert [run.backend for run in runs] == ["ibm_fez", "braket_sv1", "aer_simulator", "ibm_fez"]
    assert_ledger_sound(store, ibm, runs[0].id)
    assert_ledger_sound(store, braket, runs[1].id)
    assert_ledger_sound(store, None, runs[2].id)
    assert_rounds_sound(store, runs[3].id, ibm)  # round 1 started once, its job sent once
    assert runs[0].copies == 2 and runs[3].reuse == 2
    assert len(ibm.jobs) == 3 + 2 and len(braket.tasks) == 4  # one provider job per qhw job, in all


def _clouds(tmp_path):
    return FakeIBMCloud(tmp_path / "ibm.cloud"), FakeBraketCloud(tmp_path / "braket.cloud", max_executables=25)


def test_four_collectors_at_once_on_sqlite(featured_store, home, tmp_path):
    ibm, braket = _clouds(tmp_path)
    env = qhw_env(home, ibm=ibm.path, braket=braket.path, QHW_TEST_IBM_MAX_EXECUTIONS="2000")
    _interrupted_runs(env, ibm, braket, [])
    _check(featured_store, ibm, braket, _collectors_side_by_side(env, []))


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="QHW_TEST_POSTGRES_URL is not set (.ci/run sets it)")
def test_four_collectors_at_once_on_postgres(home, tmp_path):
    from sqlalchemy import create_engine, text

    from qhw.features import build_features

    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    store = Store(POSTGRES_URL)
    build_features(store, limit_train=300, limit_test=100, epochs=1)
    ibm, braket = _clouds(tmp_path)
    env = qhw_env(home, ibm=ibm.path, braket=braket.path, QHW_TEST_IBM_MAX_EXECUTIONS="2000")
    db = ["--db", POSTGRES_URL]
    _interrupted_runs(env, ibm, braket, db)
    _check(store, ibm, braket, _collectors_side_by_side(env, db))
    store.close()
