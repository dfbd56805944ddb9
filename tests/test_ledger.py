"""The ledger's state machine, compare-and-set writes, histories and claims, on real SQLite files."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import text

from qhw.errors import StoreError
from qhw.jobstates import FINAL_STATES, TRANSITIONS, UNFINISHED_STATES, JobState, can_move
from qhw.records import JobPlan, RunSpec
from qhw.store import RunCircuit
from qhw.store.ledger import _process_start, holder_id, holder_is_gone, utcnow


def _run(store, n_jobs: int = 1, executions: int = 4):
    order = np.column_stack([np.zeros(executions * n_jobs), np.arange(executions * n_jobs)]).astype(np.int32)
    spec = RunSpec(
        feature_set_id=1, backend="aer_simulator", provider="aer", split="train", shots=10, num_qubits=5,
        circuits_per_sample=1, n_samples=executions * n_jobs, seed=0, layout=(0, 1, 2, 3, 4), cost_estimate_usd=None,
    )
    plans = [JobPlan(i * executions, (i + 1) * executions) for i in range(n_jobs)]
    return store.ledger.create_run(spec, RunCircuit(b"qpy", "OPENQASM 3.0;", order), plans)


def _force_state(store, job_id: int, state: JobState) -> None:
    with store.transaction() as session:
        session.execute(text("UPDATE jobs SET state = :s WHERE id = :id"), {"s": state.value, "id": job_id})


# --- the table ----------------------------------------------------------------------------------


def test_nothing_leaves_a_final_state_but_a_retry_of_a_failed_job():
    for old in FINAL_STATES:
        moves = {new for (start, new) in TRANSITIONS if start is old}
        assert moves == ({JobState.PENDING} if old is JobState.FAILED else set())


def test_docs_ledger_lists_exactly_the_transitions_of_the_code():
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "ledger.md").read_text()
    table = doc.split("| from | to | when |")[1].split("\n\n")[0]
    documented = set()
    for line in table.strip().splitlines()[1:]:
        old, new = (cell.strip() for cell in line.strip("|").split("|")[:2])
        documented |= {(JobState(o), JobState(n)) for o in old.split(", ") for n in new.split(", ")}
    assert documented == set(TRANSITIONS)


def test_progress_never_goes_backwards():
    order = [JobState.PENDING, JobState.QUEUED, JobState.RUNNING, JobState.DONE, JobState.COLLECTED]
    for i, old in enumerate(order):
        for new in order[:i]:
            assert not can_move(old, new), (old, new)


FORBIDDEN = [(old, new) for old in JobState for new in JobState if old is not new and not can_move(old, new)]


@pytest.mark.parametrize("old, new", FORBIDDEN, ids=[f"{o.value}-{n.value}" for o, n in FORBIDDEN])
def test_every_forbidden_move_is_a_logged_no_op(featured_store, caplog, old, new):
    _, (job,) = _run(featured_store)
    _force_state(featured_store, job.id, old)
    stale = featured_store.ledger.job(job.id)
    with caplog.at_level(logging.WARNING, logger="qhw.ledger"):
        assert featured_store.ledger.move(stale, new) is None
    assert featured_store.ledger.job(job.id).state is old
    assert f"{old.value} -> {new.value} is not an allowed transition" in caplog.text


def test_a_stale_process_cannot_move_a_collected_job_back(featured_store):
    _, (job,) = _run(featured_store)
    queued = featured_store.ledger.record_submission(job, "provider-1", note="submitted")
    counts = np.full((4, 32), 1, dtype=np.uint32)
    assert featured_store.results.store_counts(queued, counts, 32) == 4
    # A collector that read the job while it was queued now says "running".
    assert featured_store.ledger.move(queued, JobState.RUNNING) is None
    assert featured_store.ledger.job(job.id).state is JobState.COLLECTED
    # ... and its copy of the counts is not written again.
    assert featured_store.results.store_counts(queued, counts, 32) == 0
    assert featured_store.results.count_rows(job.run_id) == 4


def test_of_two_writers_from_the_same_state_one_wins(featured_store):
    _, (job,) = _run(featured_store)
    first = featured_store.ledger.record_submission(job, "provider-1", note="submitted")
    second = featured_store.ledger.record_submission(job, "provider-2", note="submitted")
    assert first is not None and second is None
    assert featured_store.ledger.job(job.id).provider_job_id == "provider-1"


def test_every_change_is_in_the_jobs_history(featured_store):
    _, (job,) = _run(featured_store)
    queued = featured_store.ledger.record_submission(job, "provider-1", note="submitted")
    running = featured_store.ledger.move(queued, JobState.RUNNING)
    failed = featured_store.ledger.move(running, JobState.FAILED, error="qubit 3 out of calibration")
    retried = featured_store.ledger.reset_for_retry(failed)
    history = [(e.old_state, e.new_state, e.provider_job_id) for e in featured_store.ledger.events(job.id)]
    assert history == [
        (None, JobState.PENDING, None),
        (JobState.PENDING, JobState.QUEUED, "provider-1"),
        (JobState.QUEUED, JobState.RUNNING, None),
        (JobState.RUNNING, JobState.FAILED, None),
        (JobState.FAILED, JobState.PENDING, None),
    ]
    assert "provider-1" in featured_store.ledger.events(job.id)[-1].note and "qubit 3" in featured_store.ledger.events(job.id)[-1].note
    assert retried.attempt == 2 and retried.idempotency_key != job.idempotency_key
    assert retried.provider_job_id is None and retried.submit_started_at is None and retried.error is None


def test_errors_are_counted_without_changing_the_state(featured_store):
    _, (job,) = _run(featured_store)
    queued = featured_store.ledger.record_submission(job, "provider-1", note="submitted")
    for attempt in (1, 2, 3):
        queued = featured_store.ledger.record_error(queued, f"429 Too Many Requests ({attempt})")
    assert (queued.state, queued.error_count, queued.error) == (JobState.QUEUED, 3, "429 Too Many Requests (3)")
    running = featured_store.ledger.move(queued, JobState.RUNNING)
    assert (running.error_count, running.error) == (0, None)


def test_idempotency_keys_are_unique_and_written_before_anything_else(featured_store):
    _, jobs = _run(featured_store, n_jobs=3)
    keys = [job.idempotency_key for job in jobs]
    assert len(set(keys)) == 3 and all(len(key) == 32 for key in keys)
    assert all(f"qhw-key={job.idempotency_key}" in job.tags for job in jobs)
    with pytest.raises(StoreError, match="UNIQUE constraint failed: jobs.idempotency_key"):
        with featured_store.transaction() as session:
            session.execute(text("UPDATE jobs SET idempotency_key = :k"), {"k": keys[0]})
    assert [job.idempotency_key for job in featured_store.ledger.jobs()] == keys  # the failed write left nothing


# --- claims ---------------------------------------------------------------------------------------


def test_a_claimed_job_is_worked_by_one_holder_at_a_time(featured_store):
    _, (job,) = _run(featured_store)
    mine, theirs = holder_id(), f"{os.uname().nodename}-elsewhere:1:1"
    assert featured_store.ledger.claim(job, theirs) is not None
    assert featured_store.ledger.claim(job, mine) is None  # live, on another machine, lease running
    featured_store.ledger.release([job.id], theirs)
    claimed = featured_store.ledger.claim(job, mine)
    assert claimed.claimed_by == mine and claimed.lease_until > utcnow()
    assert featured_store.ledger.claim(job, mine) is not None  # a holder may renew its own claim


def test_a_claim_lasts_qhw_lease_seconds(featured_store, monkeypatch):
    _, (job, other) = _run(featured_store, n_jobs=2)
    monkeypatch.setenv("QHW_LEASE_SECONDS", "1234")
    before = utcnow()
    claimed = featured_store.ledger.claim(job, holder_id())
    after = utcnow()
    assert before + timedelta(seconds=1234) <= claimed.lease_until <= after + timedelta(seconds=1234)
    monkeypatch.setenv("QHW_LEASE_SECONDS", "60")
    assert featured_store.ledger.claim(other, holder_id()).lease_until <= utcnow() + timedelta(seconds=60)


def test_a_lapsed_lease_can_be_taken_over(featured_store):
    _, (job,) = _run(featured_store)
    assert featured_store.ledger.claim(job, "other-host:1:1") is not None
    with featured_store.transaction() as session:
        session.execute(text("UPDATE jobs SET lease_until = :t"), {"t": utcnow() - timedelta(seconds=1)})
    assert featured_store.ledger.claim(job, holder_id()) is not None


def test_a_claim_of_a_dead_process_on_this_machine_lapses_at_once(featured_store):
    _, (job,) = _run(featured_store)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead_later = f"{socket.gethostname()}:{process.pid}:{_process_start(process.pid)}"
        assert featured_store.ledger.claim(job, dead_later) is not None
        assert not holder_is_gone(dead_later)
        assert featured_store.ledger.claim(job, holder_id()) is None  # alive: its claim holds
    finally:
        process.kill()
        process.wait()
    assert holder_is_gone(dead_later)
    assert featured_store.ledger.claim(job, holder_id()).claimed_by == holder_id()


def test_finished_jobs_cannot_be_claimed_and_final_moves_drop_the_claim(featured_store):
    _, (job,) = _run(featured_store)
    claimed = featured_store.ledger.claim(job, holder_id())
    cancelled = featured_store.ledger.move(claimed, JobState.CANCELLED)
    assert cancelled.claimed_by is None and cancelled.lease_until is None
    assert featured_store.ledger.claim(cancelled, holder_id()) is None
    assert JobState.CANCELLED not in UNFINISHED_STATES


def test_a_submission_starts_only_under_a_live_claim(featured_store):
    _, (job,) = _run(featured_store)
    assert featured_store.ledger.start_submission(job, holder_id()) is None  # not claimed
    claimed = featured_store.ledger.claim(job, holder_id())
    started = featured_store.ledger.start_submission(claimed, holder_id())
    assert started.submit_started_at is not None and started.may_exist_at_provider
