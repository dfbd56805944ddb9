"""Shared by adapters built on Qiskit primitives: status mapping and job lookup."""

from __future__ import annotations

from typing import Any

import numpy as np

from qhw.backend import JobStatus
from qhw.circuits import REGISTER_NAME, counts_from_bitarray
from qhw.errors import JobFailedError, JobNotFoundError
from qhw.records import JobState

#: Qiskit's JobStatus names (and Runtime's status strings) -> qhw states.
QISKIT_TO_STATE = {
    "INITIALIZING": JobState.QUEUED,
    "QUEUED": JobState.QUEUED,
    "VALIDATING": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "DONE": JobState.DONE,
    "ERROR": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
}


def status_name(status: Any) -> str:
    """'DONE' from JobStatus.DONE or from the string 'DONE'."""
    return str(getattr(status, "name", status)).upper()


def job_status(job: Any) -> JobStatus:
    """Normalised status of a Qiskit primitive job, with the error text on failure."""
    state = QISKIT_TO_STATE.get(status_name(job.status()))
    if state is None:
        return JobStatus(JobState.RUNNING)
    if state is JobState.FAILED:
        return JobStatus(state, error=_error_text(job))
    return JobStatus(state)


def job_counts(job: Any) -> np.ndarray:
    """Canonical counts of the single pub a qhw job carries.

    Errors of ``job.result()`` pass through untouched: only the adapter can
    tell a network error (worth repeating) from the job's own failure.
    """
    pub_result = job.result()[0]
    bitarray = getattr(pub_result.data, REGISTER_NAME)
    return counts_from_bitarray(bitarray, bitarray.num_bits)


def local_job_counts(job: Any) -> np.ndarray:
    """Counts of a job that ran in this process, where any error is the job's own."""
    try:
        return job_counts(job)
    except Exception as err:  # the primitive re-raises whatever failed the job
        raise JobFailedError(f"job {job.job_id()} failed: {err}") from err


def _error_text(job: Any) -> str:
    message = getattr(job, "error_message", None)
    if callable(message):
        text = message()
        if text:
            return str(text)
    try:
        job.result()
    except Exception as err:
        return f"{type(err).__name__}: {err}"
    return "the provider reported an error without a message"


class InProcessJobs:
    """Jobs of local simulators: they exist only in the process that started them."""

    def __init__(self, backend_name: str) -> None:
        self._backend_name = backend_name
        self._jobs: dict[str, Any] = {}

    def add(self, job: Any) -> str:
        job_id = job.job_id()
        self._jobs[job_id] = job
        return job_id

    def get(self, job_id: str) -> Any:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise JobNotFoundError(
                f"{self._backend_name} job {job_id} ran in a process that has ended; it must be resubmitted"
            ) from None
