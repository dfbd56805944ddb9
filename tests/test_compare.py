"""Comparing runs: statistics against independent computations, the figures on
small real runs, and the report files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from qhw import runs
from qhw.cli import main
from qhw.compare import (
    bootstrap_interval,
    compare,
    hellinger_fidelity,
    shot_ladder,
    subsample_counts,
    total_variation,
)
from qhw.errors import ConfigError, TrainingError
from qhw.features import build_features
from qhw.report import write_report

# --- statistics ---------------------------------------------------------------------------


def test_fidelity_and_distance_of_known_distributions():
    from qiskit.quantum_info import hellinger_fidelity as qiskit_fidelity

    p = np.array([0.5, 0.5, 0.0, 0.0])
    q = np.array([1.0, 0.0, 0.0, 0.0])
    r = np.array([0.0, 0.0, 0.5, 0.5])
    assert hellinger_fidelity(p, q) == pytest.approx(0.5)  # (sqrt(0.5 * 1))**2
    assert total_variation(p, q) == pytest.approx(0.5)
    assert hellinger_fidelity(p, p) == pytest.approx(1.0) and total_variation(p, p) == 0
    assert hellinger_fidelity(p, r) == 0 and total_variation(p, r) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.dirichlet(np.ones(32)), rng.dirichlet(np.ones(32))
        as_dict = lambda v: {format(i, "05b"): float(x) for i, x in enumerate(v)}  # noqa: E731
        assert hellinger_fidelity(a, b) == pytest.approx(qiskit_fidelity(as_dict(a), as_dict(b)))


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_samples():
    rng = np.random.default_rng(1)
    small, large = rng.random(100) < 0.7, rng.random(10_000) < 0.7
    for correct in (small, large):
        low, high = bootstrap_interval(correct)
        assert low <= correct.mean() <= high
    assert np.subtract(*bootstrap_interval(large)[::-1]) < np.subtract(*bootstrap_interval(small)[::-1])
    # Binomial standard error for n=10,000 at p=0.7 is 0.0046: the 95 % interval spans about 4 of them.
    assert np.subtract(*bootstrap_interval(large)[::-1]) == pytest.approx(4 * 0.00458, rel=0.15)
    assert bootstrap_interval(np.ones(50, dtype=bool)) == (1.0, 1.0)


def test_subsampling_draws_without_replacement():
    counts = np.array([[[700, 300, 0, 24]], [[0, 0, 1024, 0]]])
    drawn = subsample_counts(counts, 64, np.random.default_rng(0))
    assert drawn.shape == counts.shape and (drawn.sum(axis=-1) == 64).all()
    assert (drawn <= counts).all() and drawn[1, 0, 2] == 64
    assert (subsample_counts(counts, 1024, np.random.default_rng(0)) == counts).all()


def test_shot_ladder():
    assert shot_ladder(1024) == [16, 32, 64, 128, 256, 512, 1024]
    assert shot_ladder(100) == [16, 32, 64, 100]
    assert shot_ladder(16) == [16]


def test_each_adapter_says_what_its_devices_are_and_emulations_are_never_hardware():
    from qhw.backend import get_backend

    kinds = {name: get_backend(name).kind for name in ("aer_simulator", "fake_manila", "braket_local", "braket_dm", "braket_sv1", "ibm_fez", "ionq_forte")}
    assert kinds == {
        "aer_simulator": "simulator",
        "fake_manila": "emulation",
        "braket_local": "simulator",
        "braket_dm": "simulator",  # a density-matrix simulator without noise is ideal
        "braket_sv1": "managed simulator",
        "ibm_fez": "hardware",
        "ionq_forte": "hardware",
    }
    assert get_backend("fake_manila").description.startswith("emulation of ibm_manila")
    assert "ideal" in get_backend("braket_dm").description


# --- on small real runs -----------------------------------------------------------------------


@pytest.fixture
def two_runs(featured_store):
    simulator = runs.submit(featured_store, backend_name="aer_simulator", split="all", shots=256).run
    device = runs.submit(featured_store, backend_name="fake_manila", split="test", shots=256).run
    return featured_store, simulator, device


def test_compare_a_simulator_and_an_emulated_device(two_runs):
    store, simulator, device = two_runs
    result = compare(store, simulator_run_id=simulator.id, hardware_run_id=device.id, epochs=15)
    assert result.shared_samples == 100  # the device ran the test split only
    cases = {a.case: a for a in result.accuracies}
    assert set(cases) == {"simulator", "transfer", "classical"}  # no hardware train samples
    for figure in cases.values():
        assert figure.test_samples == 100 and figure.low <= figure.accuracy <= figure.high
    assert (result.hardware.device_kind, result.simulator.device_kind) == ("emulation", "simulator")
    assert result.hardware.device.startswith("emulation of ibm_manila") and result.simulator.actual_cost == "free"
    assert 0.8 < result.agreement.fidelity.mean < 1.0 and 0 < result.agreement.total_variation.mean < 0.3
    assert result.agreement.fidelity.p5 <= result.agreement.fidelity.median <= result.agreement.fidelity.p95
    assert sorted(result.agreement.fidelity_by_class) == list(range(10))
    assert [p.shots for p in result.shots_curve] == [16, 32, 64, 128, 256]
    assert result.shots_curve[-1].accuracy == cases["transfer"].accuracy  # the curve ends at the run itself (its value: below)
    assert all(p.cost_usd is None for p in result.shots_curve)  # an emulation costs nothing
    assert result.confusion["transfer"].sum() == 100


def test_compare_uses_the_models_train_stored_and_stores_those_it_trains(two_runs, monkeypatch):
    """`compare` trained the simulator run's hybrid and the classical model
    anew on every call (184 s of an 8-minute run on Fashion-MNIST), though
    `train` had stored them: it uses a stored model of the same run (or
    feature set), samples, epochs, seed and readout, and stores what it trains."""
    from qhw import training

    store, simulator, device = two_runs
    hybrid = training.train_hybrid(store, run_id=simulator.id, epochs=3)
    first = compare(store, simulator_run_id=simulator.id, hardware_run_id=device.id, epochs=3)
    classical = [m for m in first.models if m.case == "classical"][0]
    assert [(m.case, m.model, m.trained) for m in first.models] == [("simulator hybrid", hybrid.model.id, "before"), ("classical", classical.model, "now")]
    assert store.catalogue.model(classical.model).kind == "classical"  # stored, with its evaluation, as `train` stores one
    assert [e.model_id for e in store.catalogue.evaluations()] == [hybrid.model.id, classical.model]

    def no_training(*args, **kwargs):
        raise AssertionError("a model with these settings is stored: nothing is trained")

    with monkeypatch.context() as patch:
        patch.setattr(training, "fit_classifier", no_training)
        second = compare(store, simulator_run_id=simulator.id, hardware_run_id=device.id, epochs=3)
    assert [(m.model, m.trained) for m in second.models] == [(hybrid.model.id, "before"), (classical.model, "before")]
    assert [(a.case, a.accuracy) for a in second.accuracies] == [(a.case, a.accuracy) for a in first.accuracies]
    simulator_case = [a for a in second.accuracies if a.case == "simulator"][0]
    assert simulator_case.accuracy == pytest.approx(hybrid.accuracy)  # train's figure: the same model on the same test samples
    other = compare(store, simulator_run_id=simulator.id, hardware_run_id=device.id, epochs=4)  # other settings: another model
    assert {m.trained for m in other.models} == {"now"} and len(store.catalogue.evaluations()) == 4


class _ArgmaxModel:
    """A stand-in classifier with a known rule: the class is the most frequent
    outcome of the first circuit, modulo 10."""

    def __init__(self, outcomes: int) -> None:
        self.outcomes = outcomes

    def predict(self, x, verbose=0, batch_size=None):
        classes = np.argmax(x[:, : self.outcomes], axis=1) % 10
        return np.eye(10)[classes]


def test_the_shots_curve_against_a_known_rule_recomputed_from_the_raw_counts(two_runs):
    """Each point of the curve: the rule applied to the device's counts cut to
    that many shots. At the run's own shots the point is the rule on the raw
    counts, recomputed here with NumPy; below, each sample keeps exactly that
    many of its shots, drawn from its own (so the point can differ)."""
    from qhw import compare as compare_module
    from qhw.store.arrays import load_arrays

    store, _, device = two_runs
    hw = store.results.run_counts(device.id)
    test = hw.splits == "test"
    keys = compare_module._keys(hw, test)
    labels = load_arrays(store.artifacts, store.catalogue.feature_set(device.feature_set_id)).labels("test")[hw.sample_index[test]]
    run = store.ledger.run(device.id)
    drawn = []
    real = compare_module.subsample_counts

    def recording(counts, shots, rng):
        out = real(counts, shots, rng)
        drawn.append((shots, counts.copy(), out))
        return out

    import unittest.mock

    with unittest.mock.patch.object(compare_module, "subsample_counts", recording):
        curve = compare_module._shots_curve(_ArgmaxModel(32), hw, run, keys, labels, seed=0)
    raw = hw.counts[test]
    assert [point.shots for point in curve] == [16, 32, 64, 128, 256]
    assert curve[-1].accuracy == pytest.approx(np.mean(np.argmax(raw[:, 0], axis=1) % 10 == labels))
    assert [shots for shots, _, _ in drawn] == [16, 32, 64, 128]  # the last point reads the raw counts
    for point, (shots, source, cut) in zip(curve[:-1], drawn, strict=True):  # the last point reads the raw counts
        assert (cut.sum(axis=-1) == shots).all() and (cut <= source).all()  # without replacement, from its own shots
        assert point.accuracy == pytest.approx(np.mean(np.argmax(cut[:, 0], axis=1) % 10 == labels))


def test_two_runs_with_the_same_seed_agree_exactly(two_runs):
    store, simulator, _ = two_runs
    twin = runs.submit(store, backend_name="aer_simulator", split="all", shots=256).run  # same seed, same shots
    result = compare(store, simulator_run_id=simulator.id, hardware_run_id=twin.id, epochs=2)
    assert result.agreement.fidelity.mean == pytest.approx(1.0) and result.agreement.total_variation.mean == 0
    cases = {a.case: a.accuracy for a in result.accuracies}
    assert cases["simulator"] == cases["transfer"] == cases["hardware"]


def test_a_run_is_not_compared_with_itself(two_runs):
    store, simulator, _ = two_runs
    with pytest.raises(ConfigError, match="^simulator_run_id and hardware_run_ids both name run"):
        compare(store, simulator_run_id=simulator.id, hardware_run_id=simulator.id, epochs=2)


def test_runs_of_different_feature_sets_or_without_train_samples_are_refused(two_runs):
    store, simulator, device = two_runs
    with pytest.raises(TrainingError, match="--split all"):
        compare(store, simulator_run_id=device.id, hardware_run_id=simulator.id, epochs=1)
    other = build_features(store, limit_train=50, limit_test=20, epochs=1)
    other_run = runs.submit(store, backend_name="aer_simulator", feature_set_id=other.id, shots=64).run
    with pytest.raises(ConfigError, match="same feature set"):
        compare(store, simulator_run_id=simulator.id, hardware_run_id=other_run.id, epochs=1)


def test_the_report_folder_holds_plots_data_and_an_index(two_runs, tmp_path):
    store, simulator, device = two_runs
    result = compare(store, simulator_run_id=simulator.id, hardware_run_id=device.id, epochs=2)
    index = write_report(result, tmp_path / "report")
    page = index.read_text()
    pngs = sorted(p.name for p in index.parent.glob("*.png"))
    assert pngs == [
        "accuracy_vs_shots.png",
        "confusion_classical.png",
        "confusion_simulator.png",
        "confusion_transfer.png",
        "fidelity_histogram.png",
    ]
    for name in pngs:
        assert (index.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'src="{name}"' in page
    assert "fake_manila" in page and "emulation of ibm_manila" in page
    assert "hardware (QPU)" not in page
    assert "256" in page and simulator.created_at.strftime("%Y-%m-%d") in page
    data = json.loads((index.parent / "comparison.json").read_text())
    assert data["hardware"]["backend"] == "fake_manila" and len(data["shots_curve"]) == 5


def test_compare_from_the_command_line(two_runs, tmp_path):
    store, simulator, device = two_runs
    result = CliRunner().invoke(
        main, ["compare", "--sim", str(simulator.id), "--hw", str(device.id), "--epochs", "2", "--out", str(tmp_path / "r"), "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"simulator", "hardware", "accuracies", "agreement", "shots_curve", "report"} <= set(data)
    assert (tmp_path / "r" / "index.html").is_file()
    refused = CliRunner().invoke(main, ["compare", "--sim", str(device.id), "--hw", str(simulator.id)])
    assert refused.exit_code == 1 and refused.stderr.startswith("Error: run") and "Traceback" not in refused.output
