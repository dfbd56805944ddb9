"""Real `qhw` processes killed with SIGKILL at distinct points of a run, then recovered.

The fake clouds keep their memory in a file, so that it survives the killed
process as a real cloud's would. After recovery (`qhw collect --wait --yes`):
no sample lost or stored twice, no job sent twice to the provider.
"""

from __future__ import annotations

import signal

import numpy as np
import pytest

from conftest import assert_ledger_sound, assert_rounds_sound, qhw_env, run_qhw
from fake_braket import FakeBraketCloud
from fake_ibm import FakeIBMCloud

pytestmark = pytest.mark.slow

#: IBM: 50 test samples at 100 shots, 20 circuits a job -> 3 jobs (packed: the
#: 100 test samples, 2 copies an execution, 40 samples a job -> 3 jobs; reused:
#: 2 copies of 2 positions, 80 samples a job -> 2 jobs); Braket:
#: the 100 test samples, 25 a program set (the fake device's limit) -> 4 tasks.
SUBMIT = {
    "ibm": ["submit", "--backend", "ibm_fez", "--split", "test", "--limit", "50", "--shots", "100", "--yes"],
    "ibm packed": ["submit", "--backend", "ibm_fez", "--split", "test", "--shots", "100", "--pack", "2", "--yes"],
    "ibm reused": ["submit", "--backend", "ibm_fez", "--split", "test", "--shots", "100", "--pack", "2", "--reuse", "2", "--yes"],
    "braket": ["submit", "--backend", "braket_sv1", "--split", "test", "--shots", "100", "--yes"],
    "aer": ["submit", "--backend", "aer_simulator", "--split", "all", "--shots", "100"],
}
RECOVER = ["collect", "--wait", "--yes", "--interval", "0.02", "--timeout", "120"]

# (cloud, the command that dies, where it dies: a cloud fault or a point inside qhw)
KILLS = {
    "submit, before the provider got the 2nd job": ("submit", dict(op="submit", when="before", after_calls=1)),
    "submit, after the provider accepted the 2nd job": ("submit", dict(op="submit", when="after", after_calls=1)),
    "collect, after fetching counts, before storing them": ("collect", dict(op="result", when="after", after_calls=1)),
    "collect, inside the transaction storing counts": ("collect", "storing:2"),
    "collect, after the commit, before giving the claim back": ("collect", "stored:1"),
}


#: Where a packed (and a packed and reused) IBM run is killed: between the provider's answer and the commit, and while storing.
PACKED_KILLS = ["submit, after the provider accepted the 2nd job", "collect, inside the transaction storing counts"]


def _cloud(name: str, tmp_path):
    if name.startswith("ibm"):
        return FakeIBMCloud(tmp_path / "ibm.cloud", steps=["QUEUED", "DONE"])
    return FakeBraketCloud(tmp_path / "braket.cloud", steps=["QUEUED", "COMPLETED"], max_executables=25)


@pytest.mark.parametrize(
    "cloud_name, where",
    [(cloud, where) for where in KILLS for cloud in ("ibm", "braket")] + [(packed, where) for where in PACKED_KILLS for packed in ("ibm packed", "ibm reused")],
)
def test_a_killed_qhw_leaves_nothing_lost_and_nothing_paid_twice(featured_store, home, tmp_path, cloud_name, where):
    fake = _cloud(cloud_name, tmp_path)
    env = qhw_env(home, **{cloud_name.split()[0]: fake.path}, QHW_TEST_IBM_MAX_EXECUTIONS="2000")
    dies, point = KILLS[where]
    if isinstance(point, dict):
        fake.inject(point["op"], "kill", when=point["when"], after_calls=point["after_calls"])
    else:
        env["QHW_TEST_KILL_AT"] = point
    submitted = run_qhw(env if dies == "submit" else {**env, "QHW_TEST_KILL_AT": ""}, *SUBMIT[cloud_name])
    if dies == "submit":
        assert submitted.returncode == -signal.SIGKILL, submitted.stderr
    else:
        assert submitted.returncode == 0, submitted.stderr
        killed = run_qhw(env, "collect", "--wait", "--interval", "0.02", "--timeout", "120")
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    recovered = run_qhw({**env, "QHW_TEST_KILL_AT": ""}, *RECOVER, "--json")
    assert recovered.returncode == 0, recovered.stderr
    assert "Traceback" not in recovered.stderr
    assert fake.faults_left() == 0  # the kill did happen where it was meant to
    assert_ledger_sound(featured_store, fake, featured_store.ledger.run().id)


#: An adaptive IBM run of 20 samples, at most 64 shots (32, then 32 more): one job a round.
ADAPTIVE = ["submit", "--backend", "ibm_fez", "--split", "test", "--limit", "20", "--shots", "64", "--adaptive", "--yes"]


@pytest.mark.parametrize(
    "point",
    [
        "rounding",  # inside the transaction starting round 1
        "rounded",  # after its commit, before its job is sent
        "storing:2",  # inside the transaction storing round 1's counts
    ],
)
def test_an_adaptive_run_killed_between_rounds_or_inside_one_tops_up_no_sample_twice(featured_store, home, tmp_path, point):
    fake = FakeIBMCloud(tmp_path / "ibm.cloud", steps=["QUEUED", "DONE"])
    env = qhw_env(home, ibm=fake.path)
    submitted = run_qhw(env, *ADAPTIVE)
    assert submitted.returncode == 0, submitted.stderr
    killed = run_qhw({**env, "QHW_TEST_KILL_AT": point}, "collect", "--wait", "--yes", "--interval", "0.02", "--timeout", "120")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run = featured_store.ledger.run()
    # Round 1 was started, or not, as the kill left it: never half.
    round_jobs = [job for job in featured_store.ledger.jobs(run.id) if job.round == 1]
    assert (run.round, len(round_jobs)) == ((0, 0) if point == "rounding" else (1, 1))
    recovered = run_qhw(env, *RECOVER, "--json")
    assert recovered.returncode == 0 and "Traceback" not in recovered.stderr, recovered.stderr
    assert_rounds_sound(featured_store, run.id, fake)
    assert featured_store.ledger.run(run.id).round == 1  # 32 shots, then 32 more: two rounds, every sample in both


def test_a_local_run_killed_while_storing_counts_is_finished_by_collect(featured_store, home):
    env = qhw_env(home, QHW_TEST_KILL_AT="storing:1")
    killed = run_qhw(env, *SUBMIT["aer"])
    assert killed.returncode == -signal.SIGKILL
    (job,) = featured_store.ledger.jobs()
    assert job.state.value == "pending" and featured_store.results.count_rows(job.run_id) == 0  # rolled back
    recovered = run_qhw({**env, "QHW_TEST_KILL_AT": ""}, "collect")
    assert recovered.returncode == 0, recovered.stderr
    assert_ledger_sound(featured_store, None, job.run_id)


#: fake_fez, four copies each run twice a shot, jobs of 64 circuits; copy 0's
#: third qubit gone bad (--noise): flagged on the first job, left out of the
#: other six, and its 16 circuits of that job measured again in one repair job.
REPAIRED = [
    "submit", "--backend", "fake_fez", "--split", "all", "--shots", "1024", "--seed", "2", "--pack", "4", "--reuse", "2",
    "--quality", "auto", "--quality-reserve", "0.5", "--workers", "1",
]


@pytest.mark.parametrize(
    "point",
    [
        "rounding:2",  # inside the transaction starting the repair (the run's jobs were the first pass)
        "repaired",  # after its commit, before its job runs
        "storing:8",  # inside the transaction storing the repair's counts (the run's own 7 jobs first)
    ],
)
def test_a_run_killed_during_its_repair_is_finished_by_collect_with_nothing_lost_or_run_twice(featured_store, home, point):
    from qhw import runs

    layout = runs.submit(featured_store, backend_name="fake_fez", split="test", limit=4, shots=16, pack=4, reuse=2, workers=1).run
    noise = ["--noise", f"bad-qubit={layout.copy_layout(0)[2]}:0.5"]
    env = qhw_env(home, QHW_TEST_IBM_LOCAL_CIRCUITS_PER_JOB="64")
    whole = run_qhw(env, *REPAIRED, *noise)
    assert whole.returncode == 0, whole.stderr
    reference = featured_store.ledger.run()
    killed = run_qhw({**env, "QHW_TEST_KILL_AT": point}, *REPAIRED, *noise)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run = featured_store.ledger.run()
    assert run.id == reference.id + 1 and run.repairs == (0 if point == "rounding:2" else 1)  # started once, or not: never half
    recovered = run_qhw(env, "collect")
    assert recovered.returncode == 0 and "Traceback" not in recovered.stderr, recovered.stderr
    run = featured_store.ledger.run(run.id)
    assert_ledger_sound(featured_store, None, run.id)
    assert (run.repairs, run.excluded_slots) == (reference.repairs, reference.excluded_slots) == (1, (0, 4))
    jobs, expected = featured_store.ledger.jobs(run.id), featured_store.ledger.jobs(reference.id)
    assert [(j.repair, j.executions, j.slots_used) for j in jobs] == [(j.repair, j.executions, j.slots_used) for j in expected]
    assert featured_store.results.repaired(run.id) == featured_store.results.repaired(reference.id) == 16
    # The same seeds: exactly the uninterrupted run's counts, the repair's among them.
    got, want = featured_store.results.run_counts(run.id), featured_store.results.run_counts(reference.id)
    assert np.array_equal(got.counts, want.counts) and np.array_equal(got.copies, want.copies)
