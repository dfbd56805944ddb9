"""Real-hardware paths: IBM Quantum and Amazon Braket against stateful fakes at
the client boundary, Braket's local simulators for real, and the cost guard."""

from __future__ import annotations

import numpy as np
import pytest

import qhw.backends._braket_aws as braket_aws
import qhw.backends.braket as braket_adapter
import qhw.backends.ibm as ibm_adapter
from qhw import runs
from qhw.backend import get_backend
from qhw.errors import BackendError, ConfigError
from qhw.jobstates import JobState
from qhw.planning import check_shots, plan_jobs
from qhw.store.arrays import load_arrays

from conftest import SMALL_TEST, SMALL_TRAIN, circuit_distribution


def approve(estimate) -> bool:
    return True


def _nothing_written(store) -> bool:
    return store.ledger.runs() == [] and store.ledger.jobs() == []


def _distances(store, run_id: int) -> np.ndarray:
    stored = store.results.run_counts(run_id)
    arrays = load_arrays(store.artifacts, store.catalogue.feature_set(1))
    angles = np.stack([arrays.angles(s)[i] for s, i in zip(stored.splits, stored.sample_index, strict=True)])
    measured = stored.counts[:, 0, :] / stored.counts[:, 0, :].sum(axis=1, keepdims=True)
    return 0.5 * np.abs(measured - circuit_distribution(angles)).sum(axis=1)


# --- IBM Quantum -------------------------------------------------------------------------


def test_an_ibm_run_is_tagged_followed_and_collected_after_a_restart(featured_store, ibm_cloud):
    result = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=30, shots=2000, approve=approve)
    (job,) = result.jobs
    assert job.state is JobState.QUEUED and job.provider_job_id in ibm_cloud.jobs
    assert ibm_cloud.jobs[job.provider_job_id]["tags"] == job.tags == [
        f"qhw-run={result.run.id}", f"qhw-job={job.id}", f"qhw-key={job.idempotency_key}"
    ]
    assert result.run.cost_estimate_usd and result.run.cost_estimate_usd > 0
    states = []
    for _ in range(3):  # each collect builds a new adapter from the database alone
        runs.collect(featured_store)
        states.append(featured_store.ledger.jobs()[0].state)
    # The fake job moves on a state each time IBM is asked (the service's job
    # lookup and the job's status are both asked on a first poll).
    assert states[0] is JobState.RUNNING and states[-1] is JobState.COLLECTED
    moves = [(event.old_state, event.new_state) for event in featured_store.ledger.events(job.id)]
    assert moves[1:] == [(JobState.PENDING, JobState.QUEUED), (JobState.QUEUED, JobState.RUNNING), (JobState.RUNNING, JobState.COLLECTED)]
    assert featured_store.ledger.jobs()[0].quantum_seconds == 1.25
    assert (_distances(featured_store, result.run.id) < 0.08).all()


def test_a_run_of_several_ibm_jobs_goes_in_one_batch(featured_store, ibm_cloud, monkeypatch):
    monkeypatch.setattr(ibm_adapter, "MAX_EXECUTIONS_PER_JOB", 20 * 100)  # 20 circuits a job at 100 shots
    result = runs.submit(featured_store, backend_name="ibm_torino", split="test", limit=50, shots=100, approve=approve)
    assert [j.executions for j in result.jobs] == [20, 20, 10]
    assert all(ibm_cloud.jobs[j.provider_job_id]["in_batch"] for j in result.jobs)
    single = runs.submit(featured_store, backend_name="ibm_torino", split="test", limit=10, shots=100, approve=approve)
    assert not ibm_cloud.jobs[single.jobs[0].provider_job_id]["in_batch"]


def test_a_failed_ibm_job_keeps_the_reason(featured_store, ibm_cloud):
    ibm_cloud.set(fail_next="Error code 8041; the job exceeded the maximum execution time")
    runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=10, shots=100, approve=approve)
    result = runs.collect(featured_store, wait=True, interval=0.01)
    (job,) = featured_store.ledger.jobs()
    assert job.state is JobState.FAILED and "8041" in job.error and result.failed_jobs == 1


def test_cancelling_an_ibm_run_cancels_at_the_provider(featured_store, ibm_cloud):
    run = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=10, shots=100, approve=approve).run
    (outcome,) = runs.cancel_run(featured_store, run.id)
    (job,) = featured_store.ledger.jobs(run.id)
    assert outcome.outcome == "cancelled" and job.state is JobState.CANCELLED
    assert ibm_cloud.jobs[job.provider_job_id]["cancelled"]
    assert runs.collect(featured_store).pending_jobs == 0
    assert runs.cancel_run(featured_store, run.id) == []


def test_a_device_that_is_not_operational_is_refused_before_anything_is_written(featured_store, ibm_cloud):
    ibm_cloud.set(operational=False)
    with pytest.raises(BackendError, match="not operational"):
        runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=10, shots=100, approve=approve)
    assert _nothing_written(featured_store)


def test_missing_ibm_credentials_say_how_to_set_them_up(featured_store, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.qiskit/qiskit-ibm.json
    for name in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_CHANNEL", "QISKIT_IBM_URL"):
        monkeypatch.delenv(name, raising=False)
    assert ibm_adapter.credentials_configured() is False
    with pytest.raises(ConfigError, match="no IBM Quantum credentials: save an IBM Quantum account"):
        runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=10, shots=100, approve=approve)
    assert _nothing_written(featured_store)


# --- Amazon Braket: local, for real ----------------------------------------------------------


@pytest.mark.parametrize("backend_name", ["braket_local", "braket_dm"])
def test_braket_local_simulators_agree_with_aer_sample_by_sample(featured_store, backend_name):
    """The same feature set on aer_simulator and on Braket gives the same distributions (bit order)."""
    aer = runs.submit(featured_store, backend_name="aer_simulator", split="test", limit=40, shots=4000).run
    other = runs.submit(featured_store, backend_name=backend_name, split="test", limit=40, shots=4000).run
    a, b = featured_store.results.run_counts(aer.id), featured_store.results.run_counts(other.id)
    assert (a.sample_index == b.sample_index).all()
    distance = 0.5 * np.abs(a.counts[:, 0, :].astype(np.int64) - b.counts[:, 0, :]).sum(axis=1) / 4000
    # Two independent 4,000-shot samples of one distribution differ by about 0.04.
    assert distance.mean() < 0.06 and distance.max() < 0.1, distance
    assert (_distances(featured_store, other.id) < 0.07).all()


def test_braket_columns_follow_classical_bits_whatever_physical_qubit_ran_them():
    """Classical bit j is read from the column of the qubit the program measured into b[j]."""
    from braket.program_sets import ProgramSet
    from qiskit import QuantumCircuit
    from qiskit_braket_provider.providers.adapter import to_braket

    from qhw.backends._braket_results import read_task_result

    circuit = QuantumCircuit(5, 5)
    circuit.x(3)  # logical qubit 0 lives on physical qubit 3 and reads 1
    for clbit, physical in enumerate([3, 0, 1, 2, 4]):
        circuit.measure(physical, clbit)
    program_set = ProgramSet([to_braket(circuit, verbatim=True)], shots_per_executable=50)
    document = braket_adapter._braket_simulator("braket_sv").run(program_set.to_ir(), shots=50)
    outcome = read_task_result(document.json(), executions=1, measured=[3, 0, 1, 2, 4], shots=50)
    assert outcome.counts.shape == (1, 32) and outcome.counts[0, 0b00001] == 50 and not outcome.failed


# --- Amazon Braket: remote, against the fake cloud ---------------------------------------------


def test_a_braket_run_packs_100_executables_a_task_and_survives_a_restart(featured_store, braket_cloud):
    result = runs.submit(featured_store, backend_name="braket_sv1", split="all", shots=1000, approve=approve)
    n = SMALL_TRAIN + SMALL_TEST
    assert [j.executions for j in result.jobs] == [100] * (n // 100)  # N samples -> N/100 tasks
    assert sorted(t["executables"] for t in braket_cloud.tasks.values()) == [100] * (n // 100)
    first = result.jobs[0]
    assert braket_cloud.tasks[first.provider_job_id]["tags"] == {
        "qhw-run": str(result.run.id), "qhw-job": str(first.id), "qhw-key": first.idempotency_key
    }
    assert braket_cloud.tasks[first.provider_job_id]["token"] == first.idempotency_key  # the clientToken
    for _ in range(3):
        collected = runs.collect(featured_store)
    assert collected.samples == n and collected.pending_jobs == 0
    assert all(j.state is JobState.COLLECTED for j in featured_store.ledger.jobs())
    distance = _distances(featured_store, result.run.id)  # shot noise alone: about 0.06 at 1,000 shots
    assert distance.mean() < 0.09 and distance.max() < 0.16, distance


def test_a_failed_braket_task_keeps_the_reason(featured_store, braket_cloud):
    braket_cloud.set(fail_tasks="Device calibration in progress")
    runs.submit(featured_store, backend_name="braket_sv1", split="test", limit=10, shots=100, approve=approve)
    runs.collect(featured_store, wait=True, interval=0.01)
    (job,) = featured_store.ledger.jobs()
    assert job.state is JobState.FAILED and job.error == "Device calibration in progress"


def test_cancelling_a_braket_run_cancels_its_tasks(featured_store, braket_cloud):
    run = runs.submit(featured_store, backend_name="iqm_garnet", split="test", limit=10, shots=100, approve=approve).run
    (outcome,) = runs.cancel_run(featured_store, run.id)
    (job,) = featured_store.ledger.jobs(run.id)
    assert outcome.outcome == "cancelled" and job.state is JobState.CANCELLED
    assert braket_cloud.tasks[job.provider_job_id]["cancelled"]


def test_a_task_the_provider_no_longer_knows_is_marked_failed(featured_store, braket_cloud):
    runs.submit(featured_store, backend_name="braket_sv1", split="test", limit=10, shots=100, approve=approve)
    with braket_cloud.state() as state:
        state["jobs"].clear()
    runs.collect(featured_store)
    (job,) = featured_store.ledger.jobs()
    assert job.state is JobState.FAILED and "has no task" in job.error


@pytest.mark.parametrize(
    "cloud_change, shots, error, message",
    [
        (dict(status="OFFLINE"), 100, BackendError, "OFFLINE, not ONLINE"),
        (dict(shots_range=(10, 1000)), 5000, ConfigError, "between 10 and 1000 on braket_sv1"),
    ],
)
def test_the_device_is_checked_before_anything_is_written(featured_store, braket_cloud, cloud_change, shots, error, message):
    braket_cloud.set(**cloud_change)
    with pytest.raises(error, match=message):
        runs.submit(featured_store, backend_name="braket_sv1", split="test", limit=10, shots=shots, approve=approve)
    assert _nothing_written(featured_store) and braket_cloud.tasks == {}


def test_missing_aws_credentials_say_how_to_set_them_up(featured_store, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert braket_adapter.credentials_configured() is False
    with pytest.raises(ConfigError, match="no AWS credentials: run `aws configure`"):
        runs.submit(featured_store, backend_name="iqm_garnet", split="test", limit=10, shots=100, approve=approve)
    assert _nothing_written(featured_store)


# --- the cost guard ------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    """Accounts configured, but any call to a provider fails the test."""
    from conftest import FAKE_CREDENTIALS

    for credentials in FAKE_CREDENTIALS.values():
        for name, value in credentials.items():
            monkeypatch.setenv(name, value)

    def refuse(*args, **kwargs):
        raise AssertionError("the network was touched")

    monkeypatch.setattr(braket_aws, "boto_session", refuse)
    monkeypatch.setattr(ibm_adapter, "runtime_service", refuse)


def test_above_max_cost_is_refused_before_the_network_with_the_estimate(featured_store, no_network):
    with pytest.raises(ConfigError, match=r"estimated cost \$800\.30 .* exceeds --max-cost \$1\.00"):
        runs.submit(featured_store, backend_name="ionq_forte", split="test", limit=100, shots=100, max_cost=1, approve=approve)
    assert _nothing_written(featured_store)


@pytest.mark.parametrize("answer", [None, lambda estimate: False])
def test_a_paid_backend_needs_approval(featured_store, no_network, answer):
    with pytest.raises(ConfigError, match="costs money .* not confirmed"):
        runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=10, shots=100, approve=answer)
    assert _nothing_written(featured_store)


def test_the_approver_sees_the_estimate_and_it_is_stored_with_the_run(featured_store, braket_cloud):
    seen = []
    run = runs.submit(
        featured_store, backend_name="iqm_garnet", split="test", limit=20, shots=100, approve=lambda e: seen.append(e) or True
    ).run
    (estimate,) = seen
    assert estimate.usd == pytest.approx(0.30 + 20 * 100 * 0.00145)
    assert run.cost_estimate_usd == pytest.approx(estimate.usd)


def test_prices_can_be_overridden(featured_store, home, no_network, monkeypatch):
    (home / "prices.toml").write_text("braket_per_task_usd = 0.5\n[braket_per_shot_usd]\nionq_forte = 0.0001\n")
    seen = []
    with pytest.raises(ConfigError, match="not confirmed"):
        runs.submit(featured_store, backend_name="ionq_forte", split="test", limit=100, shots=100, approve=lambda e: seen.append(e) or False)
    assert seen[0].usd == pytest.approx(0.5 + 100 * 100 * 0.0001)
    assert "overridden by" in seen[0].prices_taken
    (home / "prices.toml").write_text("braket_per_minute = 3\n")
    with pytest.raises(ConfigError, match="unknown price 'braket_per_minute'"):
        runs.submit(featured_store, backend_name="ionq_forte", split="test", limit=100, shots=100, approve=approve)


def test_an_unpriced_device_cannot_pass_max_cost(featured_store, no_network):
    with pytest.raises(ConfigError, match="no price is known"):
        runs.submit(
            featured_store,
            backend_name="braket:arn:aws:braket:us-east-1::device/qpu/quera/Aquila",
            split="test",
            limit=10,
            max_cost=100,
            approve=approve,
        )


def test_rejected_ibm_credentials_say_how_to_fix_them(featured_store, monkeypatch):
    from qiskit_ibm_runtime.exceptions import IBMNotAuthorizedError

    def reject():
        raise IBMNotAuthorizedError("401 Client Error: Unauthorized")

    monkeypatch.setenv("QISKIT_IBM_TOKEN", "a-revoked-token")
    monkeypatch.setattr(ibm_adapter, "runtime_service", reject)
    with pytest.raises(ConfigError, match="rejected the credentials .* QISKIT_IBM_TOKEN"):
        runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=10, shots=100, approve=approve)
    assert _nothing_written(featured_store)


# --- the same through the command line ---------------------------------------------------------


def _cli(*args, input=None):
    from click.testing import CliRunner

    from qhw.cli import main

    return CliRunner().invoke(main, list(args), input=input)


def test_the_issues_max_cost_command_refuses_before_the_network(featured_store, no_network):
    result = _cli("submit", "--backend", "ionq_forte", "--features", "1", "--split", "test", "--limit", "100", "--shots", "100", "--max-cost", "1")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: estimated cost $800.30 (1 task(s) x $0.3 + 10,000 shots x $0.08; prices of 2026-11-01) "
        "exceeds --max-cost $1.00; nothing was submitted"
    ]
    assert _nothing_written(featured_store)


def test_paid_submission_prints_the_estimate_and_needs_yes(featured_store, braket_cloud):
    refused = _cli("submit", "--backend", "iqm_garnet", "--split", "test", "--limit", "10", "--shots", "100", input="")
    assert refused.exit_code == 1 and "Estimated cost on iqm_garnet: $1.75" in refused.stderr
    assert _nothing_written(featured_store)
    accepted = _cli("submit", "--backend", "iqm_garnet", "--split", "test", "--limit", "10", "--shots", "100", "--yes", "--json")
    assert accepted.exit_code == 0, accepted.output
    assert "Estimated cost on iqm_garnet: $1.75" in accepted.stderr
    run = featured_store.ledger.run()
    assert run.backend == "iqm_garnet" and run.cost_estimate_usd == pytest.approx(1.75)


def test_poll_collect_and_cancel_from_the_command_line(featured_store, braket_cloud):
    import json

    _cli("submit", "--backend", "braket_sv1", "--split", "test", "--limit", "10", "--shots", "100", "--yes")
    quiet = {"jobs_waiting_on_errors": 0, "jobs_awaiting_approval": 0, "jobs_usage_pending": 0, "failed_executions": 0, "rounds_started": 0}
    polled = json.loads(_cli("poll", "--json").stdout)
    assert polled == {"samples": 0, "pending_jobs": 1, "failed_jobs": 0, **quiet}
    collected = json.loads(_cli("collect", "--wait", "--interval", "0.01", "--json").stdout)
    assert collected == {"samples": 10, "pending_jobs": 0, "failed_jobs": 0, **quiet}
    _cli("submit", "--backend", "braket_sv1", "--split", "test", "--limit", "10", "--shots", "100", "--yes")
    cancelled = json.loads(_cli("cancel", "--json").stdout)
    job_id = featured_store.ledger.jobs(featured_store.ledger.run().id)[0].id
    assert cancelled == {"cancelled_jobs": [job_id], "outcomes": [{"job": job_id, "state": "cancelled", "outcome": "cancelled"}]}
    assert featured_store.ledger.jobs(featured_store.ledger.run().id)[0].state is JobState.CANCELLED


def test_a_device_without_program_sets_gets_one_bound_circuit_per_task(featured_store, braket_local_without_program_sets):
    result = runs.submit(featured_store, backend_name="braket_local", split="test", limit=5, shots=3000)
    assert [j.executions for j in result.jobs] == [1] * 5
    assert all(j.state is JobState.COLLECTED for j in result.jobs)
    assert (_distances(featured_store, result.run.id) < 0.08).all()


def test_credentials_never_reach_the_database_or_home_or_logs(featured_store, home, ibm_cloud, braket_cloud, monkeypatch, caplog, capfd):
    import logging

    secrets = {"QISKIT_IBM_TOKEN": "ibm-token-7f3a9c", "AWS_SECRET_ACCESS_KEY": "aws-secret-55d1e0", "AWS_ACCESS_KEY_ID": "AKIAQHWTEST0001"}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)  # every logger, the providers' clients (botocore, qiskit_ibm_runtime) included
    ibm = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=5, shots=100, approve=approve).run
    braket = runs.submit(featured_store, backend_name="braket_sv1", split="test", limit=5, shots=100, approve=approve).run
    runs.collect(featured_store, wait=True, interval=0.01)
    # A comparison's report of both paid runs, written in the home (the default) and outside it.
    from qhw.compare import compare_devices
    from qhw.report import write_report

    simulator = runs.submit(featured_store, backend_name="statevector", split="all", shots=64).run
    comparison = compare_devices(featured_store, simulator_run_id=simulator.id, hardware_run_ids=[ibm.id, braket.id], epochs=1)
    reports = [write_report(comparison), write_report(comparison, home.parent / "report-elsewhere")]
    written = [path for report in reports for path in (report.parent if report.is_file() else report).rglob("*") if path.is_file()]
    assert any(path.suffix == ".html" for path in written)
    for path in written:
        for value in secrets.values():
            assert value.encode() not in path.read_bytes(), f"{value} found in {path}"
    with featured_store.engine.connect() as connection:  # outside any transaction: fold the WAL into the file
        connection.connection.driver_connection.execute("PRAGMA wal_checkpoint(FULL)")
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for value in secrets.values():
                assert value.encode() not in data, f"{value} found in {path}"
    assert caplog.records, "nothing was logged: the check below would be empty"
    printed = capfd.readouterr()
    for value in secrets.values():
        assert value not in printed.out and value not in printed.err
    # The secrets themselves are in no log record, even at DEBUG. botocore's
    # DEBUG records do carry the access key id (in the request's signed
    # Authorization header, as AWS signs every request); qhw never turns
    # them on (its command line logs at WARNING), and no record qhw would
    # show (INFO and above) carries it.
    debug_text = "\n".join(record.getMessage() for record in caplog.records)
    assert secrets["QISKIT_IBM_TOKEN"] not in debug_text and secrets["AWS_SECRET_ACCESS_KEY"] not in debug_text
    shown = "\n".join(record.getMessage() for record in caplog.records if record.levelno >= logging.INFO)
    assert not any(value in shown for value in secrets.values())


@pytest.mark.parametrize("name", ["braket_local", "braket_dm"])
def test_braket_local_simulators_cap_shots_and_jobs_at_half_of_aer_s(name):
    """docs/reference/errors.md, Memory: a local job carries at most 2**20 shots (circuits times
    shots), 2**19 on Braket's local simulators, which also caps --shots at
    524,288; and never more than the simulator's own program-set limit."""
    from braket.device_schema import DeviceActionType
    from braket.devices import LocalSimulator

    from qhw.backend import LOCAL_SHOTS_PER_JOB

    program_sets = LocalSimulator({"braket_local": "braket_sv", "braket_dm": "braket_dm"}[name]).properties.action[
        DeviceActionType.OPENQASM_PROGRAM_SET
    ]
    per_job = min(2**19, program_sets.maximumTotalShots)
    backend = get_backend(name)
    profile = backend.profile()  # the device read, whose limits then apply
    assert profile.limits.max_shots == LOCAL_SHOTS_PER_JOB // 2 == 524_288
    check_shots(profile, 524_288)
    with pytest.raises(ConfigError, match=f"^shots must be between 1 and 524288 on {name}, got 524289"):
        check_shots(profile, 524_289)
    for shots in (1024, 2**16, 2**18, 524_288):
        plans = plan_jobs(backend, profile, 40, shots)
        assert sum(plan.executions for plan in plans) == 40
        # As many circuits a job as the cap allows (one at least), never more.
        assert max(plan.executions for plan in plans) == min(40, max(1, min(per_job // shots, program_sets.maximumExecutables)))
