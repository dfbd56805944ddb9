"""Submitting, following and collecting runs against real local simulators and a stateful fake provider."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

import qhw.backend
import qhw.backends.aer as aer_adapter
import qhw.providers
from qhw import runs
from qhw.backend import BackendLimits
from qhw.backends.aer import AerBackend
from qhw.errors import ConfigError, NotFoundError, ParameterError, UnknownBackendError
from qhw.export import export_results
from qhw.jobstates import JobState
from qhw.store.arrays import load_arrays

from conftest import SMALL_TEST, SMALL_TRAIN, circuit_distribution


@pytest.fixture
def fake_provider(monkeypatch):
    monkeypatch.setattr(qhw.providers, "BUILTIN_PROVIDER_MODULES", (*qhw.providers.BUILTIN_PROVIDER_MODULES, "fake_provider"))
    import fake_provider

    fake_provider.SERVICE.clear()
    return fake_provider


def _result_rows(store) -> int:
    with store.transaction() as session:
        return session.execute(text("SELECT COUNT(*) FROM results")).scalar()


def test_local_submit_stores_every_sample_in_canonical_order(featured_store):
    result = runs.submit(featured_store, backend_name="aer_simulator", split="test", limit=20, shots=4000)
    assert result.samples == 20 and all(j.state is JobState.COLLECTED for j in result.jobs)
    stored = featured_store.results.run_counts(result.run.id)
    angles = load_arrays(featured_store.artifacts, featured_store.catalogue.feature_set(1)).angles_test[stored.sample_index]
    measured = stored.counts[:, 0, :] / 4000
    distance = 0.5 * np.abs(measured - circuit_distribution(angles)).sum(axis=1)
    assert (distance < 0.06).all(), distance
    assert set(stored.splits) == {"test"}


def test_a_noisy_device_run_maps_results_back_through_its_layout(featured_store):
    result = runs.submit(featured_store, backend_name="fake_lima", split="test", limit=10, shots=4000)
    assert result.run.layout == (4, 3, 2, 1, 0)  # logical qubit 0 ran on physical qubit 4
    stored = featured_store.results.run_counts(result.run.id)
    angles = load_arrays(featured_store.artifacts, featured_store.catalogue.feature_set(1)).angles_test[stored.sample_index]
    distance = 0.5 * np.abs(stored.counts[:, 0, :] / 4000 - circuit_distribution(angles)).sum(axis=1)
    assert np.median(distance) < 0.15, distance


def test_samples_are_split_into_jobs_by_the_backend_limits(featured_store, monkeypatch):
    monkeypatch.setattr(aer_adapter, "LIMITS", BackendLimits(max_shots=1000, max_circuits_per_job=64))
    result = runs.submit(featured_store, backend_name="aer_simulator", split="all", shots=100)
    assert result.samples == SMALL_TRAIN + SMALL_TEST
    assert [j.executions for j in result.jobs] == [64] * 6 + [16]
    assert runs.collect(featured_store).samples == SMALL_TRAIN + SMALL_TEST


def test_collecting_twice_stores_each_sample_once(featured_store):
    runs.submit(featured_store, backend_name="aer_simulator", split="test", shots=50)
    rows = _result_rows(featured_store)
    first, second = runs.collect(featured_store), runs.collect(featured_store)
    assert first.samples == second.samples == SMALL_TEST
    assert _result_rows(featured_store) == rows == SMALL_TEST


def test_a_crash_before_the_provider_answered_is_resubmitted_by_collect(featured_store, monkeypatch):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(AerBackend, "run", crash)
        with pytest.raises(KeyboardInterrupt):
            runs.submit(featured_store, backend_name="aer_simulator", split="test", shots=50)
    (job,) = featured_store.ledger.jobs()
    assert job.state is JobState.PENDING and job.provider_job_id is None
    result = runs.collect(featured_store)
    assert result.samples == SMALL_TEST and result.pending_jobs == 0
    assert featured_store.ledger.jobs()[0].state is JobState.COLLECTED


def test_a_local_job_interrupted_before_its_counts_were_stored_is_rerun(featured_store, monkeypatch):
    from qhw.worker import RunWorker

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt  # the simulator ran; the process "ends" before the commit

    with monkeypatch.context() as patch:
        patch.setattr(RunWorker, "_store_counts", interrupted)
        with pytest.raises(KeyboardInterrupt):
            runs.submit(featured_store, backend_name="aer_simulator", split="test", shots=50)
    (job,) = featured_store.ledger.jobs()
    assert job.state is JobState.PENDING and job.claimed_by is None  # the claim was given back
    assert runs.collect(featured_store).samples == SMALL_TEST
    (job,) = featured_store.ledger.jobs()
    assert job.state is JobState.COLLECTED and _result_rows(featured_store) == SMALL_TEST


def test_remote_jobs_step_through_states_and_survive_a_restart(featured_store, fake_provider):
    submitted = runs.submit(featured_store, backend_name="remote_sim", split="test", limit=30, shots=100)
    (job,) = submitted.jobs
    assert job.state is JobState.QUEUED and job.provider_job_id.startswith("remote-")
    assert fake_provider.SERVICE[job.provider_job_id].tags == [
        f"qhw-run={submitted.run.id}", f"qhw-job={job.id}", f"qhw-key={job.idempotency_key}"
    ]
    seen = []
    for _ in range(4):  # every collect builds new adapters from the database alone
        result = runs.collect(featured_store)
        seen.append(featured_store.ledger.jobs()[0].state)
    assert seen == [JobState.QUEUED, JobState.RUNNING, JobState.COLLECTED, JobState.COLLECTED]
    assert result.samples == 30 and result.pending_jobs == 0
    assert _result_rows(featured_store) == 30


def test_collect_wait_polls_until_done(featured_store, fake_provider):
    runs.submit(featured_store, backend_name="remote_sim", split="test", limit=10, shots=100)
    result = runs.collect(featured_store, wait=True, interval=0.01)
    assert result.pending_jobs == 0 and result.samples == 10


def test_a_failed_job_keeps_the_providers_reason(featured_store, fake_provider):
    runs.submit(featured_store, backend_name="remote_failing", split="test", limit=10, shots=100)
    result = runs.collect(featured_store, wait=True, interval=0.01)
    (job,) = featured_store.ledger.jobs()
    assert job.state is JobState.FAILED
    assert "readout calibration of qubit 3" in job.error
    assert result.failed_jobs == 1 and result.samples == 0


def test_a_rejected_submission_is_recorded_with_the_reason(featured_store, fake_provider):
    result = runs.submit(featured_store, backend_name="remote_rejecting", split="test", limit=10, shots=100)
    (job,) = result.jobs
    assert job.state is JobState.FAILED and "maintenance until 14:00" in job.error


def test_the_job_row_exists_before_the_provider_is_called(featured_store, monkeypatch):
    seen = []
    real_run = AerBackend.run

    def spy(self, *args, **kwargs):
        seen.extend((j.state, j.provider_job_id) for j in featured_store.ledger.jobs())
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(AerBackend, "run", spy)
    runs.submit(featured_store, backend_name="aer_simulator", split="test", limit=10, shots=10)
    assert seen == [(JobState.PENDING, None)]


@pytest.mark.parametrize(
    "options, error, message",
    [
        (dict(backend_name="aer_simulator", shots=0), ParameterError, "shots must be a positive integer, got 0"),
        (dict(backend_name="aer_simulator", shots=2_000_000), ParameterError, "shots must be between 1 and 1000000"),
        (dict(backend_name="aer_simulator", seed=-1), ParameterError, "seed must be an integer from 0 to 4294967295"),
        (dict(backend_name="ionq_forte", max_cost=float("nan")), ParameterError, "max_cost must be a finite amount"),
        (dict(backend_name="fake_manila", shots=200_000), ParameterError, "shots must be between 1 and 100000"),
        (dict(backend_name="aer_simulator", split="test", limit=SMALL_TEST + 1), ConfigError, "exceeds the 100 test"),
        (dict(backend_name="aer_simulator", feature_set_id=9), NotFoundError, "no feature set with id 9"),
        (dict(backend_name="quantinuum_h2"), UnknownBackendError, "`qhw backends` lists them"),
        (dict(backend_name="aer_simulator", split="validation"), ParameterError, "split must be one of"),
    ],
)
def test_bad_submissions_are_refused_before_anything_is_written(featured_store, options, error, message):
    with pytest.raises(error, match=message):
        runs.submit(featured_store, **options)
    assert featured_store.ledger.runs() == [] and featured_store.ledger.jobs() == []


def test_export_writes_the_documented_keys(featured_store, tmp_path):
    run = runs.submit(featured_store, backend_name="aer_simulator", split="all", limit=20, shots=64).run
    export = export_results(featured_store, run.id, tmp_path / "run.npz")
    assert (export.samples, export.run_samples, export.unfinished_jobs) == (40, 40, 0)
    out = export.path
    with np.load(out) as data:
        assert set(data.files) == {
            "counts", "shots", "circuit_shots", "parameters", "template", "feature_map", "labels", "split", "sample_index", "backend"
        }
        assert data["counts"].shape == (40, 1, 32) and data["parameters"].shape == (40, 1, 5)
        assert str(data["feature_map"]) == "paper" and "ry(_theta_4_) q[4];" in str(data["template"])
        assert (data["counts"].sum(axis=2) == 64).all()
        assert data["shots"].tolist() == [64] * 40 and data["circuit_shots"].shape == (40, 1)
        assert str(data["backend"]) == "aer_simulator"
        assert sorted(set(data["split"])) == ["test", "train"]
        arrays = load_arrays(featured_store.artifacts, featured_store.catalogue.feature_set(1))
        for split, index, label in zip(data["split"], data["sample_index"], data["labels"], strict=True):
            assert arrays.labels(str(split))[index] == label
