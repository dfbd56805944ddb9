"""Local simulation on every core, or on a Dask cluster: one seam.

A run's local jobs (simulators and emulations, whose jobs live in the process
that runs them) go to an executor with the ``concurrent.futures`` interface:
a process pool of this machine by default, or an existing Dask cluster
(``--scheduler tcp://HOST:PORT`` or ``QHW_DASK_SCHEDULER``), through
``distributed.Client.get_executor()``; qhw runs no scheduler of its own. What
crosses to a worker is the run's circuit as QPY, one job's parameter rows,
its shots and its seed; what comes back is a counts array. The submitting
process alone writes the ledger, so a worker that dies loses nothing: its job
is run again (Dask reschedules it; a broken pool is rebuilt).

Results do not depend on the number of workers: every job has its own seed
(the run's seed plus the job's first execution), whoever runs it.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager

import numpy as np

from qhw.errors import ConfigError

SCHEDULER_ENV = "QHW_DASK_SCHEDULER"
#: How long to wait for a Dask scheduler to answer.
CONNECT_SECONDS = 10


def default_workers() -> int:
    """Every core of this machine."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@contextmanager
def executor(
    *, workers: int | None = None, scheduler: str | None = None, jobs: int = 2, preload: tuple[str, ...] = ()
) -> Iterator[Executor | None]:
    """Where local jobs run: a Dask cluster, a pool of ``workers`` processes,
    or None (this process) for one worker or one job. ``preload`` names the
    modules the pool's workers import once, before they fork.

    Raises:
        ConfigError: the scheduler cannot be reached, or Dask is not installed.
    """
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV)
    if scheduler:
        try:
            from distributed import Client
        except ImportError as err:
            raise ConfigError("--scheduler needs Dask: pip install 'qhw[dask]'") from err
        try:
            client = Client(scheduler, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError) as err:
            raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({err})") from err
        try:
            yield client.get_executor()
        finally:
            client.close()
        return
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if workers == 1 or jobs < 2:
        yield None
        return
    yield from _process_pool(min(workers, jobs), preload)


def _process_pool(workers: int, preload: tuple[str, ...]) -> Iterator[Executor]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # forkserver: workers fork from a clean server process (this one may hold
    # threads: Qiskit's, the progress display's), with the simulators imported once.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["qhw.parallel", *preload])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    for _ in range(workers):
        pool.submit(int)  # start the workers now, while this process prepares the run
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_job(backend: str, backend_seed: int | None, qpy: bytes, layout: tuple[int, ...], values: np.ndarray, shots: int, seed: int | None):
    """Run one local job in whatever process this is (a worker), on one thread: its JobResult.

    The backend and the circuit are built once per process and kept.
    """
    from qhw.backend import Executable

    simulator = _backend(backend, backend_seed)
    simulator.use_threads(1)
    executable = Executable(circuit=_circuit(hashlib.sha1(qpy).hexdigest(), qpy), layout=tuple(layout))
    job_id = simulator.submit(executable, values, shots, [], seed=seed)
    return simulator.result(job_id, executable=executable, executions=len(values), shots=shots)


@functools.lru_cache(maxsize=8)
def _backend(name: str, seed: int | None):
    from qhw.backend import get_backend

    return get_backend(name, seed=seed)


_circuits: dict[str, object] = {}


def _circuit(digest: str, qpy: bytes):
    if digest not in _circuits:
        from qhw.circuits import from_qpy

        _circuits.clear()  # one run at a time per worker
        _circuits[digest] = from_qpy(qpy)
    return _circuits[digest]
