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
from qhw.jobstates import JobState
from qhw.store import Store
from qhw.store.models import Base

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
    # Logged to MLflow, the run names its ledger by a URL without the password.
    from mlflow import MlflowClient
    from sqlalchemy.engine import make_url

    from qhw.tracking import log_objects, open_tracker

    uri = f"sqlite:///{home.parent}/mlflow.db"
    (logged,) = log_objects(store, open_tracker(store, tracking_uri=uri, experiment="team"), runs=[result.run.id])
    tags = MlflowClient(uri).get_run(logged.mlflow_run_id).data.tags
    url = make_url(empty_postgres)
    assert url.password and tags["qhw.ledger"] == url._replace(password=None).render_as_string(hide_password=False)
    assert f":{url.password}@" not in tags["qhw.ledger"] and "***" not in tags["qhw.ledger"]
    store.close()


def test_a_team_shares_one_postgres_ledger_and_one_bucket(empty_postgres, s3_bucket, tmp_path, monkeypatch):
    """Two members, each with a home of their own (two machines), one
    PostgreSQL ledger and one S3 bucket: A builds a feature set; B, with
    nothing copied by hand, submits, trains, compares and exports on it; A
    sees B's runs and uses B's model."""
    import json
    import shutil

    from click.testing import CliRunner

    from qhw.cli import main

    team = ["--db", empty_postgres, "--artifacts", s3_bucket]

    def as_member(home, *args):
        monkeypatch.setenv("QHW_HOME", str(home))
        result = CliRunner().invoke(main, [*team, *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout) if "--json" in args else result

    home_a, home_b = tmp_path / "a", tmp_path / "b"
    built = as_member(home_a, "features", "build", "--limit-train", "40", "--limit-test", "20", "--epochs", "1", "--json")
    sim = as_member(home_b, "submit", "--backend", "statevector", "--features", str(built["feature_set"]), "--split", "all", "--shots", "256", "--json")
    emulated = as_member(home_b, "submit", "--backend", "fake_manila", "--features", str(built["feature_set"]), "--split", "all", "--shots", "256", "--json")
    assert as_member(home_b, "collect", "--json")["pending_jobs"] == 0
    trained = as_member(home_b, "train", "--run", str(sim["run"]), "--epochs", "2", "--json")
    as_member(home_b, "compare", "--sim", str(sim["run"]), "--hw", str(emulated["run"]))
    as_member(home_b, "results", "--run", str(emulated["run"]), "--out", str(tmp_path / "b.npz"))
    assert not (home_b / "features").exists() or not any((home_b / "features").iterdir())
    listed = as_member(home_a, "runs", "list", "--json")
    assert {run["run"] for run in listed} == {sim["run"], emulated["run"]}
    # A, with an empty cache, runs an adaptive run settled by B's model: the set and the model from the bucket.
    shutil.rmtree(home_a / "cache", ignore_errors=True)
    adaptive = as_member(
        home_a, "submit", "--backend", "statevector", "--features", str(built["feature_set"]), "--split", "test", "--shots", "256",
        "--adaptive", "--model", str(trained["model"]), "--json",
    )
    assert adaptive["run"] not in (sim["run"], emulated["run"])
