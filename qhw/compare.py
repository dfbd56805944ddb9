"""Simulator against hardware: accuracy with uncertainty, agreement per sample,
and accuracy against shots, on the samples two runs share."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np

from qhw import training
from qhw.backend import get_backend
from qhw.checks import check_positive, check_seed
from qhw.errors import ConfigError, TrainingError
from qhw.features import load_arrays
from qhw.mitigation import calibration_missing, mitigated_counts
from qhw.progress import Progress, SilentProgress
from qhw.runs import plan_jobs
from qhw.records import RunRecord
from qhw.store import RunCounts, Store

BOOTSTRAP_RESAMPLES = 2000
SMALLEST_SHOTS = 16


# --- statistics (pure functions) -------------------------------------------------------------


def hellinger_fidelity(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(sum_i sqrt(p_i q_i))**2 over the last axis, as Qiskit defines it; 1 for equal distributions."""
    return np.sum(np.sqrt(np.clip(p, 0, None) * np.clip(q, 0, None)), axis=-1) ** 2


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Half the L1 distance over the last axis; 0 for equal distributions."""
    return 0.5 * np.sum(np.abs(p - q), axis=-1)


def bootstrap_interval(correct: np.ndarray, *, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean of a 0/1 vector (resampling test samples)."""
    correct = np.asarray(correct, dtype=float)
    if correct.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, correct.size, size=(resamples, correct.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


@dataclass(frozen=True)
class Summary:
    mean: float
    median: float
    p5: float
    p95: float
    n: int

    @classmethod
    def of(cls, values: np.ndarray) -> "Summary":
        values = np.asarray(values, dtype=float)
        p5, median, p95 = np.percentile(values, [5, 50, 95])
        return cls(float(values.mean()), float(median), float(p5), float(p95), int(values.size))


def subsample_counts(counts: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``shots`` of each row's recorded shots without replacement (multivariate hypergeometric)."""
    flat = counts.reshape(-1, counts.shape[-1]).astype(np.int64)
    drawn = np.stack([rng.multivariate_hypergeometric(row, shots) for row in flat])
    return drawn.reshape(counts.shape)


def shot_ladder(max_shots: int) -> list[int]:
    """16, 32, 64, ... below the run's shots, then the run's shots."""
    ladder = []
    shots = SMALLEST_SHOTS
    while shots < max_shots:
        ladder.append(shots)
        shots *= 2
    return [*ladder, max_shots]


# --- the comparison ------------------------------------------------------------------------


@dataclass(frozen=True)
class AccuracyFigure:
    case: str  # simulator | transfer | transfer-mitigated | hardware | hardware-mitigated | classical
    description: str
    accuracy: float
    low: float
    high: float
    test_samples: int


@dataclass(frozen=True)
class Agreement:
    fidelity: Summary
    total_variation: Summary
    fidelity_by_class: dict[int, Summary]
    total_variation_by_class: dict[int, Summary]


@dataclass(frozen=True)
class ShotsPoint:
    shots: int
    accuracy: float
    low: float
    high: float
    cost_usd: float | None


@dataclass(frozen=True)
class RunSummary:
    run: int
    backend: str
    device: str  # "simulator", "emulation (...)" or "hardware (QPU)"
    created: str
    shots: int
    feature_set: int
    split: str
    mitigation: str | None  # "readout" when the run measured readout calibrations


@dataclass
class Comparison:
    simulator: RunSummary
    hardware: RunSummary
    shared_samples: int
    accuracies: list[AccuracyFigure]
    agreement: Agreement
    shots_curve: list[ShotsPoint]
    # What the comparison had to leave out, and why (e.g. a failed calibration).
    notes: list[str] = field(default_factory=list)
    # Not in the JSON: arrays for the report's plots.
    confusion: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    fidelities: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("confusion")
        data.pop("fidelities")
        for key in ("fidelity_by_class", "total_variation_by_class"):
            data["agreement"][key] = {str(k): v for k, v in data["agreement"][key].items()}
        return data


def device_label(backend_name: str) -> str:
    """How a report names what ran a run: emulations are never called hardware."""
    backend = get_backend(backend_name)
    if backend.kind == "QPU":
        return "hardware (QPU)"
    if backend_name.startswith("fake_"):
        return f"emulation (calibrated noise model of {backend_name.removeprefix('fake_')})"
    if backend_name == "braket_dm":
        return "emulation (density-matrix simulator)"
    return f"simulator ({backend.kind})"


def compare(
    store: Store,
    *,
    simulator_run_id: int,
    hardware_run_id: int,
    epochs: int = training.DEFAULT_EPOCHS,
    seed: int = 0,
    progress: Progress | None = None,
) -> Comparison:
    """Compare two runs of one feature set (see the module docstring).

    Raises:
        ConfigError: the runs use different feature sets or share no test samples.
        TrainingError: the simulator run has no train samples.
    """
    progress = progress or SilentProgress()
    if simulator_run_id == hardware_run_id:
        raise ConfigError(f"--sim and --hw both name run {simulator_run_id}: compare a simulator run with another run")
    check_positive(epochs, "--epochs")
    check_seed(seed)
    sim_run, hw_run = store.ledger.run(simulator_run_id), store.ledger.run(hardware_run_id)
    if sim_run.feature_set_id != hw_run.feature_set_id:
        raise ConfigError(
            f"run {sim_run.id} uses feature set {sim_run.feature_set_id} and run {hw_run.id} feature set "
            f"{hw_run.feature_set_id}; compare runs of the same feature set"
        )
    arrays = load_arrays(store.catalogue.feature_set(sim_run.feature_set_id))
    sim, hw = store.results.run_counts(sim_run.id), store.results.run_counts(hw_run.id)
    shared = _shared(sim, hw)
    test_keys = [key for key in shared if key[0] == "test"]
    if not test_keys:
        raise ConfigError(f"runs {sim_run.id} and {hw_run.id} share no collected test samples")
    sim_train = sim.splits == "train"
    if not sim_train.any():
        raise TrainingError(f"run {sim_run.id} has no collected train samples: submit it with --split all")
    labels_of = lambda keys: np.array([arrays.labels(s)[i] for s, i in keys])  # noqa: E731
    y_test = labels_of(test_keys)
    num_qubits = sim_run.num_qubits

    def features(counts: RunCounts, keys) -> np.ndarray:
        rows = _rows(counts, keys)
        return counts.counts[rows].reshape(len(rows), -1).astype(np.float32) / counts.shots

    hybrid_args = dict(input_scale=float(2**num_qubits), epochs=epochs, seed=seed, progress=progress)
    sim_model = training.fit_classifier(
        "hybrid", features(sim, _keys(sim, sim_train)), labels_of(_keys(sim, sim_train)), **hybrid_args
    )
    figures, confusion = [], {}

    def add(case: str, description: str, predicted: np.ndarray) -> None:
        correct = predicted == y_test
        low, high = bootstrap_interval(correct, seed=seed)
        figures.append(AccuracyFigure(case, description, float(correct.mean()), low, high, int(correct.size)))
        confusion[case] = _confusion(y_test, predicted)

    add("simulator", f"trained and tested on run {sim_run.id} ({sim_run.backend})", training.predict(sim_model, features(sim, test_keys)))
    add(
        "transfer",
        f"trained on run {sim_run.id} ({sim_run.backend}), tested on run {hw_run.id} ({hw_run.backend})",
        training.predict(sim_model, features(hw, test_keys)),
    )
    notes: list[str] = []
    mitigated = None
    if hw_run.mitigation == "readout":
        missing = calibration_missing(store, hw_run)
        if missing is None:
            mitigated = mitigated_counts(store, hw_run)
        else:  # the raw comparison stands on its own
            notes.append(f"no readout-mitigated rows: {missing}")
    if mitigated is not None:
        add(
            "transfer-mitigated",
            f"as transfer, on run {hw_run.id}'s readout-mitigated quasi-probabilities (mthree)",
            training.predict(sim_model, features(mitigated, test_keys)),
        )
    hw_train = hw.splits == "train"
    if hw_train.any():
        hw_model = training.fit_classifier(
            "hybrid", features(hw, _keys(hw, hw_train)), labels_of(_keys(hw, hw_train)), **hybrid_args
        )
        add("hardware", f"trained and tested on run {hw_run.id} ({hw_run.backend})", training.predict(hw_model, features(hw, test_keys)))
        if mitigated is not None:
            mitigated_model = training.fit_classifier(
                "hybrid", features(mitigated, _keys(hw, hw_train)), labels_of(_keys(hw, hw_train)), **hybrid_args
            )
            add(
                "hardware-mitigated",
                f"trained and tested on run {hw_run.id}'s readout-mitigated quasi-probabilities",
                training.predict(mitigated_model, features(mitigated, test_keys)),
            )
    test_index = np.array([i for _, i in test_keys])
    classical = training.fit_classifier(
        "classical", arrays.latent_train, arrays.y_train, normalize=True, epochs=epochs, seed=seed, progress=progress
    )
    add("classical", "the same classifier on the 64-d latent (no quantum stage)", training.predict(classical, arrays.latent_test[test_index]))

    agreement, fidelities = _agreement(sim, hw, shared, labels_of(shared))
    curve = _shots_curve(sim_model, hw, hw_run, test_keys, y_test, seed)
    return Comparison(
        simulator=_summary(sim_run),
        hardware=_summary(hw_run),
        shared_samples=len(shared),
        accuracies=figures,
        agreement=agreement,
        shots_curve=curve,
        notes=notes,
        confusion=confusion,
        fidelities=fidelities,
    )


def _summary(run: RunRecord) -> RunSummary:
    return RunSummary(
        run=run.id,
        backend=run.backend,
        device=device_label(run.backend),
        created=run.created_at.strftime("%Y-%m-%d %H:%M UTC") if isinstance(run.created_at, datetime) else str(run.created_at),
        shots=run.shots,
        feature_set=run.feature_set_id,
        split=run.split,
        mitigation=run.mitigation,
    )


def _keys(counts: RunCounts, mask: np.ndarray) -> list[tuple[str, int]]:
    return [(str(s), int(i)) for s, i in zip(counts.splits[mask], counts.sample_index[mask])]


def _shared(a: RunCounts, b: RunCounts) -> list[tuple[str, int]]:
    mask = np.ones(len(a.splits), dtype=bool)
    in_b = set(_keys(b, np.ones(len(b.splits), dtype=bool)))
    return [key for key in _keys(a, mask) if key in in_b]


def _rows(counts: RunCounts, keys) -> np.ndarray:
    position = {(str(s), int(i)): row for row, (s, i) in enumerate(zip(counts.splits, counts.sample_index))}
    return np.array([position[key] for key in keys], dtype=np.int64)


def _confusion(y_true: np.ndarray, y_predicted: np.ndarray) -> np.ndarray:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_predicted, labels=list(range(10)))


def _agreement(sim: RunCounts, hw: RunCounts, shared, labels: np.ndarray) -> tuple[Agreement, np.ndarray]:
    p = sim.counts[_rows(sim, shared)] / sim.shots
    q = hw.counts[_rows(hw, shared)] / hw.shots
    # One figure per sample: the mean over its circuits.
    fidelity = hellinger_fidelity(p, q).mean(axis=1)
    distance = total_variation(p, q).mean(axis=1)
    classes = sorted(set(labels.tolist()))
    agreement = Agreement(
        fidelity=Summary.of(fidelity),
        total_variation=Summary.of(distance),
        fidelity_by_class={c: Summary.of(fidelity[labels == c]) for c in classes},
        total_variation_by_class={c: Summary.of(distance[labels == c]) for c in classes},
    )
    return agreement, fidelity


def _shots_curve(model, hw: RunCounts, hw_run: RunRecord, test_keys, y_test: np.ndarray, seed: int) -> list[ShotsPoint]:
    """The transfer case at fewer shots: the hardware run's counts subsampled without replacement."""
    counts = hw.counts[_rows(hw, test_keys)]
    rng = np.random.default_rng(seed)
    backend = get_backend(hw_run.backend)
    points = []
    for shots in shot_ladder(hw.shots):
        drawn = counts if shots == hw.shots else subsample_counts(counts, shots, rng)
        x = drawn.reshape(len(drawn), -1).astype(np.float32) / shots
        correct = training.predict(model, x) == y_test
        low, high = bootstrap_interval(correct, seed=seed)
        plans = plan_jobs(backend, counts.shape[0] * counts.shape[1], shots) if backend.is_paid else []
        estimate = backend.estimate_cost([plan.executions for plan in plans], shots) if plans else None
        points.append(ShotsPoint(shots, float(correct.mean()), low, high, None if estimate is None else estimate.usd))
    return points
