"""Faults injected at the provider-client boundary of the fake clouds, in process.

Each test ends by checking the ledger's promises: every sample stored once,
no job sent twice to the provider, nothing failed that the provider did not
fail. Crashes of a real `qhw` process are in test_crashes.py.
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

import qhw.backends._braket_aws as braket_aws
import qhw.backends.ibm as ibm_adapter
from qhw import runs
from qhw.errors import ConfigError, CredentialsError, NotFoundError
from qhw.jobstates import JobState
from qhw.store.ledger import Ledger
from qhw.worker import RunWorker

from conftest import assert_ledger_sound

pytestmark = pytest.mark.usefixtures("fast_retries")

CLOUDS = {"ibm": "ibm_fez", "braket": "braket_sv1"}


def approve(*_args) -> bool:
    return True


def _die(*_args, **_kwargs):
    raise KeyboardInterrupt  # the process "ends" here


@pytest.fixture(params=sorted(CLOUDS))
def cloud(request):
    """Each test runs against both fake clouds."""
    return request.param, request.getfixturevalue(f"{request.param}_cloud"), CLOUDS[request.param]


def _submit(store, backend, limit=10, **options):
    return runs.submit(store, backend_name=backend, split="test", limit=limit, shots=100, approve=approve, **options)


def _collect_until_done(store, passes=6, **options):
    for _ in range(passes):
        result = runs.collect(store, **options)
        if result.pending_jobs == 0:
            break
    return result


# --- transient errors -------------------------------------------------------------------------


def test_a_result_that_keeps_timing_out_is_never_marked_failed(featured_store, cloud):
    _, fake, backend = cloud
    run = _submit(featured_store, backend).run
    fake.inject("result", "timeout", times=1000)
    for _ in range(5):
        result = runs.collect(featured_store)
    (job,) = featured_store.ledger.jobs(run.id)
    assert job.state is JobState.DONE and job.error_count >= 2 and "time" in job.error.lower()  # "timed out", "timeout"
    assert (result.pending_jobs, result.failed_jobs, result.waiting_on_errors) == (1, 0, 1)
    fake.set(faults=[])  # the network is back
    assert runs.collect(featured_store).pending_jobs == 0
    assert featured_store.ledger.job(job.id).error_count == 0
    assert_ledger_sound(featured_store, fake, run.id)


def test_one_timeout_is_retried_within_the_same_collect(featured_store, cloud):
    _, fake, backend = cloud
    run = _submit(featured_store, backend).run
    fake.inject("result", "timeout", times=1)
    _collect_until_done(featured_store)
    assert fake.faults_left() == 0 and featured_store.ledger.jobs(run.id)[0].error_count == 0
    assert_ledger_sound(featured_store, fake, run.id)


def test_throttling_leaves_the_job_as_it_is_and_collect_goes_on_with_the_others(featured_store, ibm_cloud, braket_cloud):
    throttled = _submit(featured_store, "braket_sv1").run
    other = _submit(featured_store, "ibm_fez").run
    (task,) = featured_store.ledger.jobs(throttled.id)
    braket_cloud.inject("status", "throttle", times=1000, job=task.provider_job_id)
    result = _collect_until_done(featured_store)
    assert featured_store.ledger.jobs(other.id)[0].state is JobState.COLLECTED
    task = featured_store.ledger.job(task.id)
    assert task.state is JobState.QUEUED and "ThrottlingException" in task.error and task.error_count >= 1
    assert (result.pending_jobs, result.waiting_on_errors, result.failed_jobs) == (1, 1, 0)
    braket_cloud.set(faults=[])
    _collect_until_done(featured_store)
    assert_ledger_sound(featured_store, braket_cloud, throttled.id)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_5xx_on_submit_never_makes_a_second_job(featured_store, cloud, when):
    """'after': the provider created the job and the answer was lost: it is found by its qhw-key."""
    _, fake, backend = cloud
    fake.inject("submit", "server", when=when)
    result = _submit(featured_store, backend)
    (job,) = result.jobs
    assert job.state is JobState.QUEUED and fake.faults_left() == 0
    notes = [event.note for event in featured_store.ledger.events(job.id)]
    assert any("found at the provider by its qhw-key" in (note or "") for note in notes) == (when == "after")
    _collect_until_done(featured_store)
    assert_ledger_sound(featured_store, fake, result.run.id)


def test_a_job_the_provider_forgets_once_is_found_again(featured_store, cloud):
    name, fake, backend = cloud
    run = _submit(featured_store, backend).run
    (job,) = featured_store.ledger.jobs(run.id)
    fake.inject("status", "forget", job=job.provider_job_id)
    _collect_until_done(featured_store)
    assert fake.faults_left() == 0
    assert_ledger_sound(featured_store, fake, run.id)


def test_a_job_the_provider_no_longer_has_is_failed_with_the_reason(featured_store, cloud):
    name, fake, backend = cloud
    run = _submit(featured_store, backend).run
    with fake.state() as state:
        state["jobs"].clear()
    result = runs.collect(featured_store)
    (job,) = featured_store.ledger.jobs(run.id)
    assert job.state is JobState.FAILED and "no longer has it" in job.error and result.failed_jobs == 1


def test_rejected_credentials_stop_collect_and_change_no_job(featured_store, ibm_cloud, monkeypatch):
    from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError

    run = _submit(featured_store, "ibm_fez").run
    before = featured_store.ledger.jobs(run.id)

    def refuse():
        raise IBMNotAuthorizedError("401 Client Error: Unauthorized for url: https://quantum.cloud.ibm.com/api/v1/jobs")

    monkeypatch.setattr(ibm_adapter, "runtime_service", refuse)
    with pytest.raises(CredentialsError, match="rejected the credentials"):
        runs.collect(featured_store)
    after = featured_store.ledger.jobs(run.id)
    assert [(j.state, j.error_count, j.claimed_by) for j in after] == [(j.state, 0, None) for j in before]


# --- crashes between the provider and the commit (in process; real kills in test_crashes.py) ------


def test_a_crash_after_the_provider_accepted_the_job_does_not_send_it_again(featured_store, cloud, monkeypatch):
    _, fake, backend = cloud
    with monkeypatch.context() as patch:
        patch.setattr(Ledger, "record_submission", _die)  # the provider answered; the commit never came
        with pytest.raises(KeyboardInterrupt):
            _submit(featured_store, backend)
    (job,) = featured_store.ledger.jobs()
    assert job.state is JobState.PENDING and job.provider_job_id is None and job.submit_started_at is not None
    assert len(fake.submitted(f"qhw-job={job.id}")) == 1
    # No approval is needed: the provider has the job, nothing is paid twice.
    result = _collect_until_done(featured_store, approve=None)
    assert result.awaiting_approval == 0
    assert_ledger_sound(featured_store, fake, job.run_id)


def test_a_paid_job_the_provider_never_received_waits_for_approval(featured_store, cloud, monkeypatch):
    _, fake, backend = cloud

    with monkeypatch.context() as patch:
        patch.setattr(RunWorker, "_send", _die)  # the row says "submitting"; the provider got nothing
        with pytest.raises(KeyboardInterrupt):
            _submit(featured_store, backend)
    (job,) = featured_store.ledger.jobs()
    asked = []
    refused = runs.collect(featured_store, approve=lambda run, jobs, estimate: asked.append((run.id, len(jobs), estimate)) or False)
    assert (refused.pending_jobs, refused.awaiting_approval) == (1, 1)
    assert asked and asked[0][:2] == (job.run_id, 1) and asked[0][2].usd > 0
    assert featured_store.ledger.job(job.id).state is JobState.PENDING and fake.submitted(f"qhw-job={job.id}") == []
    _collect_until_done(featured_store, approve=approve)
    assert_ledger_sound(featured_store, fake, job.run_id)


def test_collect_wait_stops_when_only_unapproved_jobs_are_left(featured_store, ibm_cloud, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(RunWorker, "_send", _die)
        with pytest.raises(KeyboardInterrupt):
            _submit(featured_store, "ibm_fez")
    # No timeout: only the rule can end the wait. A collect that waited would
    # sleep between passes; the first sleep fails the test instead of hanging it.
    def no_waiting(seconds):
        raise AssertionError(f"collect --wait slept {seconds} s with only an unapproved job left")

    monkeypatch.setattr(runs, "time", SimpleNamespace(monotonic=time.monotonic, sleep=no_waiting))
    result = runs.collect(featured_store, wait=True, interval=0.01, timeout=None)
    assert (result.pending_jobs, result.awaiting_approval) == (1, 1)


def test_transient_errors_are_tried_qhw_retry_attempts_times_with_waits_between_the_bounds(monkeypatch):
    """QHW_RETRY_ATTEMPTS calls in all; between them, waits of at least
    QHW_RETRY_INITIAL_WAIT and at most QHW_RETRY_MAX_WAIT plus 1 s of jitter."""
    from qhw.errors import TransientBackendError
    from qhw.retrying import with_retries

    monkeypatch.setenv("QHW_RETRY_ATTEMPTS", "4")
    monkeypatch.setenv("QHW_RETRY_INITIAL_WAIT", "2")
    monkeypatch.setenv("QHW_RETRY_MAX_WAIT", "3")
    waits, calls = [], []
    monkeypatch.setattr(time, "sleep", waits.append)  # tenacity sleeps through time.sleep

    def throttled():
        calls.append(1)
        raise TransientBackendError("429 Too Many Requests")

    with pytest.raises(TransientBackendError, match="429"):
        with_retries(throttled, "a call")
    assert len(calls) == 4 and len(waits) == 3
    assert all(2 <= wait <= 3 + 1 for wait in waits), waits
    calls.clear()
    monkeypatch.setenv("QHW_RETRY_ATTEMPTS", "1")
    with pytest.raises(TransientBackendError):
        with_retries(throttled, "a call")
    assert len(calls) == 1


# --- cancel ---------------------------------------------------------------------------------------


def test_a_cancel_that_arrives_after_the_job_finished_collects_it(featured_store, cloud):
    _, fake, backend = cloud
    run = _submit(featured_store, backend).run
    (job,) = featured_store.ledger.jobs(run.id)
    fake.inject("cancel", "finish", when="race", job=job.provider_job_id)
    (outcome,) = runs.cancel_run(featured_store, run.id)
    assert outcome.outcome == "finished before the cancel reached it: collected"
    assert featured_store.ledger.job(job.id).cancel_requested_at is not None
    assert_ledger_sound(featured_store, fake, run.id)


def test_cancel_reports_each_job_and_keeps_those_it_could_not_reach(featured_store, cloud, monkeypatch):
    name, fake, backend = cloud
    monkeypatch.setattr(ibm_adapter, "MAX_EXECUTIONS_PER_JOB", 50 * 100)  # IBM: 2 jobs of 50
    # Braket: program sets of 100, so the 400 samples of both splits make 4 tasks.
    run = runs.submit(featured_store, backend_name=backend, split="all" if name == "braket" else "test", shots=100, approve=approve).run
    jobs = featured_store.ledger.jobs(run.id)
    assert len(jobs) >= 2
    fake.inject("cancel", "timeout", times=1000, job=jobs[1].provider_job_id)
    outcomes = {o.job: o.outcome for o in runs.cancel_run(featured_store, run.id)}
    assert outcomes[jobs[0].id] == "cancelled" and outcomes[jobs[1].id].startswith("not confirmed")
    states = {job.id: job.state for job in featured_store.ledger.jobs(run.id)}
    assert states[jobs[0].id] is JobState.CANCELLED and states[jobs[1].id] is JobState.QUEUED
    assert featured_store.ledger.job(jobs[1].id).error_count == 1


def test_cancelling_a_job_that_never_reached_the_provider(featured_store, ibm_cloud, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(RunWorker, "_send", _die)
        with pytest.raises(KeyboardInterrupt):
            _submit(featured_store, "ibm_fez")
    (outcome,) = runs.cancel_run(featured_store)
    assert outcome.outcome == "cancelled (never reached the provider)"
    assert featured_store.ledger.jobs()[0].state is JobState.CANCELLED


# --- retry -----------------------------------------------------------------------------------------


def test_retry_submits_failed_jobs_afresh_behind_the_cost_guard(featured_store, ibm_cloud):
    ibm_cloud.set(fail_next="Error code 8041; the job exceeded the maximum execution time")
    run = _submit(featured_store, "ibm_fez").run
    _collect_until_done(featured_store)
    (failed,) = featured_store.ledger.jobs(run.id)
    assert failed.state is JobState.FAILED
    ibm_cloud.set(fail_next=None)
    with pytest.raises(ConfigError, match="not confirmed"):
        runs.retry_run(featured_store, run.id, approve=lambda estimate: False)
    assert featured_store.ledger.job(failed.id).state is JobState.FAILED
    with pytest.raises(ConfigError, match="exceeds --max-cost"):
        runs.retry_run(featured_store, run.id, max_cost=0.01, approve=approve)
    retried = runs.retry_run(featured_store, run.id, approve=approve)
    (job,) = retried.jobs
    assert job.attempt == 2 and job.idempotency_key != failed.idempotency_key and job.state is JobState.QUEUED
    _collect_until_done(featured_store)
    assert_ledger_sound(featured_store, ibm_cloud, run.id, attempts=2)  # the failed one and the new one
    with pytest.raises(NotFoundError, match="no failed jobs"):
        runs.retry_run(featured_store, run.id, approve=approve)


def test_retry_and_job_filters_from_the_command_line(featured_store, ibm_cloud):
    from click.testing import CliRunner

    from qhw.cli import main

    def cli(*args):
        return CliRunner().invoke(main, list(args))

    ibm_cloud.set(fail_next="Error code 8041; the job exceeded the maximum execution time")
    assert cli("submit", "--backend", "ibm_fez", "--split", "test", "--limit", "10", "--shots", "100", "--yes").exit_code == 0
    ibm_cloud.set(fail_next=None)
    _submit(featured_store, "ibm_fez")
    _collect_until_done(featured_store)
    failed = json.loads(cli("jobs", "--run", "1", "--state", "failed", "--json").stdout)
    assert [(j["job"], j["state"], j["attempt"]) for j in failed] == [(1, "failed", 1)] and "8041" in failed[0]["error"]
    assert json.loads(cli("jobs", "--state", "failed", "--state", "collected", "--json").stdout).__len__() == 2
    refused = cli("retry", "--run", "1")
    assert refused.exit_code == 1 and "not confirmed" in refused.stderr
    retried = cli("retry", "--run", "1", "--yes", "--json")
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.stdout)["retried_jobs"] == [1]
    assert json.loads(cli("jobs", "--run", "1", "--json").stdout)[0]["attempt"] == 2


def test_submit_exits_non_zero_and_names_the_failed_jobs(featured_store, braket_cloud, monkeypatch):
    from click.testing import CliRunner

    from qhw.cli import main

    import fake_braket

    def refuse(self, request):
        return fake_braket._error(400, "ValidationException", "device is retired")

    monkeypatch.setattr(fake_braket.FakeBraketCloud, "_braket_CreateQuantumTask", refuse)
    result = CliRunner().invoke(main, ["submit", "--backend", "braket_sv1", "--split", "test", "--limit", "10", "--shots", "100", "--yes"])
    assert result.exit_code == 1
    assert "1 of 1 job(s) of run 1 failed: job 1: the provider refused the job" in result.stderr
    assert "device is retired" in result.stderr


# --- the Braket clientToken, through real botocore ------------------------------------------------------


def test_create_quantum_task_carries_the_jobs_key_as_its_client_token():
    """The request botocore would send carries our token, not a random one."""
    import boto3

    client = boto3.client("braket", region_name="us-east-1", aws_access_key_id="AKIDTEST", aws_secret_access_key="test")
    braket_aws._use_client_tokens(client)
    sent = []

    class Sent(Exception):
        pass

    def capture(request, **_kwargs):
        sent.append(json.loads(request.body))
        raise Sent

    client.meta.events.register("before-send.braket.CreateQuantumTask", capture)
    arguments = dict(
        deviceArn="arn:aws:braket:::device/quantum-simulator/amazon/sv1", shots=10, action="{}",
        outputS3Bucket="amazon-braket-test", outputS3KeyPrefix="tasks",
    )
    for token in ("a" * 32, "a" * 32, None):
        with braket_aws.client_token(token), pytest.raises(Sent):
            client.create_quantum_task(**arguments)
    assert sent[0]["clientToken"] == sent[1]["clientToken"] == "a" * 32
    assert sent[2]["clientToken"] not in ("a" * 32, None)  # outside a qhw submission: boto3's random token


def test_collect_without_yes_says_what_waits_for_approval(featured_store, braket_cloud, monkeypatch):
    from click.testing import CliRunner

    from qhw.cli import main

    with monkeypatch.context() as patch:
        patch.setattr(RunWorker, "_send", _die)
        with pytest.raises(KeyboardInterrupt):
            _submit(featured_store, "braket_sv1")
    result = CliRunner().invoke(main, ["collect", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["jobs_awaiting_approval"] == 1
    assert "must be submitted (again)" in result.stderr and "Estimated cost on braket_sv1" in result.stderr
    assert "`qhw collect --yes` submits them" in result.stderr
    assert braket_cloud.tasks == {}
    approved = CliRunner().invoke(main, ["collect", "--wait", "--interval", "0.01", "--yes", "--json"])
    assert json.loads(approved.stdout)["samples"] == 10 and len(braket_cloud.tasks) == 1
