"""Local simulation on several processes and on a Dask cluster: the same
counts whatever the number of workers, and nothing lost when a worker dies."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import qhw.backends.aer as aer_adapter
from qhw import runs
from qhw.backend import BackendLimits
from qhw.backends.aer import AerBackend

from conftest import assert_ledger_sound

pytestmark = pytest.mark.slow


@pytest.fixture
def small_jobs(monkeypatch):
    """aer_simulator in jobs of 25 circuits: the 100 test samples make 4 jobs."""
    monkeypatch.setattr(aer_adapter, "LIMITS", BackendLimits(max_shots=100_000, max_circuits_per_job=25))


def _counts(store, run_id: int) -> np.ndarray:
    return store.results.run_counts(run_id).counts


def _where_jobs_ran(store, run_id: int) -> list[str]:
    """Where each job of a run ran, as its local id records it (qhw.parallel.where_this_runs)."""
    backend = store.ledger.run(run_id).backend  # (a backend's name may hold colons: braket_emulator:sha256:...)
    return [job.provider_job_id[len(backend) + 1 :] for job in store.ledger.jobs(run_id)]


def test_two_worker_processes_store_what_one_process_stores(featured_store, small_jobs):
    alone = runs.submit(featured_store, backend_name="aer_simulator", split="test", shots=512, workers=1).run
    pooled = runs.submit(featured_store, backend_name="aer_simulator", split="test", shots=512, workers=2).run
    assert len(featured_store.ledger.jobs(pooled.id)) == 4
    assert np.array_equal(_counts(featured_store, alone.id), _counts(featured_store, pooled.id))
    assert_ledger_sound(featured_store, None, pooled.id)
    # Every job ran in a worker process, none in this one; and not all in one worker.
    places = _where_jobs_ran(featured_store, pooled.id)
    pids = [int(re.fullmatch(r"pid:(\d+)@.+", where).group(1)) for where in places]
    assert os.getpid() not in pids and len(set(pids)) == 2, places
    # The run on one process ran every job here.
    assert set(_pids(_where_jobs_ran(featured_store, alone.id))) == {os.getpid()}


@pytest.fixture
def cluster():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    yield cluster, client
    client.close()
    cluster.close()


def test_a_dask_cluster_stores_what_one_process_stores(featured_store, small_jobs, cluster):
    local, client = cluster
    alone = runs.submit(featured_store, backend_name="fake_manila", split="test", shots=256, workers=1).run
    clustered = runs.submit(featured_store, backend_name="fake_manila", split="test", shots=256, scheduler=local.scheduler_address).run
    assert np.array_equal(_counts(featured_store, alone.id), _counts(featured_store, clustered.id))
    assert_ledger_sound(featured_store, None, clustered.id)
    # Every job ran on one of the cluster's workers.
    workers = {f"dask:{address}" for address in client.scheduler_info()["workers"]}
    places = _where_jobs_ran(featured_store, clustered.id)
    assert places and set(places) <= workers, (places, workers)


def test_a_run_whose_worker_dies_mid_job_still_completes(featured_store, cluster):
    """A worker is SIGKILLed while it runs a job: Dask runs the job again
    elsewhere, and every sample is stored once, as a run on one process stores it."""
    local, client = cluster
    client.run(lambda: None)  # both workers up
    pids = client.run(os.getpid)
    killed: list[int] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for address, keys in client.processing().items():
                if keys:
                    os.kill(pids[address], signal.SIGKILL)
                    killed.append(pids[address])
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    # fake_manila: jobs of 256 circuits, about 0.7 s each; the 400 samples make 2 jobs.
    run = runs.submit(featured_store, backend_name="fake_manila", split="all", shots=256, scheduler=local.scheduler_address).run
    killer.join()
    assert killed, "no worker was busy to kill"
    assert_ledger_sound(featured_store, None, run.id)
    alone = runs.submit(featured_store, backend_name="fake_manila", split="all", shots=256, workers=1).run
    assert np.array_equal(_counts(featured_store, alone.id), _counts(featured_store, run.id))


def test_a_scheduler_and_a_worker_started_by_hand_run_a_run(featured_store, home, small_jobs):
    """`dask scheduler` and `dask worker`, as a user starts them, behind `qhw submit --scheduler`."""
    # `python -m` runs the `dask scheduler` and `dask worker` commands of this environment's Dask.
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"],
        stderr=subprocess.PIPE, text=True,
    )
    worker = None
    try:
        address = None
        for line in scheduler.stderr:
            found = re.search(r"Scheduler at:\s+(tcp://\S+)", line)
            if found:
                address = found.group(1)
                break
        assert address, "the scheduler did not say where it listens"
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
            stderr=subprocess.DEVNULL,
        )
        alone = runs.submit(featured_store, backend_name="aer_simulator", split="test", shots=512, workers=1).run
        clustered = runs.submit(featured_store, backend_name="aer_simulator", split="test", shots=512, scheduler=address).run
        assert np.array_equal(_counts(featured_store, alone.id), _counts(featured_store, clustered.id))
        places = _where_jobs_ran(featured_store, clustered.id)
        assert places and all(where.startswith("dask:tcp://") for where in places), places  # on the hand-started workers
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(timeout=60)


def test_a_dask_worker_with_no_shared_disk_runs_a_braket_emulator_run_from_the_store(featured_store, home, tmp_path, monkeypatch):
    """A `dask worker` with a home of its own and the device document gone
    from the disk once the run is submitted: the run is named by the
    document's object in the artifact store, which the worker reads."""
    from qhw.backends import braket

    from device_documents import write_garnet_like

    document = write_garnet_like(tmp_path / "garnet.json")
    real_shared = braket.BraketEmulator.shared

    def shared_then_gone(self, artifacts):
        named = real_shared(self, artifacts)
        named._load_device()  # this process has read it; then it is gone from this disk
        document.unlink()
        return named

    monkeypatch.setattr(braket.BraketEmulator, "shared", shared_then_gone)
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"],
        stderr=subprocess.PIPE, text=True,
    )
    worker = None
    try:
        address = next(found.group(1) for line in scheduler.stderr if (found := re.search(r"Scheduler at:\s+(tcp://\S+)", line)))
        # A home of its own and no QHW_ARTIFACTS: the worker learns the store from each job.
        worker_env = {**os.environ, "QHW_HOME": str(tmp_path / "worker-home")}
        worker_env.pop("QHW_ARTIFACTS", None)
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
            stderr=subprocess.DEVNULL, env=worker_env, cwd=tmp_path,
        )
        run = runs.submit(featured_store, backend_name=f"braket_emulator:{document}", split="test", limit=6, shots=256, scheduler=address).run
        assert run.backend.startswith("braket_emulator:sha256:") and not document.exists()
        places = _where_jobs_ran(featured_store, run.id)
        assert places and all(where.startswith("dask:tcp://") for where in places), places
        assert featured_store.results.count_samples(run.id) == 6
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(timeout=60)


def test_an_unreachable_scheduler_is_one_line(featured_store):
    from click.testing import CliRunner

    from qhw.cli import main

    result = CliRunner().invoke(main, ["submit", "--backend", "aer_simulator", "--split", "test", "--limit", "10", "--scheduler", "tcp://127.0.0.1:1"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: cannot reach the Dask scheduler at tcp://127.0.0.1:1")


def test_qhw_dask_scheduler_sends_a_submit_to_the_cluster(featured_store, home, small_jobs, cluster):
    """docs/how-to/cluster.md: --scheduler, or QHW_DASK_SCHEDULER when it is not given."""
    from click.testing import CliRunner

    from qhw.cli import main

    local, client = cluster
    result = CliRunner().invoke(
        main, ["submit", "--backend", "fake_manila", "--split", "test", "--limit", "30", "--shots", "64", "--json"],
        env={"QHW_DASK_SCHEDULER": local.scheduler_address},
    )
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run"]
    workers = {f"dask:{address}" for address in client.scheduler_info()["workers"]}
    places = _where_jobs_ran(featured_store, run_id)
    assert places and set(places) <= workers, (places, workers)


def _pids(places: list[str]) -> list[int]:
    return [int(re.fullmatch(r"pid:(\d+)@.+", where).group(1)) for where in places]


def test_collect_and_retry_run_local_jobs_on_their_workers(featured_store, home, small_jobs, monkeypatch):
    """docs/how-to/cluster.md: --workers on `collect` (a local run cut off before its jobs ran)
    and on `retry` (a local run whose jobs failed): the jobs run in that many
    worker processes, none in the command's own."""
    from click.testing import CliRunner

    from qhw.cli import main
    from qhw.errors import JobFailedError
    from qhw.jobstates import JobState
    from qhw.worker import RunWorker

    def cut_off(self, job):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(RunWorker, "_run_here", cut_off)
        with pytest.raises(KeyboardInterrupt):
            runs.submit(featured_store, backend_name="aer_simulator", split="test", shots=64, workers=1)
    (cut,) = featured_store.ledger.runs()
    assert {job.state for job in featured_store.ledger.jobs(cut.id)} == {JobState.PENDING}
    result = CliRunner().invoke(main, ["collect", "--run", str(cut.id), "--workers", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert {job.state for job in featured_store.ledger.jobs(cut.id)} == {JobState.COLLECTED}
    pids = _pids(_where_jobs_ran(featured_store, cut.id))
    assert os.getpid() not in pids and len(set(pids)) == 2, pids

    def refuse(self, *args, **kwargs):
        raise JobFailedError("refused for the test")

    with monkeypatch.context() as patch:
        patch.setattr(AerBackend, "run", refuse)
        failed = runs.submit(featured_store, backend_name="aer_simulator", split="test", shots=64, workers=1).run
    assert {job.state for job in featured_store.ledger.jobs(failed.id)} == {JobState.FAILED}
    result = CliRunner().invoke(main, ["retry", "--run", str(failed.id), "--workers", "2", "--json"])
    assert result.exit_code == 0, result.output
    retried = [job for job in featured_store.ledger.jobs(failed.id) if job.state is JobState.COLLECTED]
    assert len(retried) == 4
    pids = _pids([job.provider_job_id.partition(":")[2] for job in retried])
    assert os.getpid() not in pids and len(set(pids)) == 2, pids


def test_what_is_made_from_a_circuit_is_made_once_and_never_given_for_another():
    import gc
    import weakref

    from qiskit import QuantumCircuit

    from qhw.circuits import PerCircuit

    cache: PerCircuit[str] = PerCircuit(size=2)
    made: list[str] = []

    def make(name: str):
        return lambda: made.append(name) or name

    first = QuantumCircuit(1)
    assert cache.get(first, make("first")) == cache.get(first, make("again")) == "first"
    assert cache.get(first, make("copy 1"), 1) == "copy 1"  # another key of the same circuit
    assert made == ["first", "copy 1"]
    # The entry keeps its circuit alive, so no other circuit can take its id meanwhile.
    kept = weakref.ref(first)
    del first
    gc.collect()
    assert kept() is not None
    # Past its size the cache starts again: nothing older than the run at hand is kept.
    second = QuantumCircuit(1)
    assert cache.get(second, make("second")) == "second"
    assert cache.get(kept(), make("remade")) == "remade"
