"""Devices that describe themselves: calibration snapshots kept with runs,
actual costs, runs list/show, comparisons of several devices, Braket emulation."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner

from qhw import runs
from qhw.cli import main
from qhw.jobstates import JobState
from qhw.overview import run_details, run_overviews
from qhw.store.arrays import load_arrays

from conftest import circuit_distribution, qhw_env, run_qhw
from device_documents import CALIBRATED_AT, CZ_FIDELITY, RB_FIDELITY, READOUT_FIDELITY, T1_US, garnet_like, write_garnet_like


def approve(*_args) -> bool:
    return True


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


# --- calibration snapshots ---------------------------------------------------------------------


def test_a_fake_device_run_keeps_the_devices_calibration_of_its_own_qubits(featured_store, home):
    from qiskit_ibm_runtime.fake_provider import FakeLimaV2

    run = runs.submit(featured_store, backend_name="fake_lima", split="test", limit=5, shots=100).run
    assert run.layout == (4, 3, 2, 1, 0) and run.device_kind == "emulation"
    snapshot, recorded = featured_store.ledger.device_snapshot(run.id)
    device = FakeLimaV2()
    target = device.target
    assert [q.qubit for q in snapshot.qubits] == [4, 3, 2, 1, 0]  # in the feature map's order
    for figures in snapshot.qubits:
        q = figures.qubit
        assert figures.t1_us == pytest.approx(target.qubit_properties[q].t1 * 1e6)
        assert figures.t2_us == pytest.approx(target.qubit_properties[q].t2 * 1e6)
        assert figures.readout_error == pytest.approx(target["measure"][(q,)].error)
        assert figures.gate_error == pytest.approx(target["sx"][(q,)].error)
    expected_pairs = {(a, b): target["cx"][(a, b)].error for a, b in target["cx"]}  # fake_lima uses all five qubits
    assert {p.qubits: p.error for p in snapshot.pairs} == pytest.approx(expected_pairs)
    assert all(p.gate == "cx" for p in snapshot.pairs)
    assert snapshot.calibrated_at == device.properties().last_update_date
    assert recorded >= run.created_at
    # A new process reads the same, from the database alone.
    shown = run_qhw(qhw_env(home), "runs", "show", str(run.id), "--json")
    assert shown.returncode == 0, shown.stderr
    calibration = json.loads(shown.stdout)["calibration"]
    assert [q["qubit"] for q in calibration["qubits"]] == [4, 3, 2, 1, 0]
    assert calibration["qubits"][0]["readout_error"] == pytest.approx(target["measure"][(4,)].error)
    assert calibration["age_at_run_hours"] == pytest.approx((run.created_at - snapshot.calibrated_at).total_seconds() / 3600)


def test_a_braket_qpu_run_keeps_its_device_document_as_returned(featured_store, braket_cloud, tmp_path):
    document = garnet_like()
    braket_cloud.set(qpu_properties=document.json())
    run = runs.submit(featured_store, backend_name="iqm_garnet", split="test", limit=5, shots=100, approve=approve).run
    assert run.device_kind == "hardware"
    snapshot, _ = featured_store.ledger.device_snapshot(run.id)
    assert json.loads(snapshot.properties) == json.loads(document.json())
    assert snapshot.calibrated_at == CALIBRATED_AT
    assert [q.qubit for q in snapshot.qubits] == [1, 2, 3, 4, 5]  # the device's own labels
    assert all(q.t1_us == T1_US for q in snapshot.qubits)
    assert all(q.readout_error == pytest.approx(1 - READOUT_FIDELITY) for q in snapshot.qubits)
    assert all(q.gate_error == pytest.approx(1 - RB_FIDELITY) for q in snapshot.qubits)
    assert [(p.qubits, p.gate) for p in snapshot.pairs] == [((1, 2), "cz"), ((2, 3), "cz"), ((3, 4), "cz"), ((4, 5), "cz")]
    assert all(p.error == pytest.approx(1 - CZ_FIDELITY) for p in snapshot.pairs)
    # Exported, it is a document braket_emulator takes, named after its device.
    out = tmp_path / "garnet-at-run-time.json"
    shown = cli("runs", "show", str(run.id), "--properties-out", str(out))
    assert shown.exit_code == 0, shown.output
    from qhw.backend import get_backend

    emulator = get_backend(f"braket_emulator:{out}")
    assert emulator.kind == "emulation" and emulator.description.startswith("emulation of iqm_garnet")


def test_an_ideal_simulator_keeps_no_calibration(featured_store):
    run = runs.submit(featured_store, backend_name="aer_simulator", split="test", limit=5, shots=100).run
    assert featured_store.ledger.device_snapshot(run.id) is None
    assert run_details(featured_store, run.id).calibration is None
    result = cli("runs", "show", str(run.id), "--properties-out", "x.json")
    assert result.exit_code == 1 and "kept no device properties document" in result.stderr


# --- actual cost -------------------------------------------------------------------------------------


def _collect(store, passes=4):
    for _ in range(passes):
        runs.collect(store)


def test_ibm_jobs_are_priced_from_the_usage_ibm_reports(featured_store, ibm_cloud, monkeypatch):
    import qhw.backends.ibm as ibm_adapter

    monkeypatch.setattr(ibm_adapter, "MAX_EXECUTIONS_PER_JOB", 5 * 100)  # 2 jobs of 5 circuits
    run = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=10, shots=100, approve=approve).run
    _collect(featured_store)
    jobs = featured_store.ledger.jobs(run.id)
    assert [j.cost_usd for j in jobs] == [pytest.approx(1.25 * 1.60)] * 2  # 1.25 QPU s a job at $1.60/s
    (overview,) = [o for o in run_overviews(featured_store) if o.run == run.id]
    assert overview.cost.actual_usd == pytest.approx(4.0) and overview.cost.actual_text == "$4.00"
    # The estimate by IBM's documented formula, recomputed from the device's own
    # figures: 2 s a job, plus (rep_delay + the compiled circuit's duration) a shot.
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_ibm_runtime.fake_provider import FakeFez

    from qhw.circuits import feature_map

    device = FakeFez()
    compiled = generate_preset_pass_manager(optimization_level=1, target=device.target, seed_transpiler=0).run(feature_map())
    per_shot = device.default_rep_delay + compiled.estimate_duration(device.target)
    assert overview.cost.estimate_usd == pytest.approx((2 * 2.0 + 10 * 100 * per_shot) * 1.60)


def test_a_job_without_reported_usage_has_an_unknown_cost_never_zero(featured_store, ibm_cloud):
    ibm_cloud.set(usage=None)
    run = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=5, shots=100, approve=approve).run
    _collect(featured_store)
    (job,) = featured_store.ledger.jobs(run.id)
    assert job.state is JobState.COLLECTED and job.cost_usd is None
    cost = run_details(featured_store, run.id).overview.cost
    assert cost.actual_usd is None and cost.actual_text == "unknown"
    listed = json.loads(cli("runs", "list", "--json").stdout)
    assert listed[-1]["actual_cost_usd"] is None and listed[-1]["actual_cost"] == "unknown"


def test_braket_tasks_are_priced_by_what_ran_and_a_failed_task_is_not_billed(featured_store, braket_cloud):
    braket_cloud.set(qpu_properties=garnet_like().json())
    done = runs.submit(featured_store, backend_name="iqm_garnet", split="test", limit=20, shots=100, approve=approve).run
    braket_cloud.set(fail_tasks="QPU calibration in progress")
    failed = runs.submit(featured_store, backend_name="iqm_garnet", split="test", limit=20, shots=100, approve=approve).run
    _collect(featured_store)
    (task,) = featured_store.ledger.jobs(done.id)
    assert task.state is JobState.COLLECTED and task.cost_usd == pytest.approx(0.30 + 20 * 100 * 0.00145)
    (lost,) = featured_store.ledger.jobs(failed.id)
    assert lost.state is JobState.FAILED and lost.cost_usd == 0.0  # as Braket's own cost tracker: no charge
    costs = {o.run: o.cost for o in run_overviews(featured_store)}
    assert costs[done.id].actual_usd == pytest.approx(3.20) and costs[failed.id].actual_usd == 0.0
    assert costs[done.id].estimate_usd == pytest.approx(3.20)


def test_actual_costs_use_the_prices_in_force_at_submit_time(featured_store, ibm_cloud, home):
    run = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=5, shots=100, approve=approve).run
    (home / "prices.toml").write_text("ibm_usd_per_qpu_second = 100.0\n")  # a new contract, after the run
    _collect(featured_store)
    (job,) = featured_store.ledger.jobs(run.id)
    assert job.cost_usd == pytest.approx(1.25 * 1.60)


def test_runs_list_and_show_from_the_command_line(featured_store, ibm_cloud):
    simulated = runs.submit(featured_store, backend_name="aer_simulator", split="test", limit=5, shots=100).run
    paid = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=5, shots=100, approve=approve).run
    listed = json.loads(cli("runs", "list", "--json").stdout)
    assert [row["run"] for row in listed] == [simulated.id, paid.id]
    assert set(listed[0]) == {
        "run", "backend", "device_kind", "device", "created", "split", "shots", "samples_collected", "samples", "jobs",
        "estimated_cost_usd", "actual_cost_usd", "actual_cost", "usage", "usage_unit", "copies", "reuse", "executions",
    }
    assert (listed[0]["actual_cost"], listed[0]["jobs"], listed[0]["samples_collected"]) == ("free", {"collected": 1}, 5)
    assert listed[1]["jobs"] == {"queued": 1} and listed[1]["actual_cost"] == "not yet known (1 job(s) unfinished)"
    shown = json.loads(cli("runs", "show", str(paid.id), "--json").stdout)
    assert {"feature_set", "seed", "layout", "transpiled_depth", "two_qubit_gates", "mitigation", "calibration", "job_errors"} <= set(shown)
    assert shown["two_qubit_gates"] >= 4 and shown["transpiled_depth"] > 5 and len(shown["layout"]) == 5
    table = cli("runs", "list")
    assert table.exit_code == 0 and "ibm_fez" in table.stdout and "free" in table.stdout
    detail = cli("runs", "show", str(paid.id))
    assert detail.exit_code == 0 and "calibration of ibm_fez" in detail.stdout
    assert cli("runs", "show", "99").exit_code == 1


# --- several devices at once ---------------------------------------------------------------------------------


def test_one_simulator_against_two_emulated_devices(featured_store, tmp_path):
    simulator = runs.submit(featured_store, backend_name="aer_simulator", split="all", shots=256).run
    manila = runs.submit(featured_store, backend_name="fake_manila", split="test", shots=256).run
    lima = runs.submit(featured_store, backend_name="fake_lima", split="test", shots=256, mitigate="readout").run
    result = CliRunner().invoke(
        main, ["compare", "--sim", str(simulator.id), "--hw", str(manila.id), "--hw", str(lima.id), "--epochs", "3", "--out", str(tmp_path / "r"), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"simulator", "leaderboard", "comparisons", "report", "report_id"}
    board = {row["run"]: row for row in data["leaderboard"]}
    assert set(board) == {manila.id, lima.id}
    assert board[lima.id]["mitigated_accuracy"] is not None and board[manila.id]["mitigated_accuracy"] is None
    for row in board.values():
        assert row["device_kind"] == "emulation" and row["low"] <= row["transfer_accuracy"] <= row["high"]
        assert 0.5 < row["mean_fidelity"] <= 1 and row["calibration_age_hours"] > 0
        assert row["estimated_cost_per_1000_usd"] is None and row["actual_cost_per_1000_usd"] == 0.0  # free emulations
    assert [c["hardware"]["run"] for c in data["comparisons"]] == [manila.id, lima.id]
    report = tmp_path / "r"
    page = (report / "index.html").read_text()
    assert "Leaderboard" in page and "emulation of ibm_manila" in page and "emulation of ibm_lima" in page
    assert (report / "accuracy_vs_shots.png").exists()
    assert (report / f"run{manila.id}_confusion_transfer.png").exists() and (report / f"run{lima.id}_fidelity_histogram.png").exists()
    assert json.loads((report / "comparison.json").read_text())["leaderboard"] == data["leaderboard"]
    twice = CliRunner().invoke(main, ["compare", "--sim", str(simulator.id), "--hw", str(lima.id), "--hw", str(lima.id)])
    assert twice.exit_code == 1 and "names a run twice" in twice.stderr


# --- Braket emulation ---------------------------------------------------------------------------------------------


def test_the_braket_emulator_is_measurably_noisier_than_the_ideal_local_simulator(featured_store, tmp_path):
    path = write_garnet_like(tmp_path / "garnet.json")
    ideal = runs.submit(featured_store, backend_name="braket_local", split="test", limit=20, shots=2000).run
    emulated = runs.submit(featured_store, backend_name=f"braket_emulator:{path}", split="test", limit=20, shots=2000).run
    assert emulated.device_kind == "emulation" and emulated.device_label.startswith("emulation of iqm_garnet")
    arrays = load_arrays(featured_store.artifacts, featured_store.catalogue.feature_set(1))

    def distance(run) -> np.ndarray:
        stored = featured_store.results.run_counts(run.id)
        exact = circuit_distribution(arrays.angles_test[stored.sample_index])
        return 0.5 * np.abs(stored.counts[:, 0, :] / 2000 - exact).sum(axis=1)

    # Shot noise alone: about 0.05 at 2,000 shots. The document's readout
    # (5 % a qubit) and CZ (2 %) errors add far more.
    assert distance(ideal).mean() < 0.07
    assert distance(emulated).mean() > distance(ideal).mean() + 0.08
    snapshot, _ = featured_store.ledger.device_snapshot(emulated.id)
    assert snapshot.device == "iqm_garnet" and len(snapshot.qubits) == 5


def test_a_bad_emulator_file_is_one_line(featured_store, tmp_path):
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    cases = ((tmp_path / "missing.json", "cannot read the device properties"), (tmp_path / "notes.json", "not a Braket device properties document"))
    for target, message in cases:
        result = cli("submit", "--backend", f"braket_emulator:{target}", "--split", "test", "--limit", "5")
        assert result.exit_code == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_run_whose_device_document_is_gone_stops_no_other_run_and_can_be_cancelled(featured_store, home, tmp_path, monkeypatch):
    """A braket_emulator: run is named by its document's object in the
    artifact store: the file it was read from may go; the object gone from
    the store, the run waits, said when asked for, and can be cancelled."""
    from qhw.errors import ArtifactError
    from qhw.worker import RunWorker

    document = write_garnet_like(tmp_path / "garnet.json")

    def cut_off(self, job):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:  # two runs whose submissions were cut off before any job ran
        patch.setattr(RunWorker, "_run_here", cut_off)
        for backend in (f"braket_emulator:{document}", "aer_simulator"):
            with pytest.raises(KeyboardInterrupt):
                runs.submit(featured_store, backend_name=backend, split="test", limit=10, shots=20)
    emulated, simulated = featured_store.ledger.runs()
    assert emulated.backend.startswith("braket_emulator:sha256:")
    document.unlink()  # the device file moved away: the run does not need it
    digest = emulated.backend.split("sha256:")[1]
    (home / "artifacts" / "sha256" / digest[:2] / digest).unlink()  # and its object gone from the store

    sleeps, real_sleep = [], runs.time.sleep

    def sleep(seconds: float) -> None:
        if seconds != 0.01:  # not collect's polling (a local job waited for in short sleeps)
            return real_sleep(seconds)
        sleeps.append(seconds)
        if len(sleeps) > 3:
            raise AssertionError("collect --wait kept polling jobs that waiting cannot help")

    monkeypatch.setattr(runs.time, "sleep", sleep)
    result = runs.collect(featured_store, wait=True, interval=0.01)
    assert (result.samples, result.pending_jobs) == (10, 1) and sleeps == []  # nothing to wait for: no second poll
    assert [job.state for job in featured_store.ledger.jobs(simulated.id)] == [JobState.COLLECTED]
    assert [job.state for job in featured_store.ledger.jobs(emulated.id)] == [JobState.PENDING]
    with pytest.raises(ArtifactError, match=r"its object sha256:\w{12}\.\.\. is missing from the artifact store"):
        runs.collect(featured_store, run_id=emulated.id)  # asked for by name: said
    (outcome,) = runs.cancel_run(featured_store, emulated.id)
    assert outcome.outcome == "cancelled"
    assert [job.state for job in featured_store.ledger.jobs(emulated.id)] == [JobState.CANCELLED]
    assert runs.collect(featured_store).pending_jobs == 0


# --- the migration ----------------------------------------------------------------------------------------------------


def test_the_migration_describes_the_runs_of_a_populated_database(tmp_path):
    from sqlalchemy import create_engine, text

    from qhw import schema
    from qhw.store import Store

    url = f"sqlite:///{tmp_path}/v4.db"
    engine = create_engine(url)
    now = "2026-01-01 00:00:00"
    with engine.begin() as connection:
        schema.upgrade(connection, "0004")
        connection.execute(text(
            "INSERT INTO feature_sets (id, created_at, dataset, dataset_fingerprint, seed, components, latent_dim, "
            f"epochs, n_train, n_test, reconstruction_mse, artifact_dir) VALUES (1, '{now}', 'mnist-5k', 'ab', 0, 5, 64, 1, 1, 1, 0.1, '/x')"
        ))
        for run_id, backend in ((1, "fake_manila"), (2, "ibm_fez"), (3, "braket_dm")):
            connection.execute(text(
                "INSERT INTO runs (id, created_at, feature_set_id, backend, provider, split, shots, num_qubits, circuits_per_sample, "
                "n_samples, seed, sample_order, transpiled_qasm3, transpiled_qpy, layout) "
                f"VALUES ({run_id}, '{now}', 1, '{backend}', 'x', 'test', 10, 5, 1, 1, 0, x'00', 'q', x'00', '[0,1,2,3,4]')"
            ))
            connection.execute(text(
                "INSERT INTO jobs (id, run_id, position, provider_job_id, state, execution_start, execution_stop, created_at, "
                f"updated_at, idempotency_key, attempt, error_count) VALUES ({run_id}, {run_id}, 0, 'p{run_id}', 'collected', 0, 1, "
                f"'{now}', '{now}', 'key{run_id}', 1, 0)"
            ))
    engine.dispose()
    before, after = Store(url, check_schema=False).upgrade()
    assert (before, after) == ("0004", schema.head_revision())
    store = Store(url)
    kinds = {run.backend: (run.device_kind, run.device_label, run.prices) for run in store.ledger.runs()}
    assert kinds["fake_manila"][:2] == ("emulation", "emulation of ibm_manila (calibrated noise model)")
    assert kinds["ibm_fez"][0] == "hardware" and kinds["braket_dm"][0] == "simulator"
    assert all(prices is None for _, _, prices in kinds.values())
    costs = {o.backend: o.cost for o in run_overviews(store)}
    assert costs["ibm_fez"].actual_usd is None and costs["fake_manila"].actual_text == "free"  # unknown, never 0
    with sqlite3.connect(f"{tmp_path}/v4.db") as connection:
        assert connection.execute("SELECT COUNT(*) FROM device_snapshots").fetchone() == (0,)


def test_the_ibm_estimate_is_ibm_s_formula_with_the_device_s_own_timing(home):
    """IBM's guide: about 2 s a job, plus (rep_delay + circuit duration) for
    each execution and shot; before any network, from the snapshot of the device."""
    from qiskit import transpile
    from qiskit_ibm_runtime.fake_provider import FakeFez

    from qhw.backend import get_backend
    from qhw.circuits import feature_map
    from qhw.pricing import load_prices

    device = FakeFez()
    duration = transpile(feature_map(), target=device.target, optimization_level=1, seed_transpiler=0).estimate_duration(device.target)
    assert 1e-6 < duration < 1e-5 and device.default_rep_delay == pytest.approx(250e-6)
    backend = get_backend("ibm_fez")
    estimate = backend.estimate_cost(backend.profile(offline=True), [100, 100, 37], 1024, load_prices())
    seconds = 3 * 2.0 + 237 * 1024 * (device.default_rep_delay + duration)
    assert estimate.usd == pytest.approx(seconds * 1.60)
    assert "rep_delay 250 us" in estimate.detail and "snapshot of ibm_fez (fake_fez)" in estimate.detail


def test_managed_simulator_actual_cost_and_the_leaderboard_s_cost_columns(featured_store, braket_cloud):
    """docs/how-to/costs.md: a managed simulator is billed its reported execution
    time, at least 3 s a task, by the minute ($0.075 for SV1). The
    leaderboard gives each run's estimated and actual cost a 1,000 samples."""
    from qhw.compare import compare_devices
    from qhw.overview import run_cost

    per_minute, floor = 0.075, 3.0
    simulator = runs.submit(featured_store, backend_name="statevector", split="all", shots=64).run
    braket_cloud.set_shape(simulator_ms=4500)
    slow = runs.submit(featured_store, backend_name="braket_sv1", split="test", shots=64, approve=approve).run
    runs.collect(featured_store, wait=True, interval=0.01)
    braket_cloud.set_shape(simulator_ms=1200)  # below the floor: billed 3 s
    quick = runs.submit(featured_store, backend_name="braket_sv1", split="test", shots=64, approve=approve).run
    runs.collect(featured_store, wait=True, interval=0.01)
    actual, tasks = {}, {}
    for run in (slow, quick):
        jobs = featured_store.ledger.jobs(run.id)
        assert all(job.state is JobState.COLLECTED for job in jobs), [(job.state, job.error) for job in jobs]
        actual[run.id], tasks[run.id] = run_cost(featured_store.ledger.run(run.id), jobs).actual_usd, len(jobs)
    assert actual[slow.id] == pytest.approx(tasks[slow.id] * 4.5 / 60 * per_minute)
    assert actual[quick.id] == pytest.approx(tasks[quick.id] * floor / 60 * per_minute)

    result = compare_devices(featured_store, simulator_run_id=simulator.id, hardware_run_ids=[slow.id, quick.id], epochs=2)
    board = {row.run: row for row in result.leaderboard}
    for run in (slow, quick):
        assert board[run.id].actual_cost_per_1000_usd == pytest.approx(actual[run.id] / 100 * 1000)
        # The estimate: its tasks at the 3 s floor (100 x 64 shots at 0.1 ms a shot is 0.64 s).
        assert board[run.id].estimated_cost_per_1000_usd == pytest.approx(tasks[run.id] * floor / 60 * per_minute * 10)
    # Billed by time, not shots: every point of SV1's shots curve is at the floor.
    (comparison, _) = result.comparisons
    assert all(point.cost_usd == pytest.approx(tasks[slow.id] * floor / 60 * per_minute) for point in comparison.shots_curve)


def test_a_qpu_run_s_shots_curve_prices_each_point_at_its_own_shots(featured_store, braket_cloud):
    """docs/how-to/costs.md: a Braket QPU task costs $0.30 plus its shots ($0.00145 a
    shot on Garnet); the shots curve prices each point as the run it stands
    for would have cost, and the run's actual cost is its tasks' fees and shots."""
    from qhw.backend import get_backend
    from qhw.compare import compare
    from qhw.overview import run_cost

    per_task, per_shot = 0.30, 0.00145
    simulator = runs.submit(featured_store, backend_name="statevector", split="all", shots=64).run
    braket_cloud.set(qpu_properties=garnet_like().json())
    qpu = runs.submit(featured_store, backend_name="iqm_garnet", split="test", shots=64, approve=approve).run
    runs.collect(featured_store, wait=True, interval=0.01)
    jobs = featured_store.ledger.jobs(qpu.id)
    assert all(job.state is JobState.COLLECTED for job in jobs), [(job.state, job.error) for job in jobs]
    assert run_cost(featured_store.ledger.run(qpu.id), jobs).actual_usd == pytest.approx(len(jobs) * per_task + 100 * 64 * per_shot)
    result = compare(featured_store, simulator_run_id=simulator.id, hardware_run_id=qpu.id, epochs=2)
    # Offline, as compare prices it: the default program-set size until the device is read.
    limits = get_backend("iqm_garnet").profile(offline=True).limits
    assert [point.shots for point in result.shots_curve][-1] == 64
    for point in result.shots_curve:
        tasks = -(-100 // limits.circuits_per_job(point.shots))
        assert point.cost_usd == pytest.approx(tasks * per_task + 100 * point.shots * per_shot), point
