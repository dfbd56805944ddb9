"""Adaptive runs: shots where they matter, in rounds the ledger drives.

Rounds run on real simulators (statevector, Aer, a fake device with noise)
and through the IBM and Braket fakes at the clients' boundary; the settling
rules are checked against independent values; kills and several collectors
are in test_crashes.py and test_concurrency.py.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from qhw import rounds, runs
from qhw.adaptive import AdaptiveSettings, unsettled_by_change, unsettled_by_model
from qhw.errors import ConfigError
from qhw.export import export_results
from qhw.jobstates import JobState
from qhw.store import RunCounts

from conftest import assert_rounds_sound


def counts_of(*rows) -> RunCounts:
    """RunCounts of one circuit a sample, from count vectors of 32 outcomes."""
    counts = np.zeros((len(rows), 1, 32), dtype=np.uint32)
    for i, row in enumerate(rows):
        for outcome, n in row.items():
            counts[i, 0, outcome] = n
    shots = counts.sum(axis=2)
    return RunCounts(np.array(["test"] * len(rows)), np.arange(len(rows)), counts, int(shots.max()), sample_shots=shots)


class OutcomeClassifier:
    """A stand-in with Keras's predict: the class of a sample is its most
    likely outcome modulo 10 (so that a sample's class is known exactly)."""

    def predict(self, x, verbose=0, batch_size=None):
        classes = np.argmax(x, axis=1) % 10
        return np.eye(10)[classes]


@pytest.fixture(scope="module")
def hybrid_weights(built_home, tmp_path_factory):
    """A hybrid model's weights, trained once (4 epochs) on a statevector run
    of the small feature set, in a home of its own; and the run's accuracy."""
    import shutil

    from qhw import training
    from qhw.store import Store

    home = tmp_path_factory.mktemp("adaptive-model") / "home"
    shutil.copytree(built_home, home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QHW_HOME", str(home))
        patch.delenv("QHW_DB_URL", raising=False)
        store = Store(f"sqlite:///{home}/qhw.db")
        sim = runs.submit(store, backend_name="statevector", split="all", shots=1024).run
        trained = training.train_hybrid(store, run_id=sim.id, epochs=4)
        store.close()
        # The weights' object in that home's artifact store, a file of its own.
        path = store.artifacts.local_file(trained.model.weights, "the module's model")
    return trained.model, path


def trained_model(store, weights) -> int:
    """The module's hybrid model, registered in this test's store (its weights put in this home's artifact store)."""
    from dataclasses import replace

    from qhw.records import ModelSpec

    record, path = weights
    reference = store.artifacts.put_file(path, "the module's model")
    spec = ModelSpec(**{name: getattr(record, name) for name in ModelSpec.__dataclass_fields__})
    model, _ = store.catalogue.add_model(replace(spec, run_id=None, weights=reference), accuracy=0.5, test_samples=1)
    return model.id


# --- the schedule and the rules ----------------------------------------------------------------


def test_rounds_double_a_sample_s_shots_from_an_eighth_up_to_the_most_it_may_get():
    settings = AdaptiveSettings.for_shots(1024)
    assert settings.totals == [128, 256, 512, 1024]
    assert [settings.round_shots(r) for r in range(settings.rounds)] == [128, 128, 256, 512]
    # Never fewer than 32 first; a last round that only reaches --shots.
    assert AdaptiveSettings.for_shots(100).totals == [32, 64, 100]
    assert AdaptiveSettings.for_shots(32).totals == [32]
    with pytest.raises(ConfigError, match="^adaptive: shots 31 is below the first round's 32 shots a sample; give shots 32 or more"):
        AdaptiveSettings.for_shots(31)


def test_a_sample_is_settled_when_its_class_no_longer_moves_with_shot_noise():
    settings = AdaptiveSettings.for_shots(1024, model_id=1)
    clear = {3: 120, 4: 8}  # outcome 3 (class 3) far ahead: every posterior draw agrees
    tied = {3: 64, 4: 64}  # classes 3 and 4 even: about half the draws disagree
    close = {3: 66, 4: 62}  # a little ahead, within the shot noise of 128 shots (P(3 ahead) about 0.64)
    unsettled = unsettled_by_model(OutcomeClassifier(), counts_of(clear, tied, close), settings, seed=0)
    assert unsettled.tolist() == [False, True, True]
    # The same share ahead in 16 times the shots is beyond the noise (P about 0.92 > 0.85): settled.
    assert unsettled_by_model(OutcomeClassifier(), counts_of({3: 1056, 4: 992}), settings, seed=0).tolist() == [False]
    # The rule's share, against the posterior probability that outcome 3 leads (drawn independently here).
    rng = np.random.default_rng(1)
    draws = rng.dirichlet([66 + 1 / 32, 62 + 1 / 32], size=20_000)
    assert 0.55 < (draws[:, 0] > draws[:, 1]).mean() < settings.confidence


def test_without_a_model_a_sample_is_settled_when_its_frequencies_stop_moving():
    settings = AdaptiveSettings.for_shots(1024)
    before = counts_of({0: 64, 1: 64}, {0: 64, 1: 64})
    # The first sample's frequencies hold; the second's move by a Hellinger distance of 0.21.
    after = counts_of({0: 130, 1: 126}, {0: 200, 1: 56})
    assert unsettled_by_change(before, after, settings).tolist() == [False, True]
    p, q = np.array([0.5, 0.5]), np.array([200, 56]) / 256
    assert np.sqrt(1 - np.sqrt(p * q).sum()) >= settings.tolerance  # the independent figure


# --- rounds on simulators ----------------------------------------------------------------------------


def test_an_adaptive_run_gives_more_shots_exactly_to_the_samples_the_model_has_not_settled(featured_store, hybrid_weights):
    from sqlalchemy import select

    from qhw.adaptive import load_classifier
    from qhw.store.models import ResultRow

    model_id = trained_model(featured_store, hybrid_weights)
    run = runs.submit(
        featured_store, backend_name="statevector", split="test", shots=1024, adaptive=True, model_id=model_id
    ).run
    assert run.rounds_done and run.adaptive
    assert_rounds_sound(featured_store, run.id)
    rounds = run.adaptive
    classifier = load_classifier(featured_store.artifacts, featured_store.catalogue.model(model_id), 32)
    # Each round's decision, recomputed from the stored counts through that round.
    for r in range(run.round):
        through = featured_store.results.run_counts(run.id, through_round=r)
        in_round = through.shots_each[:, 0] == rounds.totals[r]
        subset = through.subset(np.flatnonzero(in_round))
        went_on = featured_store.results.round_keys(run.id, r + 1)
        expected = unsettled_by_model(classifier, subset, rounds, seed=(run.seed or 0) + r)
        assert {(str(s), int(i)) for s, i, _ in went_on} == {
            (str(s), int(i)) for s, i, more in zip(subset.splits, subset.sample_index, expected, strict=True) if more
        }
    stored = featured_store.results.run_counts(run.id)
    shots = stored.shots_each[:, 0]
    assert (shots == 128).any() and (shots > 128).any()  # some settled at once, some did not
    assert shots.sum() < 0.6 * 1024 * len(shots)
    # A later round draws fresh shots: its counts are not the first round's again.
    with featured_store.database.transaction(write=False) as session:
        rows = session.execute(
            select(ResultRow.sample_index, ResultRow.round, ResultRow.counts).where(ResultRow.run_id == run.id, ResultRow.round < 2)
        ).all()
    by_round = {(index, r): blob for index, r, blob in rows}
    again = [index for (index, r) in by_round if r == 1]
    assert again and sum(by_round[(i, 0)] != by_round[(i, 1)] for i in again) == len(again)


def test_a_sample_whose_class_never_settles_stops_at_the_most_shots(featured_store, monkeypatch):
    monkeypatch.setattr(rounds, "unsettled_by_change", lambda before, after, settings: np.ones(len(after.counts), dtype=bool))
    run = runs.submit(featured_store, backend_name="aer_simulator", split="test", limit=6, shots=100, adaptive=True).run
    assert run.rounds_done and run.round == 2  # 32, 64, 100: three rounds, and no fourth
    assert_rounds_sound(featured_store, run.id)
    assert featured_store.results.run_counts(run.id).shots_each.tolist() == [[100]] * 6


def test_without_a_model_frequencies_that_hold_end_a_sample_s_rounds(featured_store):
    run = runs.submit(featured_store, backend_name="statevector", split="test", limit=20, shots=1024, adaptive=True).run
    assert_rounds_sound(featured_store, run.id)
    rounds = run.adaptive
    # Round 0 has nothing to compare with: every sample had a second round,
    # in jobs like round 0's, and drew fresh shots in it (the same seed again
    # would measure exactly round 0's counts a second time).
    assert len(featured_store.results.round_keys(run.id, 1)) == 20
    first = featured_store.results.run_counts(run.id, through_round=0).counts
    both = featured_store.results.run_counts(run.id, through_round=1).counts
    assert all((both[i] != 2 * first[i]).any() for i in range(20))
    for r in range(1, run.round):
        before = featured_store.results.run_counts(run.id, through_round=r - 1)
        after = featured_store.results.run_counts(run.id, through_round=r)
        in_round = np.flatnonzero(after.shots_each[:, 0] == rounds.totals[r])
        expected = unsettled_by_change(before.subset(in_round), after.subset(in_round), rounds)
        went_on = {(str(s), int(i)) for s, i, _ in featured_store.results.round_keys(run.id, r + 1)}
        assert went_on == {(str(after.splits[i]), int(after.sample_index[i])) for i, more in zip(in_round, expected, strict=True) if more}


def test_downstream_reads_each_sample_by_its_own_shots(featured_store, hybrid_weights, tmp_path):
    """Counts accumulate; results export a shots vector; training, compare
    (with what the run saved) and readout mitigation take samples of
    different shots."""
    from qhw import training
    from qhw.compare import compare
    from qhw.mitigation import assignment_matrices, mitigate_counts, mitigated_counts

    model_id = trained_model(featured_store, hybrid_weights)
    sim = runs.submit(featured_store, backend_name="statevector", split="all", limit=30, shots=512).run
    run = runs.submit(
        featured_store, backend_name="fake_manila", split="all", limit=30, shots=512, adaptive=True, model_id=model_id,
        mitigate="readout", workers=1,
    ).run
    assert_rounds_sound(featured_store, run.id)
    stored = featured_store.results.run_counts(run.id)
    assert len(set(stored.shots_each[:, 0].tolist())) > 1  # samples of different shots
    # Training reads frequencies by each sample's own shots.
    features = training.outcome_features(featured_store, featured_store.ledger.run(run.id))
    assert np.allclose(features.x.sum(axis=1), 1.0)
    assert np.allclose(features.x[0], stored.counts[0, 0] / stored.shots_each[0, 0])
    # Mitigation: each sample's summed counts through its calibration.
    calibration = featured_store.results.calibration(run.id)
    quasi = mitigated_counts(featured_store, featured_store.ledger.run(run.id))
    matrices = assignment_matrices(calibration[(0, 0)], calibration[(0, 31)], 5)
    assert np.allclose(quasi.counts[3, 0], mitigate_counts(stored.counts[3, 0], matrices))
    # The export writes the shots each sample got.
    out = tmp_path / "adaptive.npz"
    export_results(featured_store, run.id, out)
    with np.load(out) as data:
        assert data["shots"].tolist() == stored.shots_each[:, 0].tolist()
        assert (data["counts"].sum(axis=2)[:, 0] == data["shots"]).all()
    comparison = compare(featured_store, simulator_run_id=sim.id, hardware_run_id=run.id, epochs=2)
    saved = comparison.adaptive
    test = stored.splits == "test"
    assert saved.shots_used == int(stored.shots_each[test].sum()) and saved.uniform_shots == 512 * int(test.sum())
    assert sum(saved.samples_by_shots.values()) == int(test.sum())
    assert saved.samples_by_shots == {
        int(s): int(n) for s, n in zip(*np.unique(stored.shots_each[test, 0], return_counts=True), strict=True)
    }
    assert saved.transfer_accuracy == comparison.accuracy("transfer").accuracy
    assert comparison.accuracy("transfer-mitigated") is not None
    assert comparison.shots_curve[-1].shots == 512


def test_runs_show_gives_shots_used_against_the_worst_case(featured_store):
    from qhw.overview import run_details

    run = runs.submit(featured_store, backend_name="statevector", split="test", limit=10, shots=256, adaptive=True).run
    shown = run_details(featured_store, run.id).to_dict()["adaptive"]
    stored = featured_store.results.run_counts(run.id)
    assert shown["worst_case_shots"] == 10 * 256
    assert shown["shots_used"] == int(stored.shots_each.sum())
    assert shown["rounds_done"] is True and shown["rounds"] == 4 and shown["round"] == run.round
    assert sum(shown["samples_by_shots"].values()) == 10


# --- rounds at providers -------------------------------------------------------------------------------


def test_a_round_is_started_once_by_whoever_gets_there_first(featured_store, ibm_cloud):
    """Two collectors that both saw round 0 collected: one starts round 1; the
    other, with the run as it saw it, finds it moved on and writes nothing."""
    from qhw.records import JobPlan

    run = runs.submit(
        featured_store, backend_name="ibm_fez", split="test", limit=4, shots=64, adaptive=True, approve=lambda estimate: True
    ).run
    plan = [JobPlan.of([0, 1], shots=32, round=1)]
    first = featured_store.ledger.next_round(run, plan)
    assert [job.round for job in first] == [1] and featured_store.ledger.run(run.id).round == 1
    assert featured_store.ledger.next_round(run, plan) is None  # the other collector
    assert featured_store.ledger.next_round(run, []) is None  # nor can it end the rounds
    assert [job.round for job in featured_store.ledger.jobs(run.id)] == [0, 1]


def _collect_until_done(store, run_id, approve, passes=20):
    for _ in range(passes):
        result = runs.collect(store, run_id=run_id, approve=approve)
        if store.ledger.run(run_id).rounds_done:
            return result
    raise AssertionError("the rounds did not end")


def test_collect_drives_an_ibm_run_s_rounds_and_each_paid_round_needs_approval(featured_store, ibm_cloud, monkeypatch):
    # Every sample unsettled after each round: with --shots 64 (32, then 64) a round 1 is certain.
    monkeypatch.setattr(rounds, "unsettled_by_change", lambda before, after, settings: np.ones(len(after.counts), dtype=bool))
    run = runs.submit(
        featured_store, backend_name="ibm_fez", split="test", limit=8, shots=64, adaptive=True, approve=lambda estimate: True
    ).run
    assert run.round == 0 and not run.rounds_done
    asked = []
    for _ in range(6):  # round 0 collected; round 1 made, but not sent without approval
        result = runs.collect(featured_store, run_id=run.id, approve=lambda *args: asked.append(args) or False)
        if featured_store.ledger.run(run.id).round == 1:
            break
    assert featured_store.ledger.run(run.id).round == 1 and result.awaiting_approval == 1
    pending = featured_store.ledger.jobs(run.id, states=[JobState.PENDING])
    assert [job.round for job in pending] == [1] and len(ibm_cloud.jobs) == 1
    _, jobs, estimate = asked[-1]
    assert [job.id for job in jobs] == [pending[0].id] and estimate.usd > 0
    assert result.rounds_started == 1  # the collect that collected round 0 started round 1, and left it waiting
    _collect_until_done(featured_store, run.id, approve=lambda *args: True)
    assert_rounds_sound(featured_store, run.id, ibm_cloud)
    # IBM ran each round's job with that round's shots: 32 first, then 32 more to 64.
    by_job = {job.id: job for job in featured_store.ledger.jobs(run.id)}
    sent = {ibm_cloud.submitted(f"qhw-job={job_id}")[0]: job for job_id, job in by_job.items()}
    assert sorted((job.round, ibm_cloud.jobs[provider_id]["shots"]) for provider_id, job in sent.items()) == [(0, [32]), (1, [32])]


def test_collect_drives_a_braket_run_s_rounds(featured_store, braket_cloud, monkeypatch):
    monkeypatch.setattr(rounds, "unsettled_by_change", lambda before, after, settings: np.ones(len(after.counts), dtype=bool))
    run = runs.submit(
        featured_store, backend_name="braket_sv1", split="test", limit=6, shots=64, adaptive=True, approve=lambda estimate: True
    ).run
    _collect_until_done(featured_store, run.id, approve=lambda *args: True)
    assert_rounds_sound(featured_store, run.id, braket_cloud)
    # A program set's shots are its executables' (6 samples): 32 each in round 0, 32 more in round 1.
    assert sorted(task["shots"] for task in braket_cloud.tasks.values()) == [32 * 6, 32 * 6]


# --- refused -----------------------------------------------------------------------------------------------


def test_a_model_of_another_feature_set_or_a_classical_one_is_refused_and_nothing_written(featured_store, hybrid_weights):
    from dataclasses import replace

    from qhw import training
    from qhw.records import ModelSpec

    model_id = trained_model(featured_store, hybrid_weights)
    model = featured_store.catalogue.model(model_id)
    source = featured_store.catalogue.feature_set(1)
    other = featured_store.catalogue.add_feature_set(
        dataset=source.dataset, dataset_fingerprint=source.dataset_fingerprint, seed=1, components=source.components,
        latent_dim=source.latent_dim, epochs=source.epochs, n_train=source.n_train, n_test=source.n_test,
        reconstruction_mse=source.reconstruction_mse, artifacts=source.artifacts,
    )
    spec = ModelSpec(**{name: getattr(model, name) for name in ModelSpec.__dataclass_fields__})
    foreign, _ = featured_store.catalogue.add_model(replace(spec, feature_set_id=other.id, run_id=None), accuracy=0.5, test_samples=1)
    classical = training.train_classical(featured_store, feature_set_id=1, epochs=1).model
    before = [run.id for run in featured_store.ledger.runs()]
    for model_id, message in [
        (foreign.id, f"model_id {foreign.id} was trained on feature set {other.id}, not feature set 1"),
        (classical.id, f"model_id {classical.id} is classical; an adaptive run needs a hybrid model"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            runs.submit(featured_store, backend_name="statevector", feature_set_id=1, split="test", adaptive=True, model_id=model_id)
    assert [run.id for run in featured_store.ledger.runs()] == before


def test_a_packed_adaptive_run_mitigates_each_copy_s_share_of_a_sample_by_its_own_qubits(featured_store, monkeypatch, tmp_path):
    """Round 2 runs fewer samples than round 1, so a sample's rounds land on
    different copies: its mitigated distribution weighs each copy's mitigated
    counts by the shots that copy measured."""
    from sqlalchemy import select

    from qhw.mitigation import assignment_matrices, mitigate_counts, mitigated_counts
    from qhw.store.models import ResultRow

    # Round 0 has nothing to compare with (all go on); after each later round the
    # first sample of the round is settled, so every round after that is shifted
    # on the copies: 32 + 32 shots, then 64, then 128, on up to three copies.
    monkeypatch.setattr(rounds, "unsettled_by_change", lambda before, after, settings: np.arange(len(after.counts)) > 0)
    from device_documents import garnet_like

    document = tmp_path / "line17.json"  # a line of 17 qubits numbered from 1: three copies, spaced
    document.write_text(garnet_like(17).json())
    run = runs.submit(
        featured_store, backend_name=f"braket_emulator:{document}", split="test", limit=8, shots=256, adaptive=True, pack=3,
        mitigate="readout", workers=1,
    ).run
    assert run.copies == 3
    assert_rounds_sound(featured_store, run.id)
    with featured_store.database.transaction(write=False) as session:
        rows = session.execute(
            select(ResultRow.sample_index, ResultRow.copy, ResultRow.counts).where(ResultRow.run_id == run.id)
        ).all()
    by_sample: dict[int, dict[int, np.ndarray]] = {}
    for index, copy, blob in rows:
        own = by_sample.setdefault(int(index), {})
        own[copy] = own.get(copy, 0) + np.frombuffer(blob, dtype="<u4").astype(np.int64)
    mixed = [index for index, copies in by_sample.items() if len(copies) > 1]
    assert mixed  # some sample was measured by two copies, with unequal shots
    assert any(len({int(c.sum()) for c in by_sample[index].values()}) > 1 for index in mixed)
    calibration = featured_store.results.calibration(run.id)
    quasi = mitigated_counts(featured_store, featured_store.ledger.run(run.id))
    row = {int(i): r for r, i in enumerate(quasi.sample_index)}
    for index in mixed:
        copies = by_sample[index]
        total = sum(counts.sum() for counts in copies.values())
        expected = sum(
            counts.sum() / total * mitigate_counts(counts, assignment_matrices(calibration[(copy, 0)], calibration[(copy, 31)], 5))
            for copy, counts in copies.items()
        )
        assert np.allclose(quasi.counts[row[index], 0], expected)


def test_a_failed_round_waits_for_retry_which_keeps_the_round_s_shots(featured_store, ibm_cloud, monkeypatch):
    monkeypatch.setattr(rounds, "unsettled_by_change", lambda before, after, settings: np.ones(len(after.counts), dtype=bool))
    run = runs.submit(
        featured_store, backend_name="ibm_fez", split="test", limit=6, shots=128, adaptive=True, approve=lambda estimate: True
    ).run
    yes = lambda *args: True  # noqa: E731
    ibm_cloud.set(fail_next="Error code 8041; the job exceeded the maximum execution time")  # round 1's job, sent next
    for _ in range(10):
        runs.collect(featured_store, run_id=run.id, approve=yes)
        if featured_store.ledger.jobs(run.id, states=[JobState.FAILED]):
            break
    ibm_cloud.set(fail_next=None)
    (failed,) = featured_store.ledger.jobs(run.id, states=[JobState.FAILED])
    assert (failed.round, failed.own_shots) == (1, 32)
    # Nothing further starts while a round has a failed job.
    for _ in range(3):
        runs.collect(featured_store, run_id=run.id, approve=yes)
    assert featured_store.ledger.run(run.id).round == failed.round
    runs.retry_run(featured_store, run.id, approve=lambda estimate: True)
    retried = featured_store.ledger.job(failed.id)
    assert (retried.round, retried.own_shots) == (failed.round, failed.own_shots)
    _collect_until_done(featured_store, run.id, approve=yes)
    assert featured_store.ledger.run(run.id).round == 2  # 32, 64, 128
    jobs = featured_store.ledger.jobs(run.id)
    assert all(job.state is JobState.COLLECTED for job in jobs)
    stored = featured_store.results.run_counts(run.id)
    assert stored.shots_each.tolist() == [[128]] * 6
    assert (stored.counts.sum(axis=2) == 128).all()


def test_the_command_line_submits_shows_and_compares_an_adaptive_run(featured_store):
    import json

    from click.testing import CliRunner

    from qhw.cli import main

    cli = CliRunner()
    sim = cli.invoke(main, ["submit", "--backend", "statevector", "--split", "all", "--limit", "30", "--shots", "256", "--json"])
    assert sim.exit_code == 0, sim.output
    done = cli.invoke(main, ["submit", "--backend", "statevector", "--split", "test", "--limit", "30", "--shots", "256", "--adaptive", "--json"])
    assert done.exit_code == 0, done.output
    shown = json.loads(done.stdout)
    run = featured_store.ledger.run(shown["run"])
    assert shown["rounds_done"] is True and shown["round"] == run.round >= 1
    details = cli.invoke(main, ["runs", "show", str(run.id)])
    used = featured_store.results.shots_used(run.id)
    assert f"{used:,} of {30 * 256:,} at worst" in details.output
    compared = cli.invoke(main, ["compare", "--sim", str(json.loads(sim.stdout)["run"]), "--hw", str(run.id), "--epochs", "2"])
    assert compared.exit_code == 0, compared.output
    assert f"adaptive run {run.id}" in compared.output and f"{used:,} shots against {30 * 256:,}" in compared.output
    report = compared.output.rsplit("report: ", 1)[1].strip()
    assert "shots a sample" in open(report, encoding="utf-8").read()
