"""--quality auto: flagged copies and positions left out of the jobs not yet sent, and what they ran measured again."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from qhw import runs
from qhw.cli import main
from qhw.records import JobRecord
from qhw.repair import extra_work, planned_work

#: fake_fez, four copies each run twice a shot: eight slots (position * 4 + copy).
PACKED = dict(backend_name="fake_fez", split="all", shots=1024, seed=2, pack=4, reuse=2, workers=1)


@pytest.fixture
def small_jobs(monkeypatch):
    """Jobs of 64 circuits on a fake device, so that a run has several and
    what --quality auto leaves out reaches the ones not yet run."""
    monkeypatch.setattr("qhw.backends.ibm.LOCAL_CIRCUITS_PER_JOB", 64)
    monkeypatch.setattr("qhw.backends._engines.DENSITY_CIRCUITS_PER_JOB", 64)


def _copy_slots(run, copy: int) -> set[int]:
    return {slot for slot in range(run.slots) if slot % run.copies == copy}


def test_a_bad_copy_is_left_out_from_the_first_job_and_what_it_ran_is_measured_again(featured_store, small_jobs):
    clean = runs.submit(featured_store, **PACKED).run
    bad_qubit = clean.copy_layout(0)[2]
    # Leaving one copy of four out makes what is left a third longer: a reserve of half the run.
    run = runs.submit(featured_store, noise=f"bad-qubit={bad_qubit}:0.5", quality="auto", quality_reserve=0.5, **PACKED).run
    circuits = run.n_samples * run.circuits_per_sample
    jobs = featured_store.ledger.jobs(run.id)
    first, *later = [job for job in jobs if not job.repair]
    repairs = [job for job in jobs if job.repair]
    # Flagged on the first job: every later job rode on the other copies only.
    assert run.excluded_slots == tuple(sorted(_copy_slots(run, 0)))
    assert first.slots_used is None and later and all(job.slots_used == (1, 2, 3, 5, 6, 7) for job in later)
    # Planned again in whole packed executions of the 6 slots left (not each job's 64 on 6, its last execution part-filled).
    assert all(job.executions % 6 == 0 for job in later) and sum(job.executions for job in later) == circuits - first.executions
    # What copy 0 measured in the first job (its two slots' share of 64) was measured again, on good slots.
    assert run.repairs == 1 and repairs and all(job.repair == 1 and job.slots_used == (1, 2, 3, 5, 6, 7) for job in repairs)
    repaired = featured_store.results.repaired(run.id)
    assert repaired == sum(job.executions for job in repairs) == 16  # 64 circuits over 8 slots: 2 slots of copy 0
    assert featured_store.results.count_rows(run.id) == circuits  # every circuit once, from its newest measurement
    current = featured_store.results.current_slots(run.id)
    assert not [row for row in current if row[4] == 0]  # nothing read comes from copy 0
    # Superseded counts are kept: the quality still shows what copy 0 did.
    shown = json.loads(CliRunner().invoke(main, ["runs", "show", str(run.id), "--json"]).stdout)
    assert [c["copy"] for c in shown["quality"]["copies"] if c["flagged"]] == [0]
    assert shown["quality"]["circuits"] == circuits + repaired
    assert shown["quality"]["repaired"] == repaired and shown["quality"]["excluded_slots"] == [0, 4]
    assert any(line.startswith("repair 1: 16 circuit(s)") for line in shown["quality"]["log"])
    # Within the reserve: the left-out slots' longer jobs and the repair.
    jobs = featured_store.ledger.jobs(run.id)
    assert 0.3 * planned_work(run, jobs) < extra_work(run, jobs) <= 0.5 * planned_work(run, jobs)
    # Without the bad qubit nothing is left out or repaired.
    plain = runs.submit(featured_store, quality="auto", **PACKED).run
    assert plain.excluded_slots == () and plain.repairs == 0 and featured_store.results.repaired(plain.id) == 0


def test_repaired_counts_are_the_ones_read(featured_store, small_jobs, tmp_path):
    """train, compare and results read the repair's counts, not the superseded ones, and say so."""
    clean = runs.submit(featured_store, **PACKED).run
    run = runs.submit(featured_store, noise=f"bad-qubit={clean.copy_layout(0)[2]}:0.5", quality="auto", quality_reserve=0.5, **PACKED).run
    counts = featured_store.results.run_counts(run.id)
    assert not (counts.copies == 0).any() and (counts.shots_each == 1024).all()  # one measurement a circuit, never two summed
    fidelity, copy, _, _ = featured_store.results.fidelities(run.id, current=True)
    every, every_copy, _, _ = featured_store.results.fidelities(run.id)
    assert fidelity.size == counts.counts.shape[0] * counts.counts.shape[1] and not (copy == 0).any()
    assert fidelity.mean() > every.mean() and (every_copy == 0).sum() > 0
    result = CliRunner().invoke(main, ["results", "--run", str(run.id), "--out", str(tmp_path / "r.npz")])
    assert result.exit_code == 0, result.output
    assert "note: 16 circuit(s) repaired by --quality auto (repair 1: 16 circuit(s) measured again" in result.stderr
    with np.load(tmp_path / "r.npz") as exported:
        assert np.array_equal(exported["counts"], counts.counts)
    trained = CliRunner().invoke(main, ["train", "--run", str(run.id), "--epochs", "1", "--json"])
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["repaired"] == 16


def test_a_repair_beyond_the_reserve_is_not_sent_and_the_run_says_so(featured_store, small_jobs):
    clean = runs.submit(featured_store, **PACKED).run
    run = runs.submit(
        featured_store, noise=f"bad-qubit={clean.copy_layout(0)[2]}:0.5", quality="auto", quality_reserve=0.0, **PACKED
    ).run
    assert run.repairs_done and run.excluded_slots == () and featured_store.results.repaired(run.id) == 0
    assert "beyond its reserve" in run.quality_log
    text = CliRunner().invoke(main, ["runs", "show", str(run.id)]).stdout
    assert "beyond its reserve" in text


def test_a_floor_flags_what_falls_below_it(featured_store, small_jobs):
    """--quality-floor in place of the rule: a floor above every copy flags them all, and nothing is left out."""
    run = runs.submit(featured_store, quality="auto", quality_floor=0.9999, **PACKED).run
    shown = json.loads(CliRunner().invoke(main, ["runs", "show", str(run.id), "--json"]).stdout)["quality"]
    assert shown["rule"] == "floor" and shown["floor"] == 0.9999
    assert all(c["flagged"] for c in shown["copies"])
    assert run.excluded_slots == () and run.repairs_done and "every slot is flagged" in run.quality_log


def test_places_put_a_job_s_executions_on_the_slots_it_uses():
    from datetime import UTC, datetime

    from qhw.jobstates import JobState

    job = JobRecord(1, 1, 0, None, JobState.PENDING, 0, 7, None, datetime.now(UTC), slots_used=(1, 2, 5))
    assert job.places(8).tolist() == [1, 2, 5, 9, 10, 13, 17]
    assert job.sent(8) == 3
    every = JobRecord(1, 1, 0, None, JobState.PENDING, 0, 7, None, datetime.now(UTC))
    assert every.places(8).tolist() == list(range(7)) and every.sent(8) == 1


def test_demultiplexed_reads_each_execution_from_its_own_slot():
    from datetime import UTC, datetime

    from qhw.backend import JobResult
    from qhw.jobstates import JobState
    from qhw.worker import demultiplexed

    job = JobRecord(1, 1, 0, None, JobState.PENDING, 0, 5, None, datetime.now(UTC), slots_used=(1, 3))
    sent = np.arange(3 * 4 * 2).reshape(12, 2)  # 3 packed executions x 4 slots, 2 outcomes
    result = demultiplexed(JobResult(sent, {1: "lost"}), job, 4)
    assert result.counts.tolist() == sent[[1, 3, 5, 7, 9]].tolist()
    assert result.failed == {2: "lost", 3: "lost"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quality", "sometimes"], "'sometimes' is not one of 'auto', 'off'"),
        (["--quality-floor", "1.5"], "must be between 0 and 1"),
        (["--quality-reserve", "-0.1"], "must be a finite number, 0 or more"),
        (["--quality-reserve", "11"], "must be between 0 and 10"),
    ],
)
def test_bad_quality_options_are_one_line(featured_store, args, message):
    result = CliRunner().invoke(main, ["submit", "--backend", "statevector", "--limit", "2", *args])
    assert result.exit_code != 0 and message in result.stderr and "Traceback" not in result.output


def test_at_a_provider_the_repair_rides_on_the_good_slots_and_is_sent_once(featured_store, ibm_cloud, monkeypatch):
    """ibm_fez at the REST boundary: every job was sent at submit; once all are
    collected, collect sends the repair (once), on the slots left, and stores
    each circuit's counts from the slot it rode on."""
    from qhw import repair
    from qhw.jobstates import UNFINISHED_STATES, JobState

    # The fake cloud measures ideally, so nothing falls behind by itself: copy 0 is flagged by hand.
    monkeypatch.setattr(repair, "flagged_slots", lambda run, quality: {s for s in range(run.slots) if s % run.copies == 0})
    monkeypatch.setattr("qhw.backends.ibm.MAX_EXECUTIONS_PER_JOB", 2000)  # 100 shots: 20 executions a job
    options = dict(backend_name="ibm_fez", split="test", shots=100, pack=2, reuse=2, approve=lambda estimate: True)
    shown = []
    plain = runs.submit(featured_store, **options).run
    run = runs.submit(
        featured_store, quality="auto", quality_reserve=1.0, **{**options, "approve": lambda estimate: shown.append(estimate) or True}
    ).run
    # The estimate the user approves holds the reserve.
    assert run.cost_estimate_usd == pytest.approx(2 * plain.cost_estimate_usd) and "a 100% reserve for --quality auto" in shown[0].detail
    for _ in range(10):
        runs.collect(featured_store, run_id=run.id, approve=lambda *args: True)
        if featured_store.ledger.run(run.id).repairs and not featured_store.ledger.jobs(run.id, states=UNFINISHED_STATES):
            break
    run = featured_store.ledger.run(run.id)
    jobs = featured_store.ledger.jobs(run.id)
    repairs = [job for job in jobs if job.repair]
    assert run.repairs == 1 and run.excluded_slots == (0, 2) and repairs
    assert [(job.state, job.slots_used) for job in repairs] == [(JobState.COLLECTED, (1, 3))] * len(repairs)
    assert [len(ibm_cloud.submitted(f"qhw-job={job.id}")) for job in jobs] == [1] * len(jobs), [(j.id, j.repair, j.state) for j in jobs]
    # Copy 0 ran half of the 100 circuits; all of them measured again on copy 1.
    assert featured_store.results.repaired(run.id) == sum(job.executions for job in repairs) == 50
    fidelity, copy, _, _ = featured_store.results.fidelities(run.id, current=True)
    assert fidelity.size == 100 and set(copy.tolist()) == {1}
    assert fidelity.min() > 0.8  # each read from its own slot (a neighbour's or the filler's would be far off)


def test_late_positions_hurt_by_resets_are_flagged_and_repaired(featured_store, small_jobs):
    """fake_fez, two copies each run four times a shot, every reset leaving
    its qubit excited 8 % of the time (--noise reset): the positions after the
    first are flagged, left out, and what they ran is measured again on position 0."""
    options = dict(PACKED, pack=2, reuse=4)
    run = runs.submit(featured_store, noise="reset=0.08", quality="auto", quality_reserve=5.0, **options).run
    shown = json.loads(CliRunner().invoke(main, ["runs", "show", str(run.id), "--json"]).stdout)["quality"]
    flagged = [p["position"] for p in shown["positions"] if p["flagged"]]
    assert flagged and 0 not in flagged
    assert run.excluded_slots == tuple(sorted(p * run.copies + c for p in flagged for c in range(run.copies)))
    assert run.repairs >= 1 and featured_store.results.repaired(run.id) > 0
    current = featured_store.results.current_slots(run.id)
    assert not [row for row in current if row[5] in flagged]  # nothing read comes from a flagged position


def test_a_repair_is_started_once_by_whoever_gets_there_first(featured_store):
    """Two collectors that both saw the run's jobs ended: one starts the repair, the other writes nothing."""
    from qhw.records import JobPlan

    run = runs.submit(featured_store, backend_name="statevector", split="test", limit=4, shots=16, quality="auto").run
    plan = [JobPlan.of([0, 1], repair=1, slots_used=(0,))]
    first = featured_store.ledger.start_repair(run, plan, "repair 1: 2 circuit(s)")
    assert [(job.repair, job.slots_used) for job in first] == [(1, (0,))]
    assert featured_store.ledger.start_repair(run, plan, "repair 1: 2 circuit(s)") is None  # the other collector
    assert featured_store.ledger.start_repair(run, [], "not sent") is None  # nor can it end the repairs
    after = featured_store.ledger.run(run.id)
    assert after.repairs == 1 and not after.repairs_done and after.quality_log == "repair 1: 2 circuit(s)"
    # Leaving slots out is one compare-and-set too: a collector with a stale view of the run changes nothing.
    moved = featured_store.ledger.exclude_slots(after, (), "nothing")
    assert moved is not None and featured_store.ledger.exclude_slots(after, (), "nothing") is None


def test_a_repair_s_failed_executions_are_retried_as_its_own():
    """qhw retry keeps a repair job's repair and slots: its counts supersede what it repairs, on the good slots."""
    from datetime import UTC, datetime

    from qhw.backend import get_backend
    from qhw.jobstates import JobState
    from qhw.planning import plan_retry
    from qhw.records import ExecutionFailureRecord, RunRecord

    backend = get_backend("statevector")
    repair = JobRecord(7, 1, 3, None, JobState.COLLECTED, 4, 9, None, datetime.now(UTC), repair=2, slots_used=(1, 3), round=0)
    failures = [
        ExecutionFailureRecord(
            id=i, run_id=1, job_id=7, attempt=1, purpose="samples", execution=e, reason="lost", recorded_at=datetime.now(UTC), retry_job_id=None
        )
        for i, e in enumerate((5, 8), start=1)
    ]
    run = RunRecord(
        feature_set_id=1, backend="statevector", provider="aer", split="test", shots=16, num_qubits=5, circuits_per_sample=1,
        n_samples=10, seed=0, layout=(), cost_estimate_usd=None, copies=2, reuse=2, id=1, created_at=datetime.now(UTC),
    )
    plan = plan_retry(backend, backend.profile(offline=True), run, [], failures, {7: repair}, None)
    ((job, ids),) = plan.missing
    assert (job.repair, job.slots_used, list(job.indices or range(job.execution_start, job.execution_stop)), ids) == (2, (1, 3), [5, 8], (1, 2))


def test_with_several_workers_the_jobs_handed_out_keep_their_executions(featured_store, small_jobs):
    """Jobs handed to worker processes at the start are never planned again
    under a worker: each job's stored counts are exactly its row's executions."""
    from qhw.records import SPLIT_CODES

    clean = runs.submit(featured_store, **PACKED).run
    options = {**PACKED, "workers": 2}
    run = runs.submit(featured_store, noise=f"bad-qubit={clean.copy_layout(0)[2]}:0.5", quality="auto", quality_reserve=0.5, **options).run
    order = featured_store.ledger.run_circuit(run.id).sample_order
    row_of = {(int(code), int(index)): row for row, (code, index) in enumerate(order)}
    stored: dict[int, set[int]] = {}
    for split, index, circuit, _, _, _, job_id in featured_store.results.current_slots(run.id):
        stored.setdefault(job_id, set()).add(row_of[(SPLIT_CODES[split], index)] * run.circuits_per_sample + circuit)
    jobs = featured_store.ledger.jobs(run.id)
    for job in jobs:
        if job.id in stored:
            assert stored[job.id] <= set(job.execution_indices.tolist()), job
    assert featured_store.results.count_rows(run.id) == run.n_samples * run.circuits_per_sample
    assert run.repairs == 1 and featured_store.results.repaired(run.id) > 0  # copy 0's circuits, measured again after
