"""The job state machine: qhw's normalised job states and every move between them.

Each adapter maps its provider's states onto :class:`JobState` (one table per
adapter); the ledger makes only the moves in :data:`TRANSITIONS`, each a
compare-and-set, so no process, however stale, moves a job backwards. The
database's CHECK constraint on job states is built from the enum.
"""

from __future__ import annotations

import enum


class JobState(str, enum.Enum):
    """Normalised job states; each adapter maps its provider's states onto these."""

    PENDING = "pending"  # row written; the provider has no job for it (or we do not know its id yet)
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # finished at the provider, results not yet stored
    COLLECTED = "collected"  # results stored
    FAILED = "failed"
    CANCELLED = "cancelled"


_P, _Q, _R, _D, _C, _F, _X = (
    JobState.PENDING,
    JobState.QUEUED,
    JobState.RUNNING,
    JobState.DONE,
    JobState.COLLECTED,
    JobState.FAILED,
    JobState.CANCELLED,
)

#: Every state change qhw may make, with what makes it. The ledger refuses any
#: other (a logged no-op), so no process, however stale, moves a job backwards.
TRANSITIONS: dict[tuple[JobState, JobState], str] = {
    (_P, _Q): "the provider accepted the job, or a lookup found it there",
    (_P, _C): "a local simulator ran the job in this process and its counts were stored",
    (_P, _F): "the provider refused the job (or a local simulator failed it)",
    (_P, _X): "cancelled before the provider had it",
    (_Q, _R): "the provider started the job",
    (_Q, _D): "the provider finished the job",
    (_R, _D): "the provider finished the job",
    (_Q, _C): "counts fetched and stored in one step",
    (_R, _C): "counts fetched and stored in one step",
    (_D, _C): "counts stored",
    (_Q, _F): "the provider failed the job, or no longer knows it",
    (_R, _F): "the provider failed the job, or no longer knows it",
    (_D, _F): "the provider no longer knows a finished job whose counts were never fetched",
    (_Q, _X): "the provider confirmed the cancel",
    (_R, _X): "the provider confirmed the cancel",
    (_F, _P): "`qhw retry`: a fresh submission with a new idempotency key",
}

#: States in which the provider still owes us something.
UNFINISHED_STATES = frozenset({_P, _Q, _R, _D})
#: States nothing moves out of (but `qhw retry` out of failed).
FINAL_STATES = frozenset({_C, _F, _X})


def can_move(old: JobState, new: JobState) -> bool:
    """Whether the state machine allows ``old`` -> ``new``."""
    return (old, new) in TRANSITIONS
