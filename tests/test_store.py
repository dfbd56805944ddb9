"""The tracking database: schema versions, constraints, transactions."""

from __future__ import annotations

import math
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

import qhw.migrations
from qhw import feature_maps, schema
from qhw.errors import ConfigError, NotFoundError, SchemaOutdatedError, StoreError
from qhw.jobstates import JobState
from qhw.records import JobPlan, RunSpec
from qhw.store import RunCircuit, Store
from qhw.store.models import Base


def test_migrations_and_models_agree(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/m.db")
    with engine.begin() as connection:
        schema.upgrade(connection)
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_migrations_have_one_head_and_named_files():
    versions = Path(qhw.migrations.__file__).parent / "versions"
    files = sorted(p.name for p in versions.glob("*.py") if p.name != "__init__.py")
    assert files and all(name.split("_", 1)[0].isdigit() and "_" in name for name in files)
    assert schema.head_revision() == "0021"


def test_fresh_database_is_created_at_head_with_sqlite_pragmas(store):
    with store.engine.connect() as connection:
        assert schema.current_revision(connection) == schema.head_revision()
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def _with_extra_migration(tmp_path, monkeypatch, source: str) -> None:
    """Point Alembic at a copy of qhw's migrations plus revision 0099 (``source``)."""
    scripts = tmp_path / "migrations"
    shutil.copytree(Path(qhw.migrations.__file__).parent, scripts)
    (scripts / "versions" / "0099_extra.py").write_text(source)
    real_config = schema.alembic_config

    def config_with_extra(connection=None):
        config = real_config(connection)
        config.set_main_option("script_location", str(scripts))
        return config

    monkeypatch.setattr(schema, "alembic_config", config_with_extra)


def test_database_behind_head_is_refused_until_upgraded(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/old.db"
    Store(url).close()  # at head
    head = schema.head_revision()
    _with_extra_migration(
        tmp_path,
        monkeypatch,
        f'revision = "0099"\ndown_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n\n'
        "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n",
    )
    with pytest.raises(SchemaOutdatedError, match="qhw db upgrade"):
        Store(url)
    before, after = Store(url, check_schema=False).upgrade()
    assert (before, after) == (head, "0099")
    Store(url).close()  # now accepted


def test_foreign_tables_without_a_version_are_refused(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/other.db")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE something (id INTEGER)"))
    with pytest.raises(StoreError, match="no qhw schema"):
        Store(f"sqlite:///{tmp_path}/other.db")


def test_unreachable_and_invalid_urls_give_clear_errors(tmp_path):
    with pytest.raises(StoreError, match="cannot open database"):
        Store(f"sqlite:///{tmp_path}/missing-folder/qhw.db")
    with pytest.raises(ConfigError, match="invalid database URL"):
        Store("not a url")


def test_newest_lookups_name_the_command_that_makes_one(store):
    with pytest.raises(NotFoundError, match="qhw features build"):
        store.catalogue.feature_set()
    with pytest.raises(NotFoundError, match="qhw submit"):
        store.ledger.run()
    with pytest.raises(NotFoundError, match="no run with id 42"):
        store.ledger.run(42)


def _run(store: Store, feature_set_id: int, n_samples: int, k: int = 1):
    order = np.column_stack([np.zeros(n_samples), np.arange(n_samples)]).astype(np.int32)
    spec = RunSpec(
        feature_set_id=feature_set_id, backend="aer_simulator", provider="aer", split="train", shots=10, num_qubits=5,
        circuits_per_sample=k, n_samples=n_samples, seed=0, layout=(0, 1, 2, 3, 4), cost_estimate_usd=None,
    )
    return store.ledger.create_run(
        spec, RunCircuit(qpy=b"qpy", qasm3="OPENQASM 3.0;", sample_order=order), [JobPlan(0, n_samples * k)]
    )


def test_results_are_stored_once_and_read_back_in_order(featured_store):
    run, (job,) = _run(featured_store, 1, n_samples=4, k=2)
    counts = np.zeros((8, 32), dtype=np.uint32)
    counts[np.arange(8), np.arange(8)] = 10
    assert featured_store.results.store_counts(job, counts, 10) == 8
    assert featured_store.results.store_counts(job, counts, 10) == 0  # already collected
    assert featured_store.ledger.jobs(run.id)[0].state is JobState.COLLECTED
    stored = featured_store.results.run_counts(run.id)
    assert stored.counts.shape == (4, 2, 32)
    assert (stored.counts.reshape(8, 32) == counts).all()
    assert list(stored.sample_index) == [0, 1, 2, 3]
    assert featured_store.results.count_samples(run.id) == 4


def test_state_column_rejects_unknown_states(featured_store):
    _, (job,) = _run(featured_store, 1, n_samples=1)
    with pytest.raises(StoreError):
        with featured_store.transaction() as session:
            session.execute(text("UPDATE jobs SET state = 'exploded' WHERE id = :id"), {"id": job.id})
    assert featured_store.ledger.jobs()[0].state is JobState.PENDING


def test_a_failed_transaction_leaves_nothing_behind(featured_store):
    with pytest.raises(StoreError):
        _run(featured_store, feature_set_id=999, n_samples=2)  # foreign key violation
    assert featured_store.ledger.runs() == [] and featured_store.ledger.jobs() == []


def test_a_populated_database_from_the_first_schema_upgrades_with_its_data(tmp_path):
    url = f"sqlite:///{tmp_path}/v1.db"
    engine = create_engine(url)
    with engine.begin() as connection:
        schema.upgrade(connection, "0001")
        now = "2026-01-01 00:00:00"
        connection.execute(text(
            "INSERT INTO feature_sets (id, created_at, dataset, dataset_fingerprint, seed, components, latent_dim, "
            "epochs, n_train, n_test, reconstruction_mse, artifact_dir) "
            f"VALUES (1, '{now}', 'mnist-5k', 'ab', 0, 5, 64, 1, 1, 1, 0.1, '/x')"
        ))
        connection.execute(text(
            "INSERT INTO runs (id, created_at, feature_set_id, backend, provider, split, shots, num_qubits, "
            "circuits_per_sample, n_samples, seed, sample_order, transpiled_qasm3, transpiled_qpy, layout) "
            f"VALUES (1, '{now}', 1, 'aer_simulator', 'aer', 'test', 10, 5, 1, 1, 0, x'00', 'q', x'00', '[0,1,2,3,4]')"
        ))
        connection.execute(text(
            "INSERT INTO jobs (id, run_id, position, provider_job_id, state, execution_start, execution_stop, "
            f"created_at, updated_at) VALUES (1, 1, 0, 'abc', 'collected', 0, 1, '{now}', '{now}')"
        ))
        connection.execute(text(
            "INSERT INTO results (run_id, job_id, split, sample_index, circuit, shots, counts) "
            "VALUES (1, 1, 'test', 0, 0, 10, x'00')"
        ))
    engine.dispose()
    with pytest.raises(SchemaOutdatedError):
        Store(url)
    before, after = Store(url, check_schema=False).upgrade()
    assert (before, after) == ("0001", schema.head_revision())
    store = Store(url)
    (job,) = store.ledger.jobs()
    assert (job.provider_job_id, job.state, job.purpose, job.quantum_seconds) == ("abc", JobState.COLLECTED, "samples", None)
    assert store.ledger.run(1).mitigation is None and store.results.count_samples(1) == 1
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_emulation_runs_made_before_the_noisy_engine_keep_their_providers_path(tmp_path):
    """Runs of an emulated device made before the engine (0013, 0014) are
    recorded as what they ran on, so that their remaining jobs and retries
    run there: Aer for a fake IBM device, LocalEmulator for braket_emulator:."""
    url = f"sqlite:///{tmp_path}/v12.db"
    engine = create_engine(url)
    with engine.begin() as connection:
        schema.upgrade(connection, "0012")
        now = "2026-01-01 00:00:00"
        connection.execute(text(
            "INSERT INTO feature_sets (id, created_at, dataset, dataset_fingerprint, seed, components, latent_dim, "
            "epochs, n_train, n_test, reconstruction_mse, artifact_dir) "
            f"VALUES (1, '{now}', 'mnist-5k', 'ab', 0, 5, 64, 1, 1, 1, 0.1, 'x')"
        ))
        for run_id, backend, provider, kind in [
            (1, "fake_manila", "ibm", "emulation"), (2, "braket_emulator:g.json", "braket", "emulation"),
            (3, "braket_local", "braket", "simulator"), (4, "ibm_fez", "ibm", "hardware"),
        ]:
            connection.execute(text(
                "INSERT INTO runs (id, created_at, feature_set_id, backend, provider, split, shots, num_qubits, "
                "circuits_per_sample, n_samples, seed, sample_order, transpiled_qasm3, transpiled_qpy, layout, device_kind, device_label) "
                f"VALUES ({run_id}, '{now}', 1, '{backend}', '{provider}', 'test', 10, 5, 1, 1, 0, x'00', 'q', x'00', '[0,1,2,3,4]', '{kind}', '{backend}')"
            ))
    engine.dispose()
    Store(url, check_schema=False).upgrade()
    store = Store(url)
    assert [store.ledger.run(run_id).engine for run_id in (1, 2, 3, 4)] == ["aer", "braket", None, None]


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/db.db"
    Store(url).close()
    head = schema.head_revision()
    _with_extra_migration(
        tmp_path,
        monkeypatch,
        f'import sqlalchemy as sa\nfrom alembic import op\nrevision = "0099"\ndown_revision = "{head}"\n'
        "branch_labels = None\ndepends_on = None\n\n"
        "def upgrade():\n    op.create_table('half_done', sa.Column('id', sa.Integer, primary_key=True))\n"
        "    raise RuntimeError('broken migration')\n\ndef downgrade():\n    pass\n",
    )
    with pytest.raises(RuntimeError, match="broken migration"):
        Store(url, check_schema=False).upgrade()
    engine = create_engine(url)
    with engine.connect() as connection:
        assert schema.current_revision(connection) == head
        assert "half_done" not in [r[0] for r in connection.execute(text("SELECT name FROM sqlite_master"))]


def test_a_home_restored_elsewhere_keeps_its_feature_sets_and_models(featured_store, home, tmp_path, monkeypatch):
    from qhw import runs, training
    from qhw.store.arrays import load_arrays

    run = runs.submit(featured_store, backend_name="statevector", split="all", limit=20, shots=64).run
    model = training.train_hybrid(featured_store, run_id=run.id, epochs=2).model
    featured_store.close()
    with sqlite3.connect(home / "qhw.db") as connection:
        stored = connection.execute("SELECT artifact_dir FROM feature_sets").fetchall() + connection.execute("SELECT weights_path FROM models").fetchall()
    # Rows name objects of the artifact store (by default the home's own folder), not paths.
    assert [path[:7] for (path,) in stored] == ["sha256:", "sha256:"]

    moved = tmp_path / "restored" / "home"
    shutil.move(home, moved)
    monkeypatch.setenv("QHW_HOME", str(moved))
    store = Store(f"sqlite:///{moved}/qhw.db")
    feature_set = store.catalogue.feature_set(1)
    assert len(load_arrays(store.artifacts, feature_set).y_test) > 0
    evaluation = training.evaluate_on_run(store, model_id=model.id, run_id=run.id)
    assert evaluation.test_samples == 20
    store.close()


def test_the_migration_makes_the_home_s_paths_relative_wherever_the_home_was(tmp_path):
    url = f"sqlite:///{tmp_path}/v7.db"
    engine = create_engine(url)
    now = "2026-01-01 00:00:00"
    with engine.begin() as connection:
        schema.upgrade(connection, "0007")
        for feature_set_id, path in ((1, "/old/home/features/3f2a"), (2, "/data/arrays-kept-elsewhere")):
            connection.execute(text(
                "INSERT INTO feature_sets (id, created_at, dataset, dataset_fingerprint, seed, components, latent_dim, "
                "epochs, n_train, n_test, reconstruction_mse, artifact_dir) "
                f"VALUES ({feature_set_id}, '{now}', 'mnist-5k', 'ab', 0, 5, 64, 1, 1, 1, 0.1, '{path}')"
            ))
        connection.execute(text(
            "INSERT INTO models (id, created_at, kind, feature_set_id, run_id, train_samples, epochs, seed, weights_path) "
            f"VALUES (1, '{now}', 'classical', 1, NULL, 1, 1, 0, '/moved/away/models/9c1d.keras')"
        ))
    engine.dispose()
    assert Store(url, check_schema=False).upgrade() == ("0007", schema.head_revision())
    with create_engine(url).connect() as connection:
        assert connection.execute(text("SELECT artifact_dir FROM feature_sets ORDER BY id")).scalars().all() == [
            "features/3f2a", "/data/arrays-kept-elsewhere"
        ]
        assert connection.execute(text("SELECT weights_path FROM models")).scalar() == "models/9c1d.keras"
    # Feature sets from before maps had a choice are the paper's 5-qubit map over [-pi/2, pi/2].
    store = Store(url)
    try:
        old = store.catalogue.feature_set(1)
        assert (old.feature_map, old.num_qubits, old.num_parameters, old.circuits_per_sample) == ("paper", 5, 5, 1)
        assert old.angle_range == (-math.pi / 2, math.pi / 2)
        from qhw import circuits

        # Its template, which the old schema did not keep, is the paper's map of its width.
        assert circuits.to_qasm3(feature_maps.template_of(old)) == circuits.to_qasm3(circuits.feature_map(5)) == old.template_qasm3
    finally:
        store.close()


def test_a_damaged_sqlite_file_is_named_damaged_whichever_way_sqlite_finds_it(tmp_path):
    """Cut short inside its last table page, SQLite's integrity check lists
    what is wrong; cut to half, SQLite cannot even run the check. Both are
    one error saying the file is damaged, nothing changed."""
    from qhw.errors import StoreError
    from qhw.store import Store
    from qhw.store.database import Database

    path = tmp_path / "full.db"
    Store(f"sqlite:///{path}").close()  # a qhw database, then rows to its end (another program's table: filler)
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        connection.executemany("INSERT INTO t (v) VALUES (?)", [(f"row {i:06d}" * 4,) for i in range(20_000)])
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file itself (a qhw database is in WAL mode)
    connection.close()
    data = path.read_bytes()
    for name, damaged, said in (("cut.db", data[:-1000], "SQLite's integrity check: "), ("half.db", data[: len(data) // 2], "SQLite: ")):
        (tmp_path / name).write_bytes(damaged)
        database = Database(f"sqlite:///{tmp_path / name}", check_schema=False)  # (the check alone)
        try:
            with pytest.raises(StoreError, match="is damaged") as raised:
                database.check_integrity()
            assert said in str(raised.value) and "restore it from a backup" in str(raised.value)
        finally:
            database.close()
