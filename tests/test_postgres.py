"""The tracking database on PostgreSQL, as a team sharing one would run it.

Needs QHW_TEST_POSTGRES_URL (an empty database the tests may wipe); .ci/run
starts a server and sets it.
"""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from qhw import runs, schema
from qhw.store.models import Base
from qhw.jobstates import JobState
from qhw.store import Store

URL = os.environ.get("QHW_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL, reason="QHW_TEST_POSTGRES_URL is not set (.ci/run sets it)"),
]


@pytest.fixture
def empty_postgres():
    engine = create_engine(URL)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return URL


def test_migrations_and_models_agree_on_postgres(empty_postgres):
    engine = create_engine(empty_postgres)
    with engine.begin() as connection:
        schema.upgrade(connection)
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


def test_a_run_is_tracked_and_collected_on_postgres(empty_postgres, home):
    from qhw.features import build_features

    store = Store(empty_postgres)
    feature_set = build_features(store, limit_train=40, limit_test=20, epochs=1)
    result = runs.submit(store, backend_name="aer_simulator", feature_set_id=feature_set.id, split="all", shots=128)
    assert all(job.state is JobState.COLLECTED for job in result.jobs)
    assert runs.collect(store).samples == runs.collect(store).samples == 60
    stored = store.results.run_counts(result.run.id)
    assert stored.counts.shape == (60, 1, 32) and (stored.counts.sum(axis=2) == 128).all()
    assert list(stored.splits[:40]) == ["train"] * 40 and list(stored.splits[40:]) == ["test"] * 20
    store.close()
