"""Answers the providers are allowed to give, through their real clients.

Braket: a real boto3 client (botocore validates every request against the
service model and parses every answer) and the real Braket SDK, answered by
the fake service of fake_braket.py, whose result documents are built from
amazon-braket-schemas' classes in every shape the schemas allow. IBM: the
real QiskitRuntimeService, SamplerV2 and RuntimeJobV2 on the fake runtime
client of fake_ibm.py.

Whatever the shape, a stored count row belongs to exactly one sample and
circuit and is right (checked against the circuit's exact distribution of
that sample), an execution the provider failed is recorded with its reason
and run again by `qhw retry`, and an answer that cannot be mapped fails its
job without storing anything.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from click.testing import CliRunner

from qhw import runs
from qhw.cli import main
from qhw.jobstates import JobState
from qhw.overview import run_details, run_overviews
from qhw.store.arrays import load_arrays

from conftest import circuit_distribution
from device_documents import garnet_like

pytestmark = pytest.mark.usefixtures("fast_retries")


def approve(*_args) -> bool:
    return True


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def _collect(store, passes: int = 6):
    for _ in range(passes):
        result = runs.collect(store)
        if result.pending_jobs == 0:
            return result
    return result


def _submit(store, backend: str, limit: int = 10, shots: int = 1000):
    return runs.submit(store, backend_name=backend, split="test", limit=limit, shots=shots, approve=approve).run


def _distances(store, run_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Each stored sample's total-variation distance to its own exact
    distribution, and to the nearest other sample's (what a mix-up would give)."""
    stored = store.results.run_counts(run_id)
    arrays = load_arrays(store.artifacts, store.catalogue.feature_set(1))
    angles = np.stack([arrays.angles(split)[index] for split, index in zip(stored.splits, stored.sample_index, strict=True)])
    measured = stored.counts[:, 0, :] / stored.counts[:, 0, :].sum(axis=1, keepdims=True)
    exact = circuit_distribution(angles)
    pairwise = 0.5 * np.abs(measured[:, None, :] - exact[None, :, :]).sum(axis=2)
    own = np.diag(pairwise).copy()
    np.fill_diagonal(pairwise, np.inf)
    return own, pairwise.min(axis=1)


def _assert_right_counts(store, run_id: int, samples: int) -> None:
    """Every sample stored once, each closer to its own exact distribution than
    shot noise allows a neighbour's to be."""
    own, other = _distances(store, run_id)
    assert len(own) == samples
    assert own.max() < 0.1, own  # 1,000 shots: about 0.04 of shot noise
    assert (own < other).all(), (own, other)


# --- Braket program sets -----------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["reversed", "shuffled"])
def test_executable_results_out_of_inputs_index_order_land_on_their_samples(featured_store, braket_cloud, order):
    braket_cloud.set_shape(order=order)
    run = _submit(featured_store, "braket_sv1")
    _collect(featured_store)
    _assert_right_counts(featured_store, run.id, 10)


#: A line of six qubits numbered from 1, not in order along the line: a run's
#: layout is then no ascending sequence, so a sorted measuredQubits is a
#: real permutation of the program's measurement order.
LINE = (4, 2, 6, 1, 5, 3)


@pytest.fixture
def garnet(braket_cloud):
    """iqm_garnet as its document describes it: qubits numbered 1..6 on a line."""
    braket_cloud.set(qpu_properties=garnet_like(line=LINE).json())
    return braket_cloud


@pytest.mark.parametrize("order", ["ascending", "descending"])
@pytest.mark.parametrize("extra", [0, 2])
def test_measured_qubits_in_another_order_than_the_program_measured(featured_store, garnet, order, extra):
    garnet.set_shape(measured_qubits=order, extra_measured=extra)
    run = _submit(featured_store, "iqm_garnet")
    assert sorted(run.layout, reverse=order == "descending") != list(run.layout)  # the columns really are permuted
    _collect(featured_store)
    (task,) = garnet.tasks.values()
    from fake_braket import result_document

    qubits = result_document(garnet, next(iter(garnet.tasks))).programResults[0].executableResults[0].measuredQubits
    assert qubits == sorted(qubits, reverse=order == "descending") and len(qubits) == 5 + extra
    _assert_right_counts(featured_store, run.id, 10)


def test_probabilities_instead_of_shots_become_counts_of_the_shots_asked(featured_store, garnet):
    garnet.set_shape(probabilities=True, measured_qubits="descending")
    run = _submit(featured_store, "iqm_garnet")
    _collect(featured_store)
    stored = featured_store.results.run_counts(run.id)
    assert (stored.counts.sum(axis=2) == 1000).all()
    _assert_right_counts(featured_store, run.id, 10)


def test_results_stored_as_separate_s3_objects_are_read_from_s3(featured_store, braket_cloud):
    braket_cloud.set_shape(in_files=True, order="shuffled")
    run = _submit(featured_store, "braket_sv1")
    _collect(featured_store)
    _assert_right_counts(featured_store, run.id, 10)
    (task,) = featured_store.ledger.jobs(run.id)
    assert task.duration_seconds == pytest.approx(1.5)  # from the program result stored beside results.json


def _failed_samples(store, run_id: int) -> list[dict]:
    return [f.to_dict() for f in run_details(store, run_id).failed_executions]


def test_failed_executables_are_stored_as_failures_and_retry_runs_exactly_them(featured_store, garnet):
    garnet.set_shape(failed={2: "qubit 3 readout out of calibration", 7: "qubit 3 readout out of calibration"}, order="shuffled")
    run = _submit(featured_store, "iqm_garnet")
    result = _collect(featured_store)
    (job,) = featured_store.ledger.jobs(run.id)
    assert job.state is JobState.COLLECTED and (result.pending_jobs, result.failed_jobs, result.failed_executions) == (0, 0, 2)
    assert "2 of 10 execution(s) failed at the provider: DEVICE: qubit 3 readout out of calibration (retryable)" in job.error
    assert featured_store.results.count_samples(run.id) == 8
    # The samples that ran are right; the two that did not are named, with the provider's reason.
    order = featured_store.ledger.run_circuit(run.id).sample_order
    failed = _failed_samples(featured_store, run.id)
    assert [(f["execution"], f["sample"], f["circuit"]) for f in failed] == [(e, f"test#{order[e][1]}", 0) for e in (2, 7)]
    assert all(f["reason"].startswith("DEVICE: qubit 3 readout") and f["retry_job"] is None for f in failed)
    # Braket bills the task and the shots that ran: 8 executables of 1,000 shots.
    assert job.cost_usd == pytest.approx(0.30 + 8 * 1000 * 0.00145)
    listed = json.loads(cli("jobs", "--run", str(run.id), "--json").stdout)
    assert [(j["state"], j["failed_executions"]) for j in listed] == [("collected", 2)]
    shown = cli("runs", "show", str(run.id))
    assert shown.exit_code == 0 and "2 execution(s) failed at the provider" in shown.stdout and f"test#{order[2][1]}" in shown.stdout

    garnet.set_shape(failed={}, order="given")
    retried = cli("retry", "--run", str(run.id), "--yes", "--json")
    assert retried.exit_code == 0, retried.output
    jobs = featured_store.ledger.jobs(run.id)
    assert len(jobs) == 2 and jobs[1].indices == (2, 7) and jobs[1].executions == 2
    created = garnet.requests("CreateQuantumTask")[-1]
    (program,) = json.loads(created["action"])["programs"]
    sent = np.array(list(program["inputs"].values())).T  # the parameter rows of the retry task
    arrays = load_arrays(featured_store.artifacts, featured_store.catalogue.feature_set(1))
    from qhw.circuits import from_qpy, parameter_rows

    circuit = from_qpy(featured_store.ledger.run_circuit(run.id).qpy)
    expected = parameter_rows(arrays.angles("test")[[order[2][1], order[7][1]]], 1, circuit)
    assert np.allclose(np.sort(sent, axis=0), np.sort(expected, axis=0))
    _collect(featured_store)
    assert [j.state for j in featured_store.ledger.jobs(run.id)] == [JobState.COLLECTED, JobState.COLLECTED]
    _assert_right_counts(featured_store, run.id, 10)
    assert _failed_samples(featured_store, run.id) == []  # nothing is missing any more
    assert featured_store.ledger.jobs(run.id)[1].cost_usd == pytest.approx(0.30 + 2 * 1000 * 0.00145)
    refused = cli("retry", "--run", str(run.id), "--yes")
    assert refused.exit_code == 1 and "has no failed jobs or executions to retry" in refused.stderr


def test_a_retry_is_planned_by_the_devices_own_program_set_limit(featured_store, garnet):
    garnet.set(max_executables=5)  # the device's document says 5 executables a program set
    garnet.set_shape(failed={i: "device error" for i in (0, 2, 4)})  # of each task: executions 0, 2, 4, 5, 7, 9
    run = _submit(featured_store, "iqm_garnet")
    _collect(featured_store)
    assert [j.executions for j in featured_store.ledger.jobs(run.id)] == [5, 5]
    garnet.set_shape(failed={})
    runs.retry_run(featured_store, run.id, approve=approve)
    retries = featured_store.ledger.jobs(run.id)[2:]
    assert [tuple(j.execution_indices) for j in retries] == [(0, 2, 4, 5, 7), (9,)]
    _collect(featured_store)
    _assert_right_counts(featured_store, run.id, 10)


def test_a_failed_program_set_keeps_what_ran_and_is_not_billed(featured_store, garnet):
    garnet.set_shape(failed={0: "compilation of executable 0 timed out", 4: "device error"}, failed_status="FAILED", action_metadata=False)
    run = _submit(featured_store, "iqm_garnet")
    _collect(featured_store)
    (job,) = featured_store.ledger.jobs(run.id)
    assert job.state is JobState.COLLECTED and featured_store.results.count_samples(run.id) == 8
    assert job.cost_usd == 0.0  # a FAILED task is not billed (braket.tracking)
    assert {f["execution"] for f in _failed_samples(featured_store, run.id)} == {0, 4}
    _assert_right_counts(featured_store, run.id, 8)


def test_a_program_set_whose_every_executable_failed_fails_its_job_with_the_reasons(featured_store, garnet):
    garnet.set_shape(failed={i: "device error" for i in range(10)}, failed_status="FAILED")
    run = _submit(featured_store, "iqm_garnet")
    result = _collect(featured_store)
    (job,) = featured_store.ledger.jobs(run.id)
    assert job.state is JobState.FAILED and result.failed_jobs == 1 and "10 of 10 execution(s) failed" in job.error
    assert featured_store.results.count_samples(run.id) == 0 and len(_failed_samples(featured_store, run.id)) == 10
    garnet.set_shape(failed={}, failed_status="COMPLETED")
    runs.retry_run(featured_store, run.id, approve=approve)  # the whole job again
    _collect(featured_store)
    _assert_right_counts(featured_store, run.id, 10)


def test_a_failed_task_without_action_metadata_or_results_keeps_its_reason(featured_store, braket_cloud):
    """The SDK's status path raises KeyError('actionMetadata') here; qhw reads GetQuantumTask itself."""
    braket_cloud.set_shape(action_metadata=False)
    braket_cloud.set(fail_tasks="Task failed: device went offline")
    run = _submit(featured_store, "braket_sv1")
    _collect(featured_store)
    (job,) = featured_store.ledger.jobs(run.id)
    assert job.state is JobState.FAILED and job.error == "Task failed: device went offline" and job.cost_usd == 0.0
    # The shape is the one the SDK's own status path cannot read.
    from braket.aws import AwsQuantumTask

    from qhw.backends import _braket_aws

    with pytest.raises(KeyError, match="actionMetadata"):
        AwsQuantumTask(job.provider_job_id, aws_session=_braket_aws.aws_session("us-east-1")).state()


@pytest.mark.parametrize(
    "defect, message",
    [
        ("duplicate_index", "two executable results have inputsIndex"),
        ("index_out_of_range", "outside 0..9"),
        ("missing_qubit", "is missing from the measuredQubits"),
    ],
)
def test_a_result_that_cannot_be_mapped_fails_its_job_and_stores_nothing(featured_store, garnet, defect, message):
    garnet.set_shape(defect=defect)
    run = _submit(featured_store, "iqm_garnet")
    _collect(featured_store)
    (job,) = featured_store.ledger.jobs(run.id)
    assert job.state is JobState.FAILED and message in job.error and "cannot be mapped" in job.error
    assert featured_store.results.count_rows(run.id) == 0


@pytest.mark.parametrize("milliseconds, billed_seconds", [(1500, 3.0), (12_000, 12.0), (None, None)])
def test_a_managed_simulators_program_set_is_priced_by_its_reported_time(featured_store, braket_cloud, milliseconds, billed_seconds):
    braket_cloud.set_shape(simulator_ms=milliseconds)
    run = _submit(featured_store, "braket_sv1")
    _collect(featured_store)
    (job,) = featured_store.ledger.jobs(run.id)
    assert job.state is JobState.COLLECTED
    if billed_seconds is None:
        assert job.duration_seconds is None and job.cost_usd is None  # unknown, never $0
    else:
        assert job.duration_seconds == pytest.approx(milliseconds / 1000)
        assert job.cost_usd == pytest.approx(billed_seconds / 60 * 0.075)


# --- Braket devices without program sets, and qubit labels ---------------------------------------------


def test_a_qpu_without_program_sets_maps_its_columns_by_measured_qubits(featured_store, braket_cloud):
    from braket.device_schema import DeviceActionType

    document = garnet_like()
    document.action.pop(DeviceActionType.OPENQASM_PROGRAM_SET)
    braket_cloud.set(qpu_properties=document.json())
    braket_cloud.set_shape(measured_qubits="descending", extra_measured=1)
    run = _submit(featured_store, "iqm_garnet", limit=4)
    assert [j.executions for j in featured_store.ledger.jobs(run.id)] == [1] * 4
    _collect(featured_store)
    _assert_right_counts(featured_store, run.id, 4)


def test_a_packed_circuit_on_a_qpu_without_program_sets_carries_a_sample_a_copy(featured_store, braket_cloud):
    from braket.device_schema import DeviceActionType

    document = garnet_like(11)
    document.action.pop(DeviceActionType.OPENQASM_PROGRAM_SET)
    braket_cloud.set(qpu_properties=document.json())
    braket_cloud.set_shape(measured_qubits="ascending", extra_measured=1)
    run = runs.submit(featured_store, backend_name="iqm_garnet", split="test", limit=4, shots=1000, approve=approve, pack=2).run
    # One bound circuit a task, two samples in it.
    assert run.copies == 2 and [j.executions for j in featured_store.ledger.jobs(run.id)] == [2, 2]
    _collect(featured_store)
    assert len(braket_cloud.tasks) == 2
    _assert_right_counts(featured_store, run.id, 4)


def test_a_device_numbered_from_one_is_described_by_its_own_labels(featured_store, garnet, tmp_path):
    from device_documents import write_garnet_like

    # With readout calibration: its circuit is placed on the run's qubits by their labels.
    hardware = runs.submit(featured_store, backend_name="iqm_garnet", split="test", limit=4, shots=1000, mitigate="readout", approve=approve).run
    emulated = runs.submit(
        featured_store, backend_name=f"braket_emulator:{write_garnet_like(tmp_path / 'garnet.json')}", split="test", limit=4, shots=200
    ).run
    for run in (hardware, emulated):
        details = run_details(featured_store, run.id)
        assert set(details.layout) <= set(range(1, 7)) and 0 not in details.layout
        assert [q.qubit for q in details.calibration.qubits] == list(details.layout)
        shown = json.loads(cli("runs", "show", str(run.id), "--json").stdout)
        assert shown["layout"] == [q["qubit"] for q in shown["calibration"]["qubits"]]
    _collect(featured_store)
    _assert_right_counts(featured_store, hardware.id, 4)
    assert set(featured_store.results.calibration(hardware.id)) == {(0, 0), (0, 31)}  # all 0, all 1: ideal readout
    assert featured_store.results.calibration(hardware.id)[(0, 31)][31] == 1000


# --- Braket prices from the device's own document -----------------------------------------------------


def test_a_devices_own_price_is_used_and_the_run_says_where_it_came_from(featured_store, braket_cloud, home):
    from braket.device_schema.device_service_properties_v1 import DeviceCost

    document = garnet_like()
    document.service.deviceCost = DeviceCost(price=0.002, unit="shot")
    braket_cloud.set(qpu_properties=document.json())
    seen = []
    run = runs.submit(featured_store, backend_name="iqm_garnet", split="test", limit=10, shots=100, approve=lambda e: seen.append(e) or True).run
    # The guard first passed the table's estimate; the device's own (higher) price is asked about again.
    assert [e.usd for e in seen] == [pytest.approx(0.30 + 1000 * 0.00145), pytest.approx(0.30 + 1000 * 0.002)]
    assert run.cost_estimate_usd == pytest.approx(0.30 + 1000 * 0.002)
    assert dict(run_details(featured_store, run.id).prices) == {
        "braket_per_shot_usd.iqm_garnet": "the device's own properties document (service.deviceCost)"
    }
    _collect(featured_store)
    assert featured_store.ledger.jobs(run.id)[0].cost_usd == pytest.approx(0.30 + 1000 * 0.002)
    with pytest.raises(Exception, match=r"exceeds --max-cost \$2\.00"):
        runs.submit(featured_store, backend_name="iqm_garnet", split="test", limit=10, shots=100, max_cost=2.0, approve=approve)

    (home / "prices.toml").write_text("[braket_per_shot_usd]\niqm_garnet = 0.001\n")  # the user's contract wins
    override = _submit(featured_store, "iqm_garnet", shots=100)
    assert override.cost_estimate_usd == pytest.approx(0.30 + 1000 * 0.001)
    (price, source), = run_details(featured_store, override.id).prices
    assert price == "braket_per_shot_usd.iqm_garnet" and source.startswith("your price file")


# --- SearchQuantumTasks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("refuse_created_at", [False, True])
def test_a_lost_submit_answer_is_found_by_a_search_botocore_accepts(featured_store, braket_cloud, refuse_created_at):
    """The createdAt filter's value is ISO 8601 in UTC (botocore's model types it
    String256 and names no timestamp form); should AWS refuse it, the search
    goes by device alone."""
    import re

    braket_cloud.set(refuse_created_at=refuse_created_at)
    braket_cloud.inject("submit", "server", when="after")  # the task is created, the answer lost
    run = _submit(featured_store, "braket_sv1")
    (job,) = featured_store.ledger.jobs(run.id)
    assert job.state is JobState.QUEUED and len(braket_cloud.tasks) == 1
    searches = braket_cloud.requests("SearchQuantumTasks")
    created = [f["values"][0] for search in searches for f in search["filters"] if f["name"] == "createdAt"]
    assert created and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", value) for value in created)
    assert any([f["name"] for f in search["filters"]] == ["deviceArn"] for search in searches) == refuse_created_at
    _collect(featured_store)
    _assert_right_counts(featured_store, run.id, 10)


# --- IBM Quantum ---------------------------------------------------------------------------------------------


def test_ibm_usage_stays_unknown_until_ibm_says_it_is_final(featured_store, ibm_cloud):
    ibm_cloud.set(usage_final_after=3)  # IBM answers "pending" (and 0 s) to three reads: collect reads twice, poll once
    run = _submit(featured_store, "ibm_fez", limit=5, shots=100)
    collected = _collect(featured_store)
    (job,) = featured_store.ledger.jobs(run.id)
    assert job.state is JobState.COLLECTED and job.usage_pending and collected.usage_pending == 1
    assert job.quantum_seconds is None and job.cost_usd is None  # never 0 s and $0.00
    assert job.provider_estimate_seconds == pytest.approx(1.1)  # IBM's own estimate, known before its usage is final
    (overview,) = [o for o in run_overviews(featured_store) if o.run == run.id]
    assert overview.cost.actual_usd is None and "has not reported the final usage of 1 job(s)" in overview.cost.actual_text
    polled = json.loads(cli("poll", "--json").stdout)  # asks again: still pending
    assert polled["jobs_usage_pending"] == 1 and featured_store.ledger.job(job.id).cost_usd is None
    shown = json.loads(cli("runs", "show", str(run.id), "--json").stdout)  # asks again: final now
    assert shown["actual_cost_usd"] == pytest.approx(1.25 * 1.60)
    assert shown["provider_estimated_quantum_seconds"] == pytest.approx(1.1)
    job = featured_store.ledger.job(job.id)
    assert not job.usage_pending and job.quantum_seconds == 1.25 and job.cost_usd == pytest.approx(1.25 * 1.60)


def test_ibm_job_listing_lag_is_waited_out_before_anything_is_sent_again(featured_store, ibm_cloud, monkeypatch):
    from qhw.store.ledger import Ledger

    monkeypatch.setenv("QHW_IBM_LISTING_GRACE_SECONDS", "3")
    ibm_cloud.set(listing_delay=3600)  # IBM has the job, but its listing does not show it yet

    def die(*_args, **_kwargs):
        raise KeyboardInterrupt  # the answer came, the process ended before the commit

    with monkeypatch.context() as patch:
        patch.setattr(Ledger, "record_submission", die)
        with pytest.raises(KeyboardInterrupt):
            _submit(featured_store, "ibm_fez", limit=5, shots=100)
    (job,) = featured_store.ledger.jobs()
    asked = []
    result = runs.collect(featured_store, approve=lambda *args: asked.append(args) or True)
    job = featured_store.ledger.job(job.id)
    assert job.state is JobState.PENDING and "job listing may lag" in job.error and not asked  # not even offered
    assert result.waiting_on_errors == 1 and len(ibm_cloud.jobs) == 1
    ibm_cloud.set(listing_delay=0)  # the listing catches up
    _collect(featured_store)
    assert featured_store.ledger.job(job.id).state is JobState.COLLECTED and len(ibm_cloud.jobs) == 1 and not asked


def test_an_ibm_submission_that_never_arrived_is_offered_again_once_the_grace_is_over(featured_store, ibm_cloud, monkeypatch):
    from qhw.worker import RunWorker

    monkeypatch.setenv("QHW_IBM_LISTING_GRACE_SECONDS", "2")

    def die(*_args, **_kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(RunWorker, "_send", die)  # the row says "submitting"; IBM got nothing
        with pytest.raises(KeyboardInterrupt):
            _submit(featured_store, "ibm_fez", limit=5, shots=100)
    asked = []
    runs.collect(featured_store, approve=lambda *args: asked.append(args) or False)
    assert not asked  # within the grace: IBM's "no such job" is no answer yet
    time.sleep(2.1)
    runs.collect(featured_store, approve=lambda *args: asked.append(args) or False)
    assert len(asked) == 1 and ibm_cloud.jobs == {}


@pytest.mark.parametrize("defect, message", [("two_pubs", "holds 2 pubs"), ("short", "the job sent 5 parameter rows")])
def test_an_ibm_result_that_does_not_fit_the_pub_fails_its_job(featured_store, ibm_cloud, defect, message):
    ibm_cloud.set(result_defect=defect)
    run = _submit(featured_store, "ibm_fez", limit=5, shots=100)
    _collect(featured_store)
    (job,) = featured_store.ledger.jobs(run.id)
    assert job.state is JobState.FAILED and message in job.error and featured_store.results.count_rows(run.id) == 0


def test_a_packed_program_set_maps_each_copy_by_its_measured_qubits(featured_store, braket_cloud):
    """Two copies on an 11-qubit line numbered from 1, results sorted by qubit:
    each copy's columns are found by its own qubits' labels."""
    braket_cloud.set(qpu_properties=garnet_like(11).json())
    braket_cloud.set_shape(measured_qubits="descending")
    run = runs.submit(featured_store, backend_name="iqm_garnet", split="test", limit=10, shots=1000, approve=approve, pack=2).run
    assert run.copies == 2 and len(set(run.layout)) == 10 and min(run.layout) >= 1
    _collect(featured_store)
    (task,) = braket_cloud.tasks.values()
    assert task["executables"] == 5  # ten samples, two an executable
    _assert_right_counts(featured_store, run.id, 10)


def test_a_braket_qpu_is_packed_offline_by_the_document_an_earlier_run_kept(featured_store, braket_cloud):
    """Before the network, a QPU's copies are placed by its document as an
    earlier run kept it; with none, the estimate assumes one copy."""
    from qhw.errors import ConfigError

    braket_cloud.set(qpu_properties=garnet_like(11).json())
    pack_auto = dict(backend_name="iqm_garnet", split="test", limit=10, shots=1000, approve=approve, pack="auto", max_cost=0.01)
    with pytest.raises(ConfigError, match=r"10,000 shots"):  # no document yet: one copy an execution
        runs.submit(featured_store, **pack_auto)
    assert braket_cloud.requests("GetDevice") == []  # refused before the network
    runs.submit(featured_store, backend_name="iqm_garnet", split="test", limit=10, shots=1000, approve=approve)  # keeps the document
    asked = len(braket_cloud.requests("GetDevice"))
    with pytest.raises(ConfigError, match=r"5,000 shots"):  # two copies on the 11-qubit line: 5 executions
        runs.submit(featured_store, **pack_auto)
    assert len(braket_cloud.requests("GetDevice")) == asked


def test_a_packed_program_set_with_a_failed_executable_retries_its_samples_packed(featured_store, braket_cloud):
    """Executable 1 of a packed program set fails: both its samples are missing,
    named, and billed for nothing; the retry sends exactly them, in one packed executable."""
    braket_cloud.set(qpu_properties=garnet_like(11).json())
    braket_cloud.set_shape(failed={1: "qubit 7 readout out of calibration"})
    run = runs.submit(featured_store, backend_name="iqm_garnet", split="test", limit=10, shots=1000, approve=approve, pack=2).run
    result = _collect(featured_store)
    (job,) = featured_store.ledger.jobs(run.id)
    assert result.failed_executions == 2 and featured_store.results.count_samples(run.id) == 8
    assert {f.execution for f in featured_store.ledger.execution_failures(run.id)} == {2, 3}
    assert job.cost_usd == pytest.approx(0.30 + 4 * 1000 * 0.00145)  # the 4 executables that ran, not 8 samples
    braket_cloud.set_shape(failed={})
    runs.retry_run(featured_store, run.id, approve=approve)
    _collect(featured_store)
    retry = featured_store.ledger.jobs(run.id)[1]
    assert retry.indices is None and (retry.execution_start, retry.executions) == (2, 2)
    assert list(braket_cloud.tasks.values())[-1]["executables"] == 1
    _assert_right_counts(featured_store, run.id, 10)
