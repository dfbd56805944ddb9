"""Tiny jobs on real accounts. They run only when credentials are in the
environment (QHW_LIVE_IBM_BACKEND with a saved account or QISKIT_IBM_TOKEN;
QHW_LIVE_BRAKET_BACKEND with AWS credentials) and are reported as skipped
otherwise. Each submits 2 samples x 100 shots under --max-cost 5."""

from __future__ import annotations

import os

import pytest

from qhw import runs
from qhw.backends import braket as braket_adapter
from qhw.backends import ibm as ibm_adapter
from qhw.jobstates import JobState

pytestmark = pytest.mark.live


def _live_run(store, backend_name: str) -> None:
    run = runs.submit(
        store, backend_name=backend_name, split="test", limit=2, shots=100, max_cost=5.0, approve=lambda estimate: True
    ).run
    result = runs.collect(store, run_id=run.id, wait=True, interval=15, timeout=3600)
    assert result.pending_jobs == 0, "the provider did not finish within an hour"
    assert [j.state for j in store.ledger.jobs(run.id)] == [JobState.COLLECTED]
    stored = store.results.run_counts(run.id)
    assert stored.counts.shape == (2, 1, 32) and (stored.counts.sum(axis=2) == 100).all()


@pytest.mark.skipif(
    not os.environ.get("QHW_LIVE_IBM_BACKEND") or not ibm_adapter.credentials_configured(),
    reason="needs QHW_LIVE_IBM_BACKEND and IBM Quantum credentials",
)
def test_a_tiny_job_on_ibm_quantum(featured_store):
    _live_run(featured_store, os.environ["QHW_LIVE_IBM_BACKEND"])


@pytest.mark.skipif(
    not os.environ.get("QHW_LIVE_BRAKET_BACKEND") or not braket_adapter.credentials_configured(),
    reason="needs QHW_LIVE_BRAKET_BACKEND and AWS credentials",
)
def test_a_tiny_task_on_amazon_braket(featured_store):
    _live_run(featured_store, os.environ["QHW_LIVE_BRAKET_BACKEND"])
