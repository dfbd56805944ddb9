"""A stateful fake provider at the client boundary, for the remote code paths.

Its "service" (SERVICE) outlives any adapter instance, like a real provider's
job store: a new adapter created from the database alone finds every job
again by id. Jobs step one state per status call. The shots themselves are
real: Aer samples them at submission.
"""

from __future__ import annotations

import itertools
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np

from qhw.backend import BackendLimits, DeviceProfile, JobResult, JobStatus
from qhw.backends.aer import AerBackend
from qhw.errors import BackendError, JobNotFoundError
from qhw.jobstates import JobState

NAMES = ("remote_sim", "remote_failing", "remote_rejecting")
_ids = itertools.count(1)


@dataclass
class _ServiceJob:
    steps: list[JobState]
    counts: np.ndarray
    error: str | None = None
    tags: list[str] = field(default_factory=list)
    polls: int = 0
    cancelled: bool = False


SERVICE: dict[str, _ServiceJob] = {}


def backend_names() -> list[str]:
    return list(NAMES)


def create(name: str, *, seed: int | None = None, artifacts=None):
    return RemoteLikeBackend(name, seed=seed) if name in NAMES else None


class RemoteLikeBackend(AerBackend):
    """Free, like a provider's test device, so it needs no cost approval."""

    provider = "fake-remote"
    kind = "hardware"
    description = "a provider's free test device (faked)"
    is_local = False
    listing_grace_seconds = 0.0
    takes_device_mitigation = False

    def __init__(self, name: str, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self.name = name

    def profile(self, *, offline: bool = False, document: str | None = None) -> DeviceProfile:
        return DeviceProfile(self.name, self.num_qubits, BackendLimits(max_shots=10_000, max_executions_per_job=100_000), live=not offline)

    def batch(self, n_jobs: int):
        return nullcontext()

    def usage(self, job_id: str):
        from qhw.records import ProviderUsage

        return ProviderUsage()

    def shot_timing(self, profile, template, reuse=1, rep_delay=None):
        return None

    def estimate_cost(self, profile, job_sizes, shots, prices, timing=None):
        return None  # free, like a provider's test device

    def job_cost(self, job, prices) -> float:
        return 0.0

    def allowance(self):
        return None

    def submit(
        self, executable, parameter_values, shots, tags, *, seed=None, idempotency_key=None, rep_delay=None, device_mitigation=None
    ) -> str:
        if self.name == "remote_rejecting":
            raise BackendError("device is in maintenance until 14:00 UTC")
        counts = self.run(executable, parameter_values, shots, seed=seed).counts
        job_id = f"remote-{next(_ids)}"
        if self.name == "remote_failing":
            SERVICE[job_id] = _ServiceJob(
                [JobState.QUEUED, JobState.RUNNING, JobState.FAILED],
                counts,
                error="readout calibration of qubit 3 out of range",
                tags=list(tags),
            )
        else:
            SERVICE[job_id] = _ServiceJob([JobState.QUEUED, JobState.RUNNING, JobState.DONE], counts, tags=list(tags))
        return job_id

    def find_job(self, idempotency_key, since):
        tag = f"qhw-key={idempotency_key}"
        return next((job_id for job_id, job in SERVICE.items() if tag in job.tags), None)

    def status(self, job_id: str) -> JobStatus:
        job = self._service_job(job_id)
        if job.cancelled:
            return JobStatus(JobState.CANCELLED)
        state = job.steps[min(job.polls, len(job.steps) - 1)]
        job.polls += 1
        return JobStatus(state, error=job.error if state is JobState.FAILED else None)

    def result(self, job_id: str, *, executable, executions: int, shots: int) -> JobResult:
        return JobResult(self._service_job(job_id).counts)

    def cancel(self, job_id: str) -> None:
        self._service_job(job_id).cancelled = True

    @staticmethod
    def _service_job(job_id: str) -> _ServiceJob:
        if job_id not in SERVICE:
            raise JobNotFoundError(f"no job {job_id}")
        return SERVICE[job_id]
