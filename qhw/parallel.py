"""Local simulation on every core, or on a Dask cluster: one seam.

A run's local jobs (simulators and emulations, whose jobs live in the process
that runs them) go to an executor with the ``concurrent.futures`` interface:
a process pool of this machine by default, or an existing Dask cluster
(``--scheduler tcp://HOST:PORT`` or ``QHW_DASK_SCHEDULER``), through
``distributed.Client.get_executor()``; qhw runs no scheduler of its own.
A cluster that cannot run a job is refused before the run is written: its
scheduler must answer, and show at least one worker, within
``QHW_DASK_TIMEOUT`` seconds (default 10). What
crosses to a worker is one frozen :class:`LocalJob` (the run's circuit as QPY,
one job's parameter rows, its shots and its seed, the artifact store's URL);
what comes back is a counts array. The submitting
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
from dataclasses import dataclass

import numpy as np

from qhw import settings
from qhw.circuits import PerCircuit
from qhw.errors import ConfigError, ParameterError
from qhw.noise import NoiseSpec


def default_workers() -> int:
    """Every core of this machine."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@contextmanager
def executor(
    *, workers: int | None = None, scheduler: str | None = None, jobs: int = 2, preload: tuple[str, ...] = (), isolate: bool = False,
) -> Iterator[Executor | None]:
    """Where local jobs run: a Dask cluster, a pool of ``workers`` processes,
    or None (this process) for one worker or one job, unless ``isolate``
    (jobs that hold the interpreter: a pool even of one, see
    LocalBackend.needs_own_process). ``preload`` names the modules the pool's
    workers import once, before they fork.

    Raises:
        ConfigError: a malformed scheduler address, a scheduler that cannot be
            reached, does not answer or has no worker within QHW_DASK_TIMEOUT
            seconds, or Dask is not installed.
    """
    scheduler = settings.dask_scheduler(scheduler)
    if scheduler:
        client = connect(scheduler, settings.dask_timeout())
        try:
            yield client.get_executor()
        finally:
            client.close()
        return
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise ParameterError("workers", f"must be at least 1, got {workers}")
    if (workers == 1 or jobs < 2) and not isolate:
        yield None
        return
    yield from _process_pool(max(1, min(workers, jobs)), preload)


def connect(address: str, timeout: float):
    """A Dask client of the scheduler at ``address`` that has a worker, within ``timeout`` seconds.

    Raises:
        ConfigError: Dask is not installed; the scheduler refuses the
            connection, does not answer, or has no worker in time.
    """
    import threading

    try:
        from distributed import Client
    except ImportError as err:
        raise ParameterError("scheduler", "needs Dask: pip install 'qhw[dask]'") from err
    outcome: dict[str, object] = {}

    def start() -> None:
        try:
            outcome["client"] = Client(address, timeout=timeout)
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread below
            outcome["error"] = err

    # distributed.Client's own timeout does not bound a scheduler that accepts
    # the connection and never answers (measured: it waits for ever), so the
    # client starts in a thread of its own, given up after the timeout.
    starter = threading.Thread(target=start, name="qhw-dask-connect", daemon=True)
    starter.start()
    starter.join(timeout + 1.0)
    if starter.is_alive():
        raise ConfigError(f"the Dask scheduler at {address} did not answer within {timeout:g} s (QHW_DASK_TIMEOUT)")
    error = outcome.get("error")
    if isinstance(error, (OSError, TimeoutError)):
        raise ConfigError(f"cannot reach the Dask scheduler at {address} ({error})") from error
    if error is not None:
        raise error  # type: ignore[misc]
    client = outcome["client"]
    try:
        client.wait_for_workers(1, timeout=timeout)  # type: ignore[attr-defined]
    except (OSError, TimeoutError) as err:
        client.close()  # type: ignore[attr-defined]
        raise ConfigError(
            f"the Dask scheduler at {address} has no workers (waited {timeout:g} s, QHW_DASK_TIMEOUT); start one with "
            f"`dask worker {address}`"
        ) from err
    return client


def _process_pool(workers: int, preload: tuple[str, ...]) -> Iterator[Executor]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # forkserver: workers fork from a clean server process (this one may hold
    # threads: Qiskit's, the progress display's), with the simulators imported once.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["qhw.parallel", *preload])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=end_with, initargs=(os.getpid(),))
    for _ in range(workers):
        pool.submit(int)  # start the workers now, while this process prepares the run
    try:
        yield pool
    except BaseException:
        # Ctrl-C, or an error: what the workers are computing is not waited for.
        # A simulator in native code sees no signal until its job ends (minutes
        # for a reused circuit on Aer), and the pool would also run the calls
        # it had queued; what they have not returned is the next collect's.
        stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def stop_workers(pool) -> None:
    """End a process pool's workers now (SIGKILL: a worker deep in a
    simulator's native code would not run a Python handler for SIGTERM)."""
    # ProcessPoolExecutor offers no way to end its workers before Python 3.14
    # (terminate_workers); its _processes map is where they are until then.
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            process.kill()
        except (OSError, ValueError):  # already gone, or closed
            pass


def finished(futures) -> Iterator:
    """``futures`` as they finish, like concurrent.futures.as_completed, but
    waiting in short slices: a Ctrl-C is seen within a quarter of a second
    (a signal that lands on another thread leaves a main thread blocked in
    one long wait unaware of it until the wait ends)."""
    from concurrent.futures import FIRST_COMPLETED, wait

    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
        yield from done


def end_with(pid: int) -> None:
    """Make this worker process end when process ``pid`` (the qhw that started
    the pool) is gone, however it ended: SIGKILL, the out-of-memory killer, a
    CI timeout.

    A pool's workers would otherwise live for ever: each holds the write end of
    its own call queue, so it never reads an end of file there, and holds the
    forkserver's "alive" pipe, so the forkserver waits for it in turn. A
    watcher *process* forked now waits on pidfds of ``pid`` and of this worker
    (readable once each exits, immune to pids being reused) and SIGKILLs the
    worker when ``pid`` goes first. Not a thread of the worker: a simulator
    holding the GIL in native code (Aer, for minutes on a reused circuit)
    would keep a thread from running until its job ended. Where pidfds are
    missing (not Linux), a thread polls the pid every second instead.
    """
    try:
        watched = os.pidfd_open(pid)
    except ProcessLookupError:
        os._exit(1)  # gone already
    except (AttributeError, OSError):
        watched = None
    if watched is not None:
        _fork_watcher(watched)
        return
    import threading

    def poll() -> None:
        import time

        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=poll, name="qhw-end-with-parent", daemon=True).start()


def _fork_watcher(parent: int) -> None:
    """A child process that SIGKILLs this one once the pidfd ``parent`` is
    readable, and ends by itself when this one does (see end_with)."""
    import select
    import signal

    worker = os.getpid()
    itself = os.pidfd_open(worker)
    if os.fork() == 0:
        try:
            # Nothing of the worker's held open here (its queues, the forkserver's pipe): only the two pidfds.
            keep = {parent, itself}
            for fd in [int(name) for name in os.listdir("/proc/self/fd")]:
                if fd > 2 and fd not in keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            readable, _, _ = select.select([parent, itself], [], [])
            if parent in readable and itself not in readable:
                os.kill(worker, signal.SIGKILL)
        finally:
            os._exit(0)
    os.close(itself)
    os.close(parent)


@dataclass(frozen=True)
class LocalJob:
    """All a worker process or a Dask worker needs for one local job, and all
    that crosses to it (picklable, as small as the job): the run's backend by
    name, its circuit as QPY, the job's parameter rows, shots and seed, and
    the artifact store where a backend named by a stored document (an
    emulator of a Braket device document) is read."""

    backend: str
    backend_seed: int | None
    qpy: bytes
    layout: tuple[int, ...]
    copies: int
    reuse: int
    engine: str | None
    noise: NoiseSpec | None  # a job's, its drift drawn
    values: np.ndarray
    shots: int
    seed: int | None
    artifacts_url: str


def run_job(task: LocalJob):
    """Run one local job in whatever process this is (a worker), on one thread:
    (where it ran, its JobResult). Where: the Dask worker's address, or this
    process's pid and host; stored as the job's local id, so that a run shows
    which worker ran each of its jobs.

    The backend and the circuit are built once per process and kept.
    """
    from qhw.backend import Executable

    simulator = _backend(task.backend, task.backend_seed, task.artifacts_url)
    simulator.use_threads(1)
    circuit = _circuit(hashlib.sha1(task.qpy).hexdigest(), task.qpy)
    executable = Executable(
        circuit=circuit, layout=tuple(task.layout), copies=task.copies, reuse=task.reuse, engine=task.engine, noise=task.noise
    )
    return where_this_runs(), run_local_job(simulator, executable, task.values, task.shots, task.seed)


def where_this_runs() -> str:
    """A Dask worker's address (``dask:tcp://...``), else ``pid:<pid>@<host>``."""
    import socket
    import sys

    # A Dask worker has imported distributed; elsewhere, importing it only to
    # ask would cost more than a local job.
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            return f"dask:{distributed.get_worker().address}"
        except ValueError:  # distributed is loaded, but this is not one of its workers
            pass
    return f"pid:{os.getpid()}@{socket.gethostname()}"


#: Slot s of a packed job is simulated with the job's seed plus s times this
#: (more than any run's executions), so no two slots share a seed.
COPY_SEED_STRIDE = 2**24


def run_local_job(simulator, executable, values: np.ndarray, shots: int, seed: int | None):
    """A local simulator's job, run here: its JobResult.

    A packed executable is never simulated whole (no state of every copy's
    qubits at once is ever made): on an ideal simulator each slot (a copy at
    a position) runs alone, as the template it is (a reset before a position
    makes it start from |0...0>, so alone it has the distribution it has in
    the reused circuit); on an emulated device each copy runs alone at every
    position, on its own physical qubits, so that its noise, its mid-circuit
    measurements' and resets' included, is its own qubits' (a device model
    without crosstalk gives the same outcomes as the packed circuit). Counts
    are interleaved as a provider's would be (slot s of execution e in row
    e * slots + s).
    """
    from qhw.backend import JobResult
    from qhw.circuits import copy_columns

    if executable.slots == 1 or simulator.runs_copies_in_one_job:
        return simulator.run(executable, values, shots, seed=seed)
    ideal = simulator.kind == "simulator"
    counts = np.zeros((len(values), executable.slots, 2**executable.width), dtype=np.int64)
    failed: dict[int, str] = {}
    for copy in range(executable.copies):
        for position in range(executable.reuse) if ideal else (None,):
            part = part_executable(simulator, executable, copy, position)
            first = copy if position is None else position * executable.copies + copy
            part_seed = None if seed is None else seed + first * COPY_SEED_STRIDE
            rows = np.ascontiguousarray(values[:, copy_columns(executable.circuit, part.circuit)])
            result = simulator.run(part, rows, shots, seed=part_seed)
            # A copy at every position gives each execution's positions in turn (rows e * reuse + p).
            by_position = result.counts.reshape(len(values), part.slots, -1)
            for p in range(part.slots):
                counts[:, (p if position is None else position) * executable.copies + copy] = by_position[:, p]
            for execution, reason in result.failed.items():
                failed.setdefault(execution, f"copy {copy}: {reason}")
    return JobResult(counts.reshape(len(values) * executable.slots, -1), failed)




def part_executable(simulator, executable, copy: int, position: int | None = None):
    """A part of a packed executable as an executable of its own, made once
    per process: on an emulated device, copy ``copy`` at every position, its
    instructions on the device's qubits (compiled already: its noise is the
    copy's own qubits'); on an ideal simulator, which has no physical qubits,
    copy ``copy`` at ``position`` alone, compiled for the simulator."""
    from qhw.circuits import copy_circuit, position_circuit

    def made():
        if position is None:
            return executable.copy(copy)
        alone = copy_circuit(executable.circuit, copy, copies=executable.copies, reuse=executable.reuse, compact=True)
        return simulator.transpile(position_circuit(alone, position) if executable.reuse > 1 else alone, seed=0)

    # The simulator itself in the key (not its id): kept alive with the entry, as the circuit is;
    # the noise too (a job's drift makes its own).
    return _parts.get(executable.circuit, made, simulator, copy, position, executable.noise)


_parts: PerCircuit = PerCircuit(size=256)  # a part for every copy and position of a run's circuit


@functools.lru_cache(maxsize=8)
def _backend(name: str, seed: int | None, artifacts_url: str):
    from qhw.backend import get_backend
    from qhw.store.artifacts import ArtifactStore

    return get_backend(name, seed=seed, artifacts=ArtifactStore(artifacts_url))


_circuits: dict[str, object] = {}


def _circuit(digest: str, qpy: bytes):
    if digest not in _circuits:
        from qhw.circuits import from_qpy

        _circuits.clear()  # one run at a time per worker
        _circuits[digest] = from_qpy(qpy)
    return _circuits[digest]
