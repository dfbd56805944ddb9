"""Shared by adapters built on Qiskit primitives: status mapping and reading results."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from qhw.backend import JobResult, JobStatus
from qhw.circuits import copy_register, counts_from_bitarray
from qhw.errors import JobFailedError, ResultMappingError
from qhw.jobstates import JobState

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


def job_counts(job: Any, executable: Any, executions: int) -> JobResult:
    """Canonical counts of the single pub a qhw job carries, mapped by the
    primitive's own indices: pub 0, and row i of its data for parameter row i
    (SamplerV2 broadcasts a pub's parameter values, so its data has their shape).

    Errors of ``job.result()`` pass through untouched: only the adapter can
    tell a network error (worth repeating) from the job's own failure.

    Raises:
        ResultMappingError: the result does not have that shape.
    """
    return mapped_counts(job.result(), executable, executions)


def mapped_counts(result: Any, executable: Any, executions: int) -> JobResult:
    """A SamplerV2 result as canonical counts, a row a slot (a copy at a
    position: slot p * copies + c): of one pub, whose register ``meas<s>`` is
    slot s of a packed circuit (``meas`` alone, unpacked), or of one pub a
    copy, copy c alone with its positions in ``meas``, ``meas1``, ... (a packed
    job emulated copy by copy). Anything that does not fit what was submitted
    (pubs, registers, their widths, the rows) is refused."""
    copies, slots = executable.copies, executable.slots
    if len(result) == 1:
        places = [(result[0].data, copy_register(slot), slot) for slot in range(slots)]
    elif len(result) == copies:
        places = [
            (result[copy].data, copy_register(position), position * copies + copy)
            for copy in range(copies) for position in range(executable.reuse)
        ]
    else:
        raise ResultMappingError(f"the result holds {len(result)} pubs; qhw submitted {'one' if copies == 1 else f'1 or {copies}'}")
    by_slot: dict[int, np.ndarray] = {}
    for data, name, slot in places:
        bitarray = getattr(data, name, None)
        if bitarray is None:
            raise ResultMappingError(f"the result has no classical register {name!r}")
        register = next((r for r in executable.circuit.cregs if r.name == copy_register(slot)), None)
        bits = register.size if register is not None else bitarray.num_bits
        if bitarray.num_bits != bits:
            raise ResultMappingError(f"register {name!r} came back with {bitarray.num_bits} bits; the circuit measures {bits}")
        if tuple(bitarray.shape) != (executions,):
            raise ResultMappingError(f"the result has the shape {tuple(bitarray.shape)}; the job sent {executions} parameter rows")
        by_slot[slot] = counts_from_bitarray(bitarray, bits)
    return JobResult(np.stack([by_slot[slot] for slot in range(slots)], axis=1).reshape(executions * slots, -1))


def local_job_counts(job: Any, executable: Any, executions: int) -> JobResult:
    """Counts of a job that ran in this process, where any error is the job's own."""
    wait_interruptibly(job)
    try:
        return job_counts(job, executable, executions)
    except ResultMappingError:
        raise
    except Exception as err:  # the primitive re-raises whatever failed the job
        raise JobFailedError(f"job {job.job_id()} failed: {err}") from err


def wait_interruptibly(job: Any) -> None:
    """Wait for a job running in a thread of this process (Aer's, Runtime's
    local mode's) in short sleeps, not in ``job.result()``'s one blocking wait:
    a Ctrl-C reaches a process through whichever thread the kernel picks, and
    Python handles it only in the main thread, once it runs again; blocked on
    a lock, it would not until the simulation ended (measured: minutes of a
    reused circuit on Aer, which it runs shot by shot).

    A job is waited for until it is in a final state, not until it is
    ``done()``: a primitive job's ``done()`` is true only for a success, so a
    job that failed would be waited for for ever (a collect hung so in CI)."""
    finished = getattr(job, "in_final_state", None) or getattr(job, "done", None)
    if finished is None:
        return
    pause = 0.001
    while not finished():
        time.sleep(pause)
        pause = min(pause * 2, 0.05)  # a short job waits a millisecond or two; a long one is looked at 20 times a second


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
