"""Every stored result checked against its exact answer; a run's quality by copy, position and job."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from qhw import runs
from qhw.cli import main
from qhw.quality import TOLERANCE, flagged, run_quality


def test_each_stored_result_keeps_its_fidelity_to_the_exact_distribution(featured_store, tmp_path):
    """Recomputed apart: the template bound to the run's parameters, Qiskit's
    Statevector, the stored counts' frequencies, Qiskit's Hellinger fidelity."""
    from qiskit.quantum_info import Statevector, hellinger_fidelity
    from sqlalchemy import select

    from qhw import feature_maps
    from qhw.export import export_results
    from qhw.store.models import ResultRow

    run = runs.submit(featured_store, backend_name="fake_manila", split="test", limit=12, shots=512, seed=3).run
    template = feature_maps.template_of(featured_store.catalogue.feature_set(run.feature_set_id))
    export_results(featured_store, run.id, tmp_path / "results.npz")
    exported = np.load(tmp_path / "results.npz")
    with featured_store.database.transaction(write=False) as session:
        stored = dict(
            ((split, index), fidelity)
            for split, index, fidelity in session.execute(select(ResultRow.split, ResultRow.sample_index, ResultRow.fidelity).where(ResultRow.run_id == run.id))
        )
    bare = template.remove_final_measurements(inplace=False)
    checked = 0
    for i in range(len(exported["counts"])):
        exact = Statevector(bare.assign_parameters(exported["parameters"][i, 0])).probabilities()
        counts = {format(j, f"0{template.num_qubits}b"): int(c) for j, c in enumerate(exported["counts"][i, 0]) if c}
        expected = hellinger_fidelity(counts, {format(j, f"0{template.num_qubits}b"): p for j, p in enumerate(exact)})
        assert stored[(str(exported["split"][i]), int(exported["sample_index"][i]))] == pytest.approx(expected, abs=1e-12)
        checked += 1
    assert checked == 12


def test_the_rule_flags_a_group_behind_by_more_than_chance_and_the_tolerance():
    rng = np.random.default_rng(0)
    keys = np.repeat(np.arange(5), 40)
    fidelity = rng.normal(0.97, 0.01, keys.size)
    assert not any(flagged(fidelity, keys).values()), "groups alike: nothing flagged"
    behind = fidelity.copy()
    behind[keys == 3] -= 0.03
    assert flagged(behind, keys) == {0: False, 1: False, 2: False, 3: True, 4: False}
    # Behind by less than the tolerance: not flagged, however many circuits say so.
    many = np.repeat(np.arange(2), 100_000)
    close = rng.normal(0.97, 0.01, many.size) - (many == 1) * (TOLERANCE / 2)
    assert not flagged(close, many)[1]
    # Few circuits behind a figure: a wide margin (one circuit 0.05 behind is chance at this spread).
    few = np.concatenate([rng.normal(0.97, 0.03, 200), [0.92]])
    assert not flagged(few, np.r_[np.zeros(200, dtype=int), [1]])[1]
    # A fixed floor instead of the rule.
    assert flagged(fidelity, keys, floor=0.975) == dict.fromkeys(range(5), True)
    assert flagged(np.full(3, 0.99), np.arange(3), floor=0.98) == dict.fromkeys(range(3), False)


def test_run_quality_groups_by_copy_position_and_job():
    fidelity = np.array([0.9, 0.8, 0.95, 0.85])
    quality = run_quality(fidelity, np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1]), np.array([7, 7, 7, 8]))
    assert quality.circuits == 4 and quality.mean_fidelity == pytest.approx(0.875)
    assert [(g.key, g.circuits, round(g.mean_fidelity, 3)) for g in quality.copies] == [(0, 2, 0.925), (1, 2, 0.825)]
    assert [(g.key, g.circuits, round(g.mean_fidelity, 3)) for g in quality.positions] == [(0, 2, 0.85), (1, 2, 0.9)]
    assert [(g.key, g.circuits) for g in quality.jobs] == [(7, 3), (8, 1)]
    assert run_quality(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0)).mean_fidelity is None


def test_a_copy_on_a_bad_qubit_is_flagged_and_shown(featured_store):
    """fake_fez, four copies each run twice a shot, copy 0 on a qubit gone bad
    (--noise): runs show names copy 0, and nothing else."""
    options = dict(backend_name="fake_fez", split="all", shots=1024, seed=2, pack=4, reuse=2, workers=1)
    clean = runs.submit(featured_store, **options).run
    bad = clean.copy_layout(0)[2]  # the partition reads the calibration, which knows nothing of it: the same layout
    run = runs.submit(featured_store, noise=f"bad-qubit={bad}:0.5", **options).run
    assert run.copies == 4 and run.layout == clean.layout
    shown = json.loads(CliRunner().invoke(main, ["runs", "show", str(run.id), "--json"]).stdout)["quality"]
    assert shown["circuits"] == run.n_samples * run.circuits_per_sample
    assert [(c["copy"], c["flagged"]) for c in shown["copies"]] == [(0, True), (1, False), (2, False), (3, False)]
    assert not any(p["flagged"] for p in shown["positions"]) and [p["position"] for p in shown["positions"]] == [0, 1]
    assert sum(j["circuits"] for j in shown["jobs"]) == shown["circuits"]
    worst = min(shown["copies"], key=lambda c: c["mean_fidelity"])
    assert worst["copy"] == 0 and shown["mean_fidelity"] > worst["mean_fidelity"]
    text = CliRunner().invoke(main, ["runs", "show", str(run.id)]).stdout
    assert "flagged: copy 0 (" in text and "quality by copy" in text
    # Without the bad qubit: nothing flagged.
    plain = json.loads(CliRunner().invoke(main, ["runs", "show", str(clean.id), "--json"]).stdout)["quality"]
    assert not any(g["flagged"] for kind in ("copies", "positions", "jobs") for g in plain[kind])


def test_a_map_whose_exact_answers_cannot_be_computed_still_stores_its_counts(featured_store, monkeypatch):
    from qhw import quality
    from qhw.errors import BackendError

    def too_wide(self, template):
        raise BackendError("statevector simulates at most 20 qubits; the circuit has 24")

    monkeypatch.setattr(quality.ExactAnswers, "__init__", too_wide)
    run = runs.submit(featured_store, backend_name="statevector", split="test", limit=5, shots=64).run
    assert featured_store.results.count_samples(run.id) == 5
    assert featured_store.results.fidelities(run.id)[0].size == 0
    shown = json.loads(CliRunner().invoke(main, ["runs", "show", str(run.id), "--json"]).stdout)["quality"]
    assert shown["circuits"] == 0 and shown["mean_fidelity"] is None


def test_compare_and_its_report_show_the_device_run_s_quality(featured_store, tmp_path):
    options = dict(backend_name="fake_fez", split="test", shots=512, seed=2, pack=4, workers=1)
    clean = runs.submit(featured_store, **options).run
    bad = runs.submit(featured_store, noise=f"bad-qubit={clean.copy_layout(1)[2]}:0.6", **options).run
    simulator = runs.submit(featured_store, backend_name="statevector", split="all", shots=512).run
    args = ["compare", "--sim", str(simulator.id), "--hw", str(bad.id), "--epochs", "2", "--out", str(tmp_path / "r")]
    shown = CliRunner().invoke(main, [*args, "--json"])
    assert shown.exit_code == 0, shown.output
    quality = json.loads(shown.stdout)["hardware"]["quality"]
    assert [c["copy"] for c in quality["copies"] if c["flagged"]] == [1]
    assert "flagged: copy 1 (" in CliRunner().invoke(main, args).stdout
    page = (tmp_path / "r" / "index.html").read_text()
    assert "Quality: each circuit against its exact answer" in page and "copy 1 (" in page
    # The answer first: the headline (accuracy, fidelity, what it took), then the plots (quality by copy among them),
    # then the tables; the device's calibration (every qubit and pair of fake_fez it used) folded at the end.
    order = [
        page.index("<ul class=headline>"), page.index("Transfer accuracy on run"), page.index("Mean fidelity to the exact answers"),
        page.index("Device time:"), page.index("<h2>Plots"), page.index('src="quality_by_copy.png"'), page.index("<h2>Runs"),
        page.index("<h2>Accuracy</h2>"), page.index("<details class=calibration>"), page.index("<th>physical qubit</th>"),
    ]
    assert order == sorted(order) and page.count("<th>physical qubit</th>") == 1
    assert "flagged: copy 1." in page and (tmp_path / "r" / "quality_by_copy.png").stat().st_size > 0
