"""Runs: submit a feature set to a backend, follow its jobs, store their counts.

A job row is written (pending) before the provider is called and gets the
provider's id right after, so a crash in between leaves a pending row that
``collect`` resubmits. Local simulators finish during submit but step through
the same states and tables as remote devices.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from qhw import circuits
from qhw.backend import Backend, Executable, get_backend
from qhw.datasets import stratified_subset
from qhw.errors import BackendError, ConfigError, JobNotFoundError
from qhw.features import load_arrays
from qhw.pricing import CostEstimate
from qhw.progress import Progress, SilentProgress
from qhw.records import SPLIT_CODES, SPLIT_NAMES, UNFINISHED_STATES, JobRecord, JobState, RunRecord
from qhw.store import RunCircuit, Store

RUN_SPLITS = ("train", "test", "all")
LOCAL_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class SubmitResult:
    run: RunRecord
    jobs: list[JobRecord]

    @property
    def samples(self) -> int:
        return self.run.n_samples


@dataclass(frozen=True)
class CollectResult:
    samples: int  # samples stored so far (for the run, or all runs)
    pending_jobs: int  # jobs the provider still owes
    failed_jobs: int


def submit(
    store: Store,
    *,
    backend_name: str,
    feature_set_id: int | None = None,
    split: str = "all",
    shots: int = 1024,
    limit: int | None = None,
    seed: int | None = 0,
    max_cost: float | None = None,
    approve: Callable[[CostEstimate | None], bool] | None = None,
    mitigate: str | None = None,
    progress: Progress | None = None,
) -> SubmitResult:
    """Run the feature map for every selected sample of a feature set.

    Args:
        backend_name: a name from ``qhw backends``.
        feature_set_id: the feature set, or None for the newest.
        split: "train", "test" or "all".
        shots: shots per circuit.
        limit: a seeded stratified subset of this many samples per split.
        seed: seed of the subset, the transpiler and simulators.
        max_cost: refuse a paid submission whose estimate exceeds this (USD).
        approve: asked with the estimate before a paid submission; without it
            a paid backend is refused.
        mitigate: "readout" also runs the readout-calibration circuits (one
            more job of 2 executions on the same physical qubits).

    Returns:
        The run and its jobs. Every input, the price and the device's limits are
        checked before anything is written or submitted.

    Raises:
        UnknownBackendError, NotFoundError, ConfigError, BackendError.
    """
    progress = progress or SilentProgress()
    if split not in RUN_SPLITS:
        raise ConfigError(f"--split must be one of {', '.join(RUN_SPLITS)}, got {split!r}")
    backend = get_backend(backend_name, seed=seed)
    _check_shots(backend, shots)
    feature_set = store.feature_set(feature_set_id)
    arrays = load_arrays(feature_set)
    order = _sample_order(arrays, split, limit, seed or 0)
    if len(order) == 0:
        raise ConfigError(f"feature set {feature_set.id} has no {split} samples")
    if mitigate not in (None, "readout"):
        raise ConfigError(f"--mitigate must be 'readout', got {mitigate!r}")
    calibrations = len(circuits.calibration_rows()) if mitigate else 0
    k = feature_set.circuits_per_sample
    total = len(order) * k
    # The price is known from static tables: refuse before touching the network.
    estimate = backend.estimate_cost(total + calibrations, shots) if backend.is_paid else None
    _guard_cost(backend, estimate, max_cost, approve)
    backend.check(total + calibrations, shots)

    executable = backend.transpile(circuits.feature_map(), seed=seed)
    calibration = None
    if mitigate:
        # The calibration must read the very physical qubits the feature map uses.
        calibration = backend.transpile(circuits.readout_calibration(), seed=seed, initial_layout=executable.layout)
        if tuple(calibration.layout) != tuple(executable.layout):
            raise BackendError(
                f"{backend.name} placed the calibration on qubits {calibration.layout}, not {executable.layout}"
            )
    per_job = backend.limits.circuits_per_job(shots)
    ranges = [(start, min(start + per_job, total)) for start in range(0, total, per_job)]
    run, jobs = store.create_run(
        run_fields=dict(
            feature_set_id=feature_set.id,
            backend=backend.name,
            provider=backend.provider,
            split=split,
            shots=shots,
            num_qubits=circuits.QUBITS,
            circuits_per_sample=k,
            n_samples=len(order),
            seed=seed,
            cost_estimate_usd=None if estimate is None else estimate.usd,
            mitigation=mitigate,
        ),
        circuit=_run_circuit(executable, order, calibration),
        layout=executable.layout,
        job_ranges=ranges,
        calibration_executions=calibrations,
    )
    tracker = _RunTracker(store, run, backend, executable, arrays, order, calibration)
    with progress.task(f"{backend.name}: jobs", total=len(jobs)) as task, backend.batch(len(jobs)):
        for job in jobs:
            job = tracker.submit_job(job)
            if backend.is_local:
                tracker.finish_local(job)
            task.advance()
    return SubmitResult(run=run, jobs=store.jobs(run.id))


def collect(
    store: Store,
    *,
    run_id: int | None = None,
    wait: bool = False,
    interval: float = 5.0,
    timeout: float | None = None,
    progress: Progress | None = None,
) -> CollectResult:
    """Poll every unfinished job (of one run, or all) and store finished results.

    Collecting twice stores each sample once. A pending job without a provider
    id (a crash before the provider answered) is submitted again, as is a
    local-simulator job whose process has ended.
    """
    progress = progress or SilentProgress()
    if run_id is not None:
        store.run(run_id)  # raises NotFoundError for an unknown id
    trackers: dict[int, _RunTracker] = {}
    pending: list[JobRecord] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        unfinished = store.jobs(run_id, states=UNFINISHED_STATES)
        if not unfinished:
            break
        with progress.task("collecting jobs", total=len(unfinished)) as task:
            for job in unfinished:
                if job.run_id not in trackers:
                    trackers[job.run_id] = _RunTracker.load(store, job.run_id)
                tracker = trackers[job.run_id]
                job = tracker.refresh(job)
                if tracker.backend.is_local and job.state in UNFINISHED_STATES:
                    tracker.finish_local(job)
                task.advance()
        pending = store.jobs(run_id, states=UNFINISHED_STATES)
        if not wait or not pending or (deadline is not None and time.monotonic() >= deadline):
            break
        time.sleep(interval)
    failed = store.jobs(run_id, states=[JobState.FAILED])
    return CollectResult(samples=store.count_samples(run_id), pending_jobs=len(pending), failed_jobs=len(failed))


def export_results(store: Store, run_id: int | None, out: Path) -> Path:
    """Write a run's stored counts to an .npz for analysis elsewhere.

    Keys: counts (samples x circuits x 2**qubits, canonical order), shots,
    labels, split ('train'/'test'), sample_index (within its split), backend.
    """
    run = store.run(run_id)
    stored = store.run_counts(run.id)
    arrays = load_arrays(store.feature_set(run.feature_set_id))
    labels = np.array(
        [arrays.labels(split)[index] for split, index in zip(stored.splits, stored.sample_index)], dtype=np.int64
    )
    out = Path(out)
    if out.suffix != ".npz":
        raise ConfigError(f"--out must name an .npz file, got {out}")
    if not out.parent.is_dir():
        raise ConfigError(f"--out: folder {out.parent} does not exist")
    np.savez_compressed(
        out,
        counts=stored.counts,
        shots=np.int64(run.shots),
        labels=labels,
        split=stored.splits,
        sample_index=stored.sample_index,
        backend=np.str_(run.backend),
    )
    return out


def cancel_run(store: Store, run_id: int | None = None) -> list[JobRecord]:
    """Cancel a run's unfinished jobs at the provider; returns the jobs cancelled.

    A job the provider was never asked to run is simply marked cancelled.
    """
    run = store.run(run_id)
    unfinished = store.jobs(run.id, states=UNFINISHED_STATES)
    if not unfinished:
        return []
    backend = get_backend(run.backend, seed=run.seed)
    cancelled = []
    for job in unfinished:
        if job.provider_job_id is not None:
            try:
                backend.cancel(job.provider_job_id)
            except JobNotFoundError:
                pass  # a local job whose process ended: nothing left to stop
        cancelled.append(store.update_job(job.id, state=JobState.CANCELLED))
    return cancelled


def _guard_cost(
    backend: Backend,
    estimate: CostEstimate | None,
    max_cost: float | None,
    approve: Callable[[CostEstimate | None], bool] | None,
) -> None:
    if not backend.is_paid:
        return
    if max_cost is not None:
        if estimate is None:
            raise ConfigError(
                f"no price is known for {backend.name}, so --max-cost cannot be checked; "
                "add one to prices.toml (see the README); nothing was submitted"
            )
        if estimate.usd > max_cost:
            raise ConfigError(f"estimated cost {estimate} exceeds --max-cost ${max_cost:,.2f}; nothing was submitted")
    if approve is None or not approve(estimate):
        shown = estimate if estimate is not None else "unknown (no price for this device)"
        raise ConfigError(f"{backend.name} costs money (estimate: {shown}); not confirmed, nothing was submitted")


def _check_shots(backend: Backend, shots: int) -> None:
    limits = backend.limits
    if not limits.min_shots <= shots <= limits.max_shots:
        raise ConfigError(
            f"--shots must be between {limits.min_shots} and {limits.max_shots} on {backend.name}, got {shots}"
        )


def _sample_order(arrays, split: str, limit: int | None, seed: int) -> np.ndarray:
    """(n, 2) int32 rows of (split code, index within split), train before test."""
    parts = []
    for name in ("train", "test") if split == "all" else (split,):
        labels = arrays.labels(name)
        keep = stratified_subset(labels, limit, seed, "--limit", name)
        parts.append(np.column_stack([np.full(len(keep), SPLIT_CODES[name]), keep]))
    return np.concatenate(parts).astype(np.int32)


def _run_circuit(executable: Executable, order: np.ndarray, calibration: Executable | None) -> RunCircuit:
    return RunCircuit(
        qpy=circuits.to_qpy(executable.circuit),
        qasm3=circuits.to_qasm3(executable.circuit),
        sample_order=order,
        calibration_qpy=None if calibration is None else circuits.to_qpy(calibration.circuit),
    )


class _RunTracker:
    """Everything needed to (re)submit and collect the jobs of one run."""

    def __init__(
        self,
        store: Store,
        run: RunRecord,
        backend: Backend,
        executable: Executable,
        arrays,
        order,
        calibration: Executable | None = None,
    ) -> None:
        self.store = store
        self.run = run
        self.backend = backend
        self.executable = executable
        self.calibration = calibration
        angles = np.empty((len(order), arrays.angles_train.shape[1]))
        for code, name in SPLIT_NAMES.items():
            rows = order[:, 0] == code
            angles[rows] = arrays.angles(name)[order[rows, 1]]
        self.parameters = circuits.parameter_rows(angles, run.circuits_per_sample, executable.circuit)

    @classmethod
    def load(cls, store: Store, run_id: int) -> "_RunTracker":
        """Rebuild a tracker from the database alone (a later process)."""
        run = store.run(run_id)
        stored = store.run_circuit(run_id)
        backend = get_backend(run.backend, seed=run.seed)
        executable = Executable(circuit=circuits.from_qpy(stored.qpy), layout=run.layout)
        calibration = None
        if stored.calibration_qpy is not None:
            calibration = Executable(circuit=circuits.from_qpy(stored.calibration_qpy), layout=run.layout)
        arrays = load_arrays(store.feature_set(run.feature_set_id))
        return cls(store, run, backend, executable, arrays, stored.sample_order, calibration)

    def submit_job(self, job: JobRecord) -> JobRecord:
        tags = [f"qhw-run={self.run.id}", f"qhw-job={job.id}"]
        seed = None if self.run.seed is None else self.run.seed + job.execution_start
        if job.purpose == "calibration":
            seed = None if seed is None else seed + len(self.parameters)
            executable, values = self.calibration, circuits.calibration_rows(self.run.num_qubits)
        else:
            executable, values = self.executable, self.parameters[job.execution_start : job.execution_stop]
        try:
            provider_id = self.backend.submit(executable, values, self.run.shots, tags, seed=seed)
        except Exception as err:  # provider boundary: keep whatever the provider said
            return self.store.update_job(job.id, state=JobState.FAILED, error=f"{type(err).__name__}: {err}")
        return self.store.update_job(job.id, state=JobState.QUEUED, provider_job_id=provider_id)

    def refresh(self, job: JobRecord) -> JobRecord:
        """Move a job one step on from what the provider says now."""
        if job.provider_job_id is None:
            return self.submit_job(job)
        try:
            status = self.backend.status(job.provider_job_id)
        except JobNotFoundError as err:
            if self.backend.is_local:
                return self.submit_job(job)
            return self.store.update_job(job.id, state=JobState.FAILED, error=str(err))
        if status.state is JobState.DONE:
            try:
                counts = self.backend.result(job.provider_job_id)
            except Exception as err:  # provider boundary
                return self.store.update_job(job.id, state=JobState.FAILED, error=f"{type(err).__name__}: {err}")
            if job.purpose == "calibration":
                self.store.store_calibration(job, counts, self.run.shots)  # marks it collected
            else:
                usage = self.backend.usage(job.provider_job_id)
                self.store.store_results(job, counts, self.run.shots, quantum_seconds=usage)  # marks it collected
            return replace(job, state=JobState.COLLECTED)
        if status.state is not job.state or status.error:
            return self.store.update_job(job.id, state=status.state, error=status.error)
        return job

    def finish_local(self, job: JobRecord) -> JobRecord:
        """A local simulator's job completes in this process: follow it to the end."""
        while job.state in UNFINISHED_STATES:
            job = self.refresh(job)
            if job.state in (JobState.QUEUED, JobState.RUNNING):
                time.sleep(LOCAL_POLL_SECONDS)
        return job
