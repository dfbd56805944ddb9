"""Readout mitigation: calibration circuits in the same run, mthree, stored beside raw counts."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import text

from qhw import runs
from qhw.compare import compare
from qhw.errors import ConfigError
from qhw.jobstates import JobState
from qhw.mitigation import METHOD, assignment_matrices, mitigate_counts, mitigated_counts


def test_assignment_matrices_from_the_two_calibration_states():
    zeros, ones = np.zeros(32), np.zeros(32)
    zeros[0b00000], zeros[0b00001], zeros[0b10000] = 90, 6, 4  # qubit 0 flips 6 %, qubit 4 flips 4 %
    ones[0b11111], ones[0b11110] = 80, 20  # qubit 0 decays 20 %
    matrices = assignment_matrices(zeros, ones, 5)
    assert np.allclose(matrices[0], [[0.94, 0.20], [0.06, 0.80]])
    assert np.allclose(matrices[4], [[0.96, 0.00], [0.04, 1.00]])
    assert np.allclose(matrices[2], np.eye(2))
    assert all(np.allclose(m.sum(axis=0), 1) for m in matrices)


def test_mthree_undoes_a_known_readout_error():
    """Counts made by pushing a known distribution through known readout errors come back."""
    rng = np.random.default_rng(0)
    truth = rng.dirichlet(np.ones(32))
    matrices = [np.array([[0.95, 0.08], [0.05, 0.92]]) for _ in range(5)]
    full = matrices[0]
    for matrix in matrices[1:]:
        full = np.kron(matrix, full)  # qubit 0 is the lowest bit of the index
    noisy = full @ truth
    counts = np.round(noisy * 1_000_000)
    mitigated = mitigate_counts(counts[None, None, :], matrices)[0, 0]
    assert np.abs(noisy - truth).sum() > 0.05
    assert np.abs(mitigated - truth).sum() < 0.01
    assert mitigated.sum() == pytest.approx(1.0, abs=1e-6)


def test_a_mitigated_run_measures_its_calibration_on_the_same_qubits(featured_store):
    result = runs.submit(featured_store, backend_name="fake_lima", split="test", limit=20, shots=2000, mitigate="readout")
    assert result.run.mitigation == "readout" and result.run.layout == (4, 3, 2, 1, 0)
    assert [(j.purpose, j.executions, j.state) for j in result.jobs] == [
        ("samples", 20, JobState.COLLECTED),
        ("calibration", 2, JobState.COLLECTED),
    ]
    calibration = featured_store.results.calibration(result.run.id)
    assert sorted(calibration) == [(0, 0), (0, 31)]
    assert calibration[(0, 0)].argmax() == 0 and calibration[(0, 31)].argmax() == 31  # noisy, but mostly right
    assert runs.collect(featured_store).samples == 20  # calibrations are not samples


def test_quasi_probabilities_are_stored_beside_the_raw_counts(featured_store):
    run = runs.submit(featured_store, backend_name="fake_manila", split="test", limit=20, shots=2000, mitigate="readout").run
    raw_before = featured_store.results.run_counts(run.id).counts.copy()
    quasi = mitigated_counts(featured_store, run)
    assert quasi.counts.shape == (20, 1, 32)
    assert np.allclose(quasi.counts.sum(axis=-1), 1, atol=1e-4)
    assert (featured_store.results.run_counts(run.id).counts == raw_before).all()  # raw counts untouched
    with featured_store.transaction() as session:
        stored = session.execute(text("SELECT COUNT(*) FROM mitigated_results WHERE method = :m"), {"m": METHOD}).scalar()
    assert stored == 20
    again = mitigated_counts(featured_store, run)  # read back, not recomputed
    assert np.array_equal(again.counts, quasi.counts)


def test_mitigation_needs_a_calibrated_run(featured_store):
    run = runs.submit(featured_store, backend_name="aer_simulator", split="test", limit=5, shots=64).run
    with pytest.raises(ConfigError, match="--mitigate readout"):
        mitigated_counts(featured_store, run)
    with pytest.raises(ConfigError, match="^mitigate has no item 'zne': it takes readout, twirling, twirling-gates, dd"):
        runs.submit(featured_store, backend_name="aer_simulator", split="test", limit=5, mitigate="zne")


def test_compare_reports_accuracy_with_and_without_mitigation(featured_store):
    simulator = runs.submit(featured_store, backend_name="aer_simulator", split="all", shots=512).run
    device = runs.submit(featured_store, backend_name="fake_lima", split="all", shots=512, mitigate="readout").run
    result = compare(featured_store, simulator_run_id=simulator.id, hardware_run_id=device.id, epochs=10)
    cases = {a.case for a in result.accuracies}
    assert cases == {"simulator", "transfer", "transfer-mitigated", "hardware", "hardware-mitigated", "classical"}
    assert all(a.low <= a.accuracy <= a.high for a in result.accuracies)
    # The mitigated cases classify mthree's correction of each sample's counts by
    # the run's own calibration, not the raw counts: recomputed here from both.
    stored = featured_store.results.run_counts(device.id)
    calibration = featured_store.results.calibration(device.id)
    matrices = assignment_matrices(calibration[(0, 0)], calibration[(0, 31)], 5)
    quasi = mitigated_counts(featured_store, device)
    assert np.allclose(quasi.counts[:, 0], mitigate_counts(stored.counts[:, 0], matrices))
    assert not np.allclose(quasi.counts[:, 0], stored.counts[:, 0] / 512, atol=1e-3)  # fake_lima's readout errors were corrected
    assert not np.array_equal(result.confusion["transfer-mitigated"], result.confusion["transfer"])


# --- the calibration job is an ordinary job ----------------------------------------------------------


def test_a_device_without_program_sets_gets_one_calibration_state_a_task(featured_store, braket_local_without_program_sets):
    result = runs.submit(featured_store, backend_name="braket_local", split="test", limit=3, shots=500, mitigate="readout")
    assert [(j.purpose, j.execution_start, j.executions) for j in result.jobs] == [
        ("samples", 0, 1), ("samples", 1, 1), ("samples", 2, 1), ("calibration", 0, 1), ("calibration", 1, 1),
    ]
    assert all(j.state is JobState.COLLECTED for j in result.jobs)
    calibration = featured_store.results.calibration(result.run.id)
    assert calibration[(0, 0)][0] == 500 and calibration[(0, 31)][31] == 500  # an ideal simulator reads what was prepared


def test_the_estimate_prices_the_calibration_as_the_tasks_it_is(monkeypatch):
    from qhw.backend import BackendLimits, DeviceProfile, get_backend
    from qhw.planning import plan_jobs
    from qhw.pricing import load_prices

    backend = get_backend("iqm_garnet")
    profile = DeviceProfile("iqm_garnet", 20, BackendLimits(max_shots=10_000, max_circuits_per_job=1))  # a device without program sets
    plans = plan_jobs(backend, profile, 3, 100, calibrations=2)
    assert [(p.purpose, p.executions) for p in plans] == [("samples", 1)] * 3 + [("calibration", 1)] * 2
    estimate = backend.estimate_cost(profile, [p.executions for p in plans], 100, load_prices())
    assert estimate.usd == pytest.approx(5 * 0.30 + 5 * 100 * 0.00145)
    assert estimate.detail.startswith("5 task(s)")


def test_the_calibration_jobs_usage_is_stored(featured_store, ibm_cloud):
    run = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=5, shots=100, mitigate="readout", approve=lambda e: True).run
    for _ in range(3):
        runs.collect(featured_store)
    jobs = featured_store.ledger.jobs(run.id)
    assert [(j.purpose, j.state, j.quantum_seconds) for j in jobs] == [
        ("samples", JobState.COLLECTED, 1.25), ("calibration", JobState.COLLECTED, 1.25),
    ]


def test_a_failed_calibration_leaves_compare_without_mitigated_rows(featured_store, ibm_cloud, monkeypatch):
    from qhw.worker import RunWorker

    real_send = RunWorker._send

    def fail_the_calibration(self, job):
        ibm_cloud.set(fail_next="Error code 1517; calibration circuits exceeded the device's duration limit" if job.purpose == "calibration" else None)
        return real_send(self, job)

    monkeypatch.setattr(RunWorker, "_send", fail_the_calibration)
    simulator = runs.submit(featured_store, backend_name="aer_simulator", split="all", shots=256).run
    device = runs.submit(
        featured_store, backend_name="ibm_fez", split="test", shots=256, mitigate="readout", approve=lambda e: True
    ).run
    for _ in range(3):
        collected = runs.collect(featured_store)
    assert collected.failed_jobs == 1 and featured_store.results.count_samples(device.id) == 100
    result = compare(featured_store, simulator_run_id=simulator.id, hardware_run_id=device.id, epochs=2)
    assert {a.case for a in result.accuracies} == {"simulator", "transfer", "classical"}
    (note,) = result.notes
    assert "readout calibration job" in note and "ended failed" in note and "1517" in note
    assert result.to_dict()["notes"] == [note]


# --- IBM's own mitigation for sampler runs ------------------------------------------------------


@pytest.mark.parametrize(
    ("mitigate", "readout", "twirling", "decoupling"),
    [
        (["twirling"], False, {"enable_measure": True, "enable_gates": False}, None),
        (["readout,twirling-gates"], True, {"enable_measure": True, "enable_gates": True}, None),
        (["dd"], False, None, {"enable": True, "sequence_type": "XX"}),
        (["readout", "twirling", "dd=XY4"], True, {"enable_measure": True, "enable_gates": False}, {"enable": True, "sequence_type": "XY4"}),
        (["dd=XpXm"], False, None, {"enable": True, "sequence_type": "XpXm"}),
    ],
)
def test_ibm_s_twirling_and_decoupling_are_sent_as_sampler_options_and_kept(featured_store, ibm_cloud, mitigate, readout, twirling, decoupling):
    """At the REST boundary: the options as the real Runtime client sent them, in every job of the run."""
    import json

    from click.testing import CliRunner

    from qhw.cli import main

    run = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=3, shots=100, mitigate=mitigate, approve=lambda e: True).run
    assert run.mitigation == ("readout" if readout else None)
    expected = ",".join(item for item in ",".join(mitigate).split(",") if item != "readout").replace("dd,", "dd=XX,")
    expected = "dd=XX" if expected == "dd" else expected
    assert run.device_mitigation.text() == expected
    jobs = featured_store.ledger.jobs(run.id)
    for job in jobs:
        (provider_id,) = ibm_cloud.submitted(f"qhw-job={job.id}")
        sent = ibm_cloud.jobs[provider_id]["options"]
        assert sent.get("twirling") == twirling and sent.get("dynamical_decoupling") == decoupling
    assert {job.purpose for job in jobs} == ({"samples", "calibration"} if readout else {"samples"})
    shown = json.loads(CliRunner().invoke(main, ["runs", "show", str(run.id), "--json"]).stdout)
    assert shown["device_mitigation"] == expected and shown["mitigation"] == run.mitigation
    assert expected in CliRunner().invoke(main, ["runs", "show", str(run.id)]).stdout


def test_a_run_without_device_mitigation_sends_none(featured_store, ibm_cloud):
    run = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=3, shots=100, approve=lambda e: True).run
    (provider_id,) = ibm_cloud.submitted(f"qhw-job={featured_store.ledger.jobs(run.id)[0].id}")
    assert "twirling" not in ibm_cloud.jobs[provider_id]["options"] and run.device_mitigation is None


@pytest.mark.parametrize(
    ("backend", "mitigate", "message"),
    [
        ("fake_manila", "twirling", "--mitigate twirling is applied by an IBM device's sampler: fake_manila runs here (Runtime's local mode ignores"),
        ("aer_simulator", "dd", "--mitigate dd=XX is applied by an IBM device's sampler: aer_simulator runs here"),
        ("braket_sv1", "twirling-gates", "--mitigate twirling-gates is IBM's sampler's; braket_sv1 (braket) has no such options"),
        ("ibm_fez", "twirling,twirling-gates", "--mitigate names twirling twice"),
        ("ibm_fez", "dd=XZ", "--mitigate has no item 'dd=XZ'"),
        ("ibm_fez", "zne", "--mitigate has no item 'zne'"),
    ],
)
def test_device_mitigation_where_it_would_do_nothing_is_one_line_and_nothing_written(featured_store, backend, mitigate, message):
    from click.testing import CliRunner

    from qhw.cli import main

    before = [run.id for run in featured_store.ledger.runs()]
    result = CliRunner().invoke(main, ["submit", "--backend", backend, "--split", "test", "--limit", "2", "--mitigate", mitigate, "--yes"])
    assert result.exit_code != 0 and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert [run.id for run in featured_store.ledger.runs()] == before
