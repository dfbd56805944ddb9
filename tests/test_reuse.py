"""Several samples a shot on the same qubits (``--reuse``), rep_delay, IBM's resource units and the plan's allowance.

The known-outcome runs turn every angle to +-pi/2, so that each sample has one
outcome; the signs differ sample to sample (every third angle is flipped), so
a sample stored from the wrong position, copy or bit reads another outcome.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from qhw import circuits, planning, runs
from qhw.backend import get_backend
from qhw.cli import main
from qhw.errors import ConfigError
from qhw.jobstates import JobState

from conftest import expected_index, snapshot


def _positions(store, run_id: int) -> list[tuple[int, int]]:
    from qhw.store.models import ResultRow

    with store.database.transaction(write=False) as session:
        rows = session.execute(select(ResultRow.copy, ResultRow.position).where(ResultRow.run_id == run_id).order_by(ResultRow.id)).all()
    return [tuple(row) for row in rows]


def _assert_each_sample_reads_its_own_outcome(store, arrays, run_id: int, shots: int, *, exact: bool) -> None:
    stored = store.results.run_counts(run_id)
    for index, counts in zip(stored.sample_index, stored.counts[:, 0], strict=True):
        assert int(np.argmax(counts)) == expected_index(arrays.angles_test[index]), index
        if exact:
            assert counts.max() == shots


# --- the circuit ---------------------------------------------------------------------------------------


def test_a_reused_circuit_measures_each_position_into_its_own_register_and_resets_between():
    template = circuits.feature_map(3)
    reused = circuits.packed(template, 2, 3)  # 2 copies, 3 positions: 6 slots
    assert [r.name for r in reused.cregs] == ["meas", *(f"meas{s}" for s in range(1, 6))]
    assert reused.num_qubits == 6 and len(reused.parameters) == 6 * 3
    assert [i.operation.name for i in reused.data].count("reset") == 2 * 6  # between positions, every qubit
    # Slot s = position * copies + copy: position 2 of copy 1 is slot 5, on qubits 3-5.
    copy1 = circuits.copy_circuit(reused, 1, copies=2, reuse=3, compact=True)
    assert copy1.num_qubits == 3 and [r.name for r in copy1.cregs] == ["meas", "meas1", "meas2"]
    assert {p.name.rsplit("[", 1)[0] for p in copy1.parameters} == {"theta_c1", "theta_c3", "theta_c5"}
    last = circuits.position_circuit(copy1, 2)
    assert {p.name.rsplit("[", 1)[0] for p in last.parameters} == {"theta_c5"}
    assert [i.operation.name for i in last.data].count("reset") == 0
    assert [i.operation.name for i in last.data] == [i.operation.name for i in template.data]


@pytest.mark.parametrize("backend_name", ["statevector", "aer_simulator", "braket_local"])
def test_an_ideal_simulator_runs_each_slot_alone_and_every_position_reads_its_own_sample(signed_features, backend_name):
    store, arrays = signed_features
    result = runs.submit(store, backend_name=backend_name, split="test", limit=14, shots=32, pack=2, reuse=3, workers=1)
    run = result.run
    assert (run.copies, run.reuse, result.executions) == (2, 3, 3)  # 14 samples, 6 an execution
    _assert_each_sample_reads_its_own_outcome(store, arrays, run.id, 32, exact=True)
    # Execution e's place p ran as slot p % 6: copy (p % 6) % 2 at position (p % 6) // 2.
    assert _positions(store, run.id) == [((p % 6) % 2, (p % 6) // 2) for p in range(14)]


@pytest.mark.parametrize("engine", ["density", "aer"])
def test_an_emulated_device_runs_each_copy_with_its_positions_on_its_own_qubits(signed_features, engine):
    """fake_fez, packed and reused: mid-circuit measurements and resets run on
    each copy's own physical qubits, with the device's noise, on either engine
    (the noisy engine reads every slot's register of the packed circuit; Aer,
    one pub a copy with its positions' registers)."""
    store, arrays = signed_features
    result = runs.submit(store, backend_name="fake_fez", split="test", limit=10, shots=64, pack=2, reuse=3, workers=1, engine=engine)
    run = result.run
    assert run.engine == engine
    assert (run.copies, run.reuse) == (2, 3) and len(set(run.layout)) == 10
    compiled = circuits.from_qpy(store.ledger.run_circuit(run.id).qpy)
    assert [i.operation.name for i in compiled.data].count("reset") >= 2 * 10  # reset on the device, between positions
    _assert_each_sample_reads_its_own_outcome(store, arrays, run.id, 64, exact=False)


def test_an_ibm_job_reads_every_position_of_every_copy_from_its_own_register_of_one_pub(signed_features, ibm_cloud):
    store, arrays = signed_features
    result = runs.submit(store, backend_name="ibm_fez", split="test", limit=12, shots=64, pack=2, reuse=3, approve=lambda estimate: True)
    for _ in range(6):
        if runs.collect(store).pending_jobs == 0:
            break
    (job,) = ibm_cloud.jobs.values()
    assert job["shots"] == [64] and (result.run.copies, result.run.reuse, result.executions) == (2, 3, 2)
    _assert_each_sample_reads_its_own_outcome(store, arrays, result.run.id, 64, exact=True)


def test_a_failed_reused_ibm_job_is_retried_as_the_run_ran_and_each_sample_reads_its_own(signed_features, ibm_cloud):
    from conftest import assert_ledger_sound

    store, arrays = signed_features
    ibm_cloud.set(fail_next="Error code 8041; the job exceeded the maximum execution time")
    run = runs.submit(store, backend_name="ibm_fez", split="test", limit=12, shots=64, pack=2, reuse=3, approve=lambda e: True).run
    for _ in range(6):
        if runs.collect(store).pending_jobs == 0:
            break
    (failed,) = store.ledger.jobs(run.id)
    assert failed.state is JobState.FAILED
    ibm_cloud.set(fail_next=None)
    runs.retry_run(store, run.id, approve=lambda e: True)
    for _ in range(6):
        if runs.collect(store).pending_jobs == 0:
            break
    assert_ledger_sound(store, ibm_cloud, run.id, attempts=2)
    first, again = ibm_cloud.jobs.values()
    assert again["shots"] == first["shots"] == [64] and store.ledger.run(run.id).slots == 6
    _assert_each_sample_reads_its_own_outcome(store, arrays, run.id, 64, exact=True)
    assert _positions(store, run.id) == [((p % 6) % 2, (p % 6) // 2) for p in range(12)]


def test_a_sample_after_one_that_ends_in_all_ones_reads_as_if_alone(featured_store, monkeypatch):
    """The reset separates samples: position 2 of a copy whose position 1 left
    every qubit in 1 reads what it reads alone (within the emulated device's
    own noise), on fake_manila."""
    from dataclasses import replace

    from qhw import worker
    from qhw.store import arrays as arrays_module

    real = arrays_module.load_arrays
    ones = np.array([-np.pi / 2, np.pi / 2, np.pi / 2, np.pi / 2, np.pi / 2])  # outputs 11111 after the cascade
    zeros = np.full(5, np.pi / 2)  # outputs 00000

    def alternating(artifacts, feature_set):
        arrays = real(artifacts, feature_set)
        test = np.stack([ones if i % 2 == 0 else zeros for i in range(len(arrays.angles_test))])
        return replace(arrays, angles_test=test)

    monkeypatch.setattr(runs, "load_arrays", alternating)
    monkeypatch.setattr(worker, "load_arrays", alternating)
    assert expected_index(ones) == 31 and expected_index(zeros) == 0
    reused = runs.submit(featured_store, backend_name="fake_manila", split="test", limit=10, shots=2000, reuse=2, workers=1).run
    alone = runs.submit(featured_store, backend_name="fake_manila", split="test", limit=10, shots=2000, workers=1).run
    order = featured_store.ledger.run_circuit(reused.id).sample_order
    after_ones = [int(index) for place, (_, index) in enumerate(order) if place % 2 == 1 and int(index) % 2 == 1]
    assert after_ones  # samples of 00000 that ran second in a shot, after a sample of 11111
    by_run = {run.id: featured_store.results.run_counts(run.id) for run in (reused, alone)}
    for index in after_ones:
        second, single = (by_run[run].counts[list(by_run[run].sample_index).index(index), 0] / 2000 for run in (reused.id, alone.id))
        assert 0.5 * np.abs(second - single).sum() < 0.06, (index, second[:4], single[:4])
        assert second[0] > 0.8


def test_readout_mitigation_calibrates_every_position_of_every_copy(featured_store):
    run = runs.submit(featured_store, backend_name="aer_simulator", split="all", limit=6, shots=64, pack=2, reuse=2, mitigate="readout").run
    calibration = featured_store.results.calibration(run.id)
    assert sorted(calibration) == [(slot, state) for slot in range(4) for state in (0, 31)]
    from qhw.mitigation import mitigated_counts

    quasi = mitigated_counts(featured_store, run)
    assert quasi.counts.shape == featured_store.results.run_counts(run.id).counts.shape


def test_an_adaptive_reused_run_of_two_circuits_a_sample_adds_each_round_to_its_own_sample(featured_store, monkeypatch, tmp_path):
    """Adaptive rounds land on shifting slots; a sample of two circuits may
    have them at different positions: each sample's counts are its own."""
    from qhw import rounds

    monkeypatch.setattr(rounds, "unsettled_by_change", lambda before, after, settings: np.arange(len(after.counts)) > 0)
    run = runs.submit(featured_store, backend_name="statevector", split="test", limit=9, shots=128, adaptive=True, pack=2, reuse=2).run
    assert run.rounds_done and run.slots == 4
    stored = featured_store.results.run_counts(run.id)
    assert len(stored.counts) == 9 and (stored.counts.sum(axis=-1) == stored.shots_each).all()


# --- planning ------------------------------------------------------------------------------------------


def test_reuse_auto_weighs_the_time_a_sample_saves_against_the_reset_s_error():
    ibm = get_backend("ibm_fez")
    profile = ibm.profile(offline=True)
    template = circuits.feature_map()
    request = planning.RunRequest(executions=10_000, shots=1024, template=template, pack=None, reuse=None)
    packed = planning.plan_packing(ibm, profile, None, 1, template=template, circuits_to_run=10_000)
    reuse, notes = planning.plan_reuse(ibm, profile, request, packed)
    # rep_delay 250 us against a position of 2.04 + 1.58 us: doubling saves at least a position up to 16.
    position = ibm.shot_timing(profile, template).circuit + profile.reset_seconds
    assert 250e-6 / 32 >= position and reuse == planning.MAX_AUTO_REUSE == 16, notes
    # A device whose copies' readout errors would spoil a position: fake_manila's 18 %.
    manila = get_backend("fake_manila")
    one, notes = planning.plan_reuse(manila, manila.profile(), request, planning.PackingPlan(1, None))
    assert one == 1 and "over 15%" in notes[0]
    # Nothing to save on a simulator, where no device time is billed.
    simulator = get_backend("statevector")
    assert planning.plan_reuse(simulator, simulator.profile(), request, planning.PackingPlan(1, None))[0] == 1


def test_the_estimate_counts_rep_delay_and_every_position_s_circuit_and_reset():
    from qiskit import transpile
    from qiskit_ibm_runtime.fake_provider import FakeFez

    from qhw.pricing import load_prices

    ibm = get_backend("ibm_fez")
    profile = ibm.profile(offline=True)
    device = FakeFez()
    template = circuits.feature_map()
    position = transpile(template, target=device.target, optimization_level=1, seed_transpiler=0).estimate_duration(device.target)
    reset = max(p.duration for p in device.target["reset"].values())
    timing = ibm.shot_timing(profile, template, 8, 100e-6)
    assert timing.rep_delay == 100e-6 and timing.circuit == pytest.approx(8 * position + 7 * reset)
    estimate = ibm.estimate_cost(profile, [10, 5], 1000, load_prices(), timing)
    assert estimate.quantum_seconds == pytest.approx(2 * 2.0 + 15 * 1000 * (100e-6 + 8 * position + 7 * reset))
    assert estimate.usd == pytest.approx(estimate.quantum_seconds * 1.60)


def test_pack_auto_and_reuse_auto_cut_the_paper_s_test_set_on_ibm_fez_to_a_fraction():
    """The figure of the issue, before any network: the 10,000 test images at
    1,024 shots, --pack auto alone against --pack auto --reuse auto."""
    ibm = get_backend("ibm_fez")
    profile = ibm.profile(offline=True)
    from qhw.pricing import load_prices

    def seconds(reuse):
        request = planning.RunRequest(executions=10_000, shots=1024, template=circuits.feature_map(), pack=None, reuse=reuse)
        return planning.plan_run(ibm, profile, request, load_prices()).estimate.quantum_seconds

    packed, reused = seconds(1), seconds(None)
    assert reused < packed / 4, (packed, reused)


# --- IBM: rep_delay, resource units, the plan's allowance ---------------------------------------------


def test_rep_delay_is_sent_stored_and_priced(featured_store, ibm_cloud):
    from qhw.pricing import load_prices

    shorter = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=3, shots=1000, rep_delay=0.0001, approve=lambda e: True)
    (job,) = ibm_cloud.jobs.values()
    assert job["execution"]["rep_delay"] == pytest.approx(0.0001)
    assert featured_store.ledger.run(shorter.run.id).rep_delay == pytest.approx(0.0001)
    default = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=3, shots=1000, approve=lambda e: True)
    assert featured_store.ledger.run(default.run.id).rep_delay is None
    ibm = get_backend("ibm_fez")
    profile = ibm.profile(offline=True)
    template = circuits.feature_map()
    sizes = [job.executions for job in shorter.jobs]
    for result, rep_delay in ((shorter, 0.0001), (default, None)):
        timing = ibm.shot_timing(profile, template, 1, rep_delay)
        expected = ibm.estimate_cost(profile, sizes, 1000, load_prices(), timing)
        assert result.run.cost_estimate_usd == pytest.approx(expected.usd)
    # 150 us less a shot, 3,000 shots: 0.45 QPU s less at $1.60 a second.
    assert default.run.cost_estimate_usd - shorter.run.cost_estimate_usd == pytest.approx(0.45 * 1.60, rel=0.01)


@pytest.mark.parametrize(
    "shape, pending, expected",
    [("seconds", 0, (1.25, None, None, 1.25 * 1.60)), ("both", 0, (1.25, 0.8, "RU", 0.8 * 1.60)), ("ru", 0, (None, 0.8, "RU", 0.8 * 1.60)),
     ("ru", 2, (None, 0.8, "RU", 0.8 * 1.60))],
)
def test_ibm_usage_is_read_in_every_shape_ibm_returns_it(featured_store, ibm_cloud, shape, pending, expected):
    """Seconds only (before RUs), both (IBM's API today), RUs only (after IBM
    drops the time fields), each pending before it is final: the figure is
    stored with its unit, and its cost is unknown (never $0) until final."""
    from qhw.overview import run_overviews

    ibm_cloud.set(usage_shape=shape, usage_final_after=pending)
    run = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=3, shots=10, approve=lambda e: True).run
    for _ in range(6):
        if runs.collect(featured_store).pending_jobs == 0:
            break
    (job,) = featured_store.ledger.jobs(run.id)
    assert job.state is JobState.COLLECTED
    if pending:  # IBM said "pending" while the job was collected: nothing known yet, then final on a later read
        assert job.usage_pending and job.cost_usd is None and job.usage_value is None and job.quantum_seconds is None
        assert [runs.settle_usage(featured_store, run.id) for _ in range(3)][-1] == 0
        (job,) = featured_store.ledger.jobs(run.id)
    seconds, value, unit, cost = expected
    assert (job.quantum_seconds, job.usage_value, job.usage_unit) == (seconds, value, unit) and not job.usage_pending
    assert job.cost_usd == pytest.approx(cost)
    (overview,) = [o for o in run_overviews(featured_store) if o.run == run.id]
    assert overview.to_dict()["usage_unit"] == (unit or "QPU s")
    listed = json.loads(CliRunner().invoke(main, ["runs", "list", "--json"]).stdout)
    assert [row["usage_unit"] for row in listed if row["run"] == run.id] == [unit or "QPU s"]


def test_a_run_larger_than_what_the_instance_has_left_is_refused_naming_both(featured_store, ibm_cloud, home):
    ibm_cloud.set(instance_usage={"plan_id": "open", "usage_consumed_seconds": 599, "usage_limit_seconds": 600, "usage_limit_reached": False})
    before = snapshot(home)
    with pytest.raises(ConfigError, match=r"the estimate, about \d+ QPU s, is more than the 1 QPU s the open plan's instance has left"):
        runs.submit(featured_store, backend_name="ibm_fez", split="test", shots=1024, approve=lambda e: True)
    assert snapshot(home) == before and not ibm_cloud.jobs
    # --max-cost still applies first.
    with pytest.raises(ConfigError, match="exceeds --max-cost"):
        runs.submit(featured_store, backend_name="ibm_fez", split="test", shots=1024, max_cost=0.01, approve=lambda e: True)


@pytest.mark.parametrize("how", ["an older service", "no network"])
def test_an_allowance_that_cannot_be_read_is_said_once_and_the_run_goes_on(featured_store, ibm_cloud, caplog, how):
    import logging

    planning._ALLOWANCE_UNKNOWN.clear()
    if how == "an older service":
        ibm_cloud.set(instance_usage=None)
    else:
        ibm_cloud.inject("allowance", "timeout", times=1)
    with caplog.at_level(logging.WARNING, logger="qhw.planning"):
        run = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=3, shots=10, approve=lambda e: True).run
        runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=3, shots=10, approve=lambda e: True)
    said = [r.getMessage() for r in caplog.records if "allowance was not checked" in r.getMessage()]
    assert len(said) == 1 and len(ibm_cloud.jobs) == 2 and featured_store.ledger.run(run.id)


def test_qhw_account_shows_the_plan_s_usage(featured_store, ibm_cloud):
    ibm_cloud.set(instance_usage={"plan_id": "open", "usage_consumed_seconds": 120, "usage_limit_seconds": 600, "usage_limit_reached": False})
    result = CliRunner().invoke(main, ["account", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["plan"], shown["consumed"], shown["limit"], shown["remaining"], shown["unit"]) == ("open", 120, 600, 480, "QPU s")


def test_an_instance_ibm_says_is_at_its_limit_is_refused_whatever_seconds_it_shows(featured_store, ibm_cloud, home):
    """IBM's usage_limit_reached with 500 s still shown: Runtime only warns
    (qhw hides other libraries' warnings), and the job would not run."""
    ibm_cloud.set(instance_usage={"plan_id": "open", "usage_consumed_seconds": 100, "usage_limit_seconds": 600, "usage_limit_reached": True})
    before = snapshot(home)
    result = CliRunner().invoke(main, ["submit", "--backend", "ibm_fez", "--split", "test", "--limit", "3", "--shots", "10", "--yes"])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 1 and lines[-1] == (
        "Error: ibm says the open plan's instance has reached its usage limit (usage_limit_reached, though it shows 500 QPU s left); "
        "nothing was submitted"
    ), result.stderr
    assert snapshot(home) == before and not ibm_cloud.jobs
    shown = json.loads(CliRunner().invoke(main, ["account", "--json"]).stdout)
    assert (shown["remaining"], shown["limit_reached"]) == (500, True)


def test_usage_figures_that_do_not_add_up_are_unknown_not_believed(featured_store, ibm_cloud, home):
    """A negative consumption showed 1,000,000,600 s left of a 600 s limit.
    Unknown, said once; a paid run goes on, as IBM's own client does (the
    service refuses what exceeds the plan)."""
    planning._ALLOWANCE_UNKNOWN.clear()
    ibm_cloud.set(instance_usage={"plan_id": "open", "usage_consumed_seconds": -1_000_000_000, "usage_limit_seconds": 600, "usage_limit_reached": False})
    shown = CliRunner().invoke(main, ["account", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["remaining"] is None
    assert shown.stderr.strip() == "note: what is left is unknown: IBM's usage answer does not add up: it gives -1000000000 seconds consumed"
    table = CliRunner().invoke(main, ["account"])
    assert "unknown" in table.stdout and "1,000,000" not in table.stdout and "1000000600" not in table.stdout
    submitted = CliRunner().invoke(main, ["submit", "--backend", "ibm_fez", "--split", "test", "--limit", "3", "--shots", "10", "--yes"])
    assert submitted.exit_code == 0, submitted.output
    assert "the plan's allowance was not checked: IBM's usage answer does not add up" in submitted.stderr
    assert len(ibm_cloud.jobs) == 1
    # The figures' own consistency: more left than the limit, or not the limit less the consumption.
    from qhw.backends._ibm_runtime import usage_allowance

    for usage in ({"usage_remaining_seconds": 700, "usage_limit_seconds": 600, "usage_consumed_seconds": 0},
                  {"usage_remaining_seconds": 500, "usage_limit_seconds": 600, "usage_consumed_seconds": 300}):
        assert usage_allowance(usage).remaining is None
    assert usage_allowance({"usage_remaining_seconds": 300, "usage_limit_seconds": 600, "usage_consumed_seconds": 300}).remaining == 300


def test_a_usage_answer_runtime_cannot_read_is_one_line_before_any_row(featured_store, ibm_cloud, home):
    """A usage limit that is a string made Runtime's own usage() raise
    TypeError inside the submission, after the run and job rows were
    written; the job was then marked refused by the provider."""
    ibm_cloud.set(instance_usage={"plan_id": "open", "usage_consumed_seconds": 10, "usage_limit_seconds": "600", "usage_limit_reached": False})
    before = snapshot(home)
    for command in (["submit", "--backend", "ibm_fez", "--split", "test", "--limit", "3", "--shots", "10", "--yes"], ["account"]):
        result = CliRunner().invoke(main, command)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 1 and "Traceback" not in result.stderr, result.output
        assert lines[-1].startswith("Error: IBM Quantum's usage of the instance cannot be read (TypeError: "), lines
        assert len(lines[-1]) < 400
    assert lines[-1].endswith("Runtime cannot submit a job while IBM answers so")
    assert snapshot(home) == before and not ibm_cloud.jobs and featured_store.ledger.runs() == []


# --- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--reuse", "0"], 2, "'--reuse': must be auto or a whole number of samples a shot from 1 to 64, got 0"),
        (["--reuse", "-1"], 2, "got -1"),
        (["--reuse", "1.5"], 2, "got 1.5"),
        (["--reuse", "many"], 2, "got many"),
        (["--rep-delay", "abc"], 2, "'abc' is not a number"),
        (["--rep-delay", "nan"], 2, "must be a finite number of seconds"),
        (["--rep-delay=-0.001"], 2, "must be a finite number of seconds, 0 or more, got -0.001"),
        (["--rep-delay", "2"], 2, "must be between 0 and 1 seconds, got 2"),
        (["--backend", "aer_simulator", "--rep-delay", "0.0001"], 1, "--rep-delay: aer_simulator takes no rep_delay"),
        (["--backend", "ibm_fez", "--rep-delay", "0.001", "--yes"], 1, "ibm_fez takes a rep_delay from 0 to 500 us"),
        (["--backend", "iqm_garnet", "--reuse", "2", "--yes"], 1, "--reuse 2: iqm_garnet cannot measure and reset qubits mid-circuit"),
        (["--backend", "braket_emulator:{device}", "--reuse", "2"], 1, "cannot measure and reset qubits mid-circuit"),
    ],
)
def test_bad_reuse_and_rep_delay_are_one_line_and_write_nothing(featured_store, home, tmp_path, args, code, message):
    from device_documents import write_garnet_like

    document = write_garnet_like(tmp_path / "garnet.json")
    args = [arg.format(device=document) for arg in args]
    if "--backend" not in args:
        args = ["--backend", "aer_simulator", *args]
    before = snapshot(home)
    result = CliRunner().invoke(main, ["submit", "--split", "test", "--limit", "5", *args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert snapshot(home) == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "aer_simulator"], "aer_simulator is free: name a device of the account"),
        (["--backend", "braket_sv1"], "gives no plan allowance for this account"),
        (["--backend", "ibm_fez"], "credentials"),
        (["--backend", "nosuch"], "unknown backend 'nosuch'; `qhw backends` lists them"),
        (["--backend", "fake_manilla"], "unknown backend 'fake_manilla' (did you mean fake_manila"),
    ],
)
def test_qhw_account_refuses_in_one_line(featured_store, home, monkeypatch, args, message):
    for name in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "fake")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake")
    before = snapshot(home)
    result = CliRunner().invoke(main, ["account", *args])
    lines = result.stderr.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1 and message in lines[0], result.stderr
    assert len(lines[0]) < 200  # an unknown name listed every backend once: 409 characters
    assert snapshot(home) == before
