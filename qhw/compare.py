"""Simulator against hardware: accuracy with uncertainty, agreement per sample,
accuracy against shots and cost, on the samples the runs share; one device
run or several (a leaderboard). Runs are described from what was stored with
them, so no adapter or credentials are needed to compare them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np

from qhw import training
from qhw.backend import RemoteBackend, get_backend, is_remote
from qhw.checks import check_positive, check_seed
from qhw.errors import ConfigError, ParameterError, QhwError, TrainingError
from qhw.mitigation import calibration_missing, mitigated_counts
from qhw.overview import run_details
from qhw.planning import plan_jobs, sent_sizes
from qhw.pricing import load_prices
from qhw.progress import Progress, SilentProgress
from qhw.quality import hellinger_fidelity
from qhw.records import PROBABILITIES, RunRecord
from qhw.store import RunCounts, Store
from qhw.store.arrays import load_arrays
from qhw.training import bootstrap_interval  # in training: a trained model's own accuracy carries one

SMALLEST_SHOTS = 16


# --- statistics (pure functions) -------------------------------------------------------------


def total_variation(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Half the L1 distance over the last axis; 0 for equal distributions."""
    return 0.5 * np.sum(np.abs(p - q), axis=-1)


@dataclass(frozen=True)
class Summary:
    mean: float
    median: float
    p5: float
    p95: float
    n: int

    @classmethod
    def of(cls, values: np.ndarray) -> Summary:
        values = np.asarray(values, dtype=float)
        p5, median, p95 = np.percentile(values, [5, 50, 95])
        return cls(float(values.mean()), float(median), float(p5), float(p95), int(values.size))


def subsample_counts(counts: np.ndarray, shots, rng: np.random.Generator) -> np.ndarray:
    """Draw ``shots`` of each row's recorded shots without replacement
    (multivariate hypergeometric); ``shots`` an int, or one per row (counts'
    shape less its last axis): a row with no more than that is kept whole."""
    flat = counts.reshape(-1, counts.shape[-1]).astype(np.int64)
    wanted = np.broadcast_to(np.asarray(shots), counts.shape[:-1]).reshape(-1)
    drawn = np.stack([row if row.sum() <= n else rng.multivariate_hypergeometric(row, int(n)) for row, n in zip(flat, wanted, strict=True)])
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
    # By the copy of a packed device run that measured each circuit: one bad
    # chain of qubits shows as one copy that agrees less (one copy: copy 0).
    fidelity_by_copy: dict[int, Summary] = field(default_factory=dict)
    total_variation_by_copy: dict[int, Summary] = field(default_factory=dict)
    # By the position (1..K) in the samples a copy's qubits ran in one shot
    # (a reused run): a position that degrades (a reset that errs) shows.
    fidelity_by_position: dict[int, Summary] = field(default_factory=dict)
    total_variation_by_position: dict[int, Summary] = field(default_factory=dict)


@dataclass(frozen=True)
class ShotsPoint:
    shots: int
    accuracy: float
    low: float
    high: float
    cost_usd: float | None


@dataclass(frozen=True)
class RunSummary:
    """A run as a report names it, from what was stored: no adapter, no credentials."""

    run: int
    backend: str
    device_kind: str  # simulator | emulation | managed simulator | hardware
    device: str  # the adapter's description at submit time
    created: str
    shots: int
    feature_set: int
    split: str
    mitigation: str | None  # "readout" when the run measured readout calibrations
    samples: int
    estimated_cost_usd: float | None
    actual_cost_usd: float | None  # None: unknown (never 0 for lack of knowledge)
    actual_cost: str  # in words: "$1.20", "free", "unknown", "... so far"
    calibrated_at: str | None  # the device calibration's own timestamp
    calibration_age_hours: float | None  # its age when the run was submitted
    calibration: dict | None  # the per-qubit figures kept with the run
    noise: str | None = None  # what --noise added to an emulated device's noise (its SPEC)
    quality: dict | None = None  # its circuits against their exact answers (qhw.quality's RunQuality.to_dict)
    device_mitigation: str | None = None  # IBM's own, asked of its sampler (--mitigate twirling, dd...)
    # What the provider reported its finished jobs used (IBM: QPU seconds or resource units); None: nothing reported.
    usage: float | None = None
    usage_unit: str | None = None


@dataclass(frozen=True)
class AdaptiveFigures:
    """What an adaptive device run spent: shots a sample (a histogram), and the
    total against a uniform run of every sample at the run's --shots."""

    rule: str  # the settling rule, in words
    samples_by_shots: dict[int, int]  # shots a sample got -> samples (test samples compared)
    shots_used: int
    uniform_shots: int  # every compared sample at --shots
    share: float  # shots_used / uniform_shots
    transfer_accuracy: float
    low: float
    high: float


@dataclass(frozen=True)
class ModelUse:
    """A stored model a comparison's figures are the predictions of."""

    case: str  # "simulator hybrid" (its simulator and transfer cases), "classical"
    model: int  # the model's id (`qhw train`'s, or stored by this comparison)
    trained: str  # "before": found with the same settings; "now": trained for this comparison, and stored


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
    adaptive: AdaptiveFigures | None = None  # the device run was adaptive: what it saved
    models: list[ModelUse] = field(default_factory=list)  # the stored models the figures come from
    # Not in the JSON: arrays for the report's plots.
    confusion: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    fidelities: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def accuracy(self, case: str) -> AccuracyFigure | None:
        return next((a for a in self.accuracies if a.case == case), None)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("confusion")
        data.pop("fidelities")
        for key in (
            "fidelity_by_class", "total_variation_by_class", "fidelity_by_copy", "total_variation_by_copy", "fidelity_by_position",
            "total_variation_by_position",
        ):
            data["agreement"][key] = {str(k): v for k, v in data["agreement"][key].items()}
        return data


@dataclass(frozen=True)
class LeaderboardRow:
    """One device against the simulator, in a line."""

    run: int
    backend: str
    device_kind: str
    device: str
    transfer_accuracy: float
    low: float
    high: float
    mitigated_accuracy: float | None  # where the run measured its readout calibration
    mean_fidelity: float  # Hellinger fidelity to the simulator, per sample, averaged
    estimated_cost_per_1000_usd: float | None
    actual_cost_per_1000_usd: float | None
    calibration_age_hours: float | None
    noise: str | None = None  # what --noise added to an emulated device's noise (its SPEC)


@dataclass
class DeviceComparison:
    """One simulator run against several device runs of the same feature set."""

    simulator: RunSummary
    leaderboard: list[LeaderboardRow]
    comparisons: list[Comparison]

    def to_dict(self) -> dict:
        return {
            "simulator": asdict(self.simulator),
            "leaderboard": [asdict(row) for row in self.leaderboard],
            "comparisons": [comparison.to_dict() for comparison in self.comparisons],
        }


def compare(
    store: Store,
    *,
    simulator_run_id: int,
    hardware_run_id: int,
    epochs: int = training.DEFAULT_EPOCHS,
    seed: int = 0,
    readout: str = PROBABILITIES,
    progress: Progress | None = None,
) -> Comparison:
    """Compare a simulator run with one device run of the same feature set.

    Raises:
        ConfigError: the runs are one, use different feature sets or share no test samples.
        TrainingError: the simulator run has no train samples.
    """
    return compare_devices(
        store,
        simulator_run_id=simulator_run_id,
        hardware_run_ids=[hardware_run_id],
        epochs=epochs,
        seed=seed,
        readout=readout,
        progress=progress,
    ).comparisons[0]


def compare_devices(
    store: Store,
    *,
    simulator_run_id: int,
    hardware_run_ids: list[int],
    epochs: int = training.DEFAULT_EPOCHS,
    seed: int = 0,
    readout: str = PROBABILITIES,
    progress: Progress | None = None,
) -> DeviceComparison:
    """Compare a simulator run with several device runs: each as ``compare``
    does (the simulator's classifier trained once), and a leaderboard.

    Raises:
        ConfigError, TrainingError: as ``compare``, for any of the runs.
    """
    progress = progress or SilentProgress()
    if not hardware_run_ids:
        raise ParameterError("hardware_run_ids", "names no run to compare with the simulator")
    if simulator_run_id in hardware_run_ids:
        hw = ParameterError.ref("hardware_run_ids")
        raise ParameterError("simulator_run_id", f"and {hw} both name run {simulator_run_id}: compare a simulator run with another run")
    if len(set(hardware_run_ids)) != len(hardware_run_ids):
        raise ParameterError("hardware_run_ids", f"names a run twice: {', '.join(map(str, hardware_run_ids))}")
    check_positive(epochs, "epochs")
    check_seed(seed)
    sim_run = store.ledger.run(simulator_run_id)
    hw_runs = [store.ledger.run(run_id) for run_id in hardware_run_ids]
    for hw_run in hw_runs:
        if sim_run.feature_set_id != hw_run.feature_set_id:
            raise ConfigError(
                f"run {sim_run.id} uses feature set {sim_run.feature_set_id} and run {hw_run.id} feature set "
                f"{hw_run.feature_set_id}; compare runs of the same feature set"
            )
    simulator = _Simulator(store, sim_run, epochs=epochs, seed=seed, readout=readout, progress=progress)
    comparisons = [simulator.against(hw_run) for hw_run in hw_runs]
    return DeviceComparison(
        simulator=summarize(store, sim_run),
        leaderboard=[_leaderboard_row(comparison) for comparison in comparisons],
        comparisons=comparisons,
    )


class _Simulator:
    """The simulator side of comparisons: its counts and its classifier, trained
    once however many devices are compared with it."""

    def __init__(self, store: Store, run: RunRecord, *, epochs: int, seed: int, readout: str, progress: Progress) -> None:
        self.store = store
        self.run = run
        self.seed = seed
        feature_set = store.catalogue.feature_set(run.feature_set_id)
        self.readout = training.hybrid_readout(feature_set, readout)
        self.arrays = load_arrays(store.artifacts, feature_set)
        self.counts = store.results.run_counts(run.id)
        train = self.counts.splits == "train"
        if not train.any():
            raise TrainingError(f"run {run.id} has no collected train samples: submit it with --split all")
        self.hybrid_args = dict(**self.readout.classifier_args(), epochs=epochs, seed=seed, progress=progress)
        # The models `qhw train` stores with the same settings, or trained now and stored (once for many devices).
        hybrid = training.hybrid_for(store, run, epochs=epochs, seed=seed, readout=readout, progress=progress)
        classical = training.classical_for(store, run.feature_set_id, epochs=epochs, seed=seed, progress=progress)
        self.model, self.classical = hybrid.model, classical.model
        self.models = [
            ModelUse(case, stored.record.id, "before" if stored.reused else "now")
            for case, stored in (("simulator hybrid", hybrid), ("classical", classical))
        ]

    def labels(self, keys) -> np.ndarray:
        return np.array([self.arrays.labels(split)[index] for split, index in keys])

    def against(self, hw_run: RunRecord) -> Comparison:
        """The comparison with one device run (see the module docstring)."""
        store, sim_run, sim, seed = self.store, self.run, self.counts, self.seed
        hw = store.results.run_counts(hw_run.id)
        shared = _shared(sim, hw)
        test_keys = [key for key in shared if key[0] == "test"]
        if not test_keys:
            raise ConfigError(f"runs {sim_run.id} and {hw_run.id} share no collected test samples")
        y_test = self.labels(test_keys)
        figures, confusion = [], {}

        def add(case: str, description: str, predicted: np.ndarray) -> None:
            correct = predicted == y_test
            low, high = bootstrap_interval(correct, seed=seed)
            figures.append(AccuracyFigure(case, description, float(correct.mean()), low, high, int(correct.size)))
            confusion[case] = _confusion(y_test, predicted)

        add("simulator", f"trained and tested on run {sim_run.id} ({sim_run.backend})", training.predict(self.model, _features(sim, test_keys)))
        add(
            "transfer",
            f"trained on run {sim_run.id} ({sim_run.backend}), tested on run {hw_run.id} ({hw_run.backend})",
            training.predict(self.model, _features(hw, test_keys)),
        )
        notes: list[str] = []
        if self.readout.name != PROBABILITIES:
            notes.append(
                f"the hybrid classifiers read each circuit's {self.readout.name} (--readout {self.readout.name}: the Pauli-Z "
                "expectation that moves most with each parameter), not all its outcome probabilities"
            )
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
                training.predict(self.model, _features(mitigated, test_keys)),
            )
        hw_train = hw.splits == "train"
        if hw_train.any():
            train_keys = _keys(hw, hw_train)
            hw_model = training.fit_classifier("hybrid", _features(hw, train_keys), self.labels(train_keys), **self.hybrid_args)
            add("hardware", f"trained and tested on run {hw_run.id} ({hw_run.backend})", training.predict(hw_model, _features(hw, test_keys)))
            if mitigated is not None:
                mitigated_model = training.fit_classifier(
                    "hybrid", _features(mitigated, train_keys), self.labels(train_keys), **self.hybrid_args
                )
                add(
                    "hardware-mitigated",
                    f"trained and tested on run {hw_run.id}'s readout-mitigated quasi-probabilities",
                    training.predict(mitigated_model, _features(mitigated, test_keys)),
                )
        test_index = np.array([i for _, i in test_keys])
        add(
            "classical",
            "the same classifier on the 64-d latent (no quantum stage)",
            training.predict(self.classical, self.arrays.latent_test[test_index]),
        )
        agreement, fidelities = _agreement(sim, hw, shared, self.labels(shared))
        if hw_run.copies > 1 and hw_run.device_kind != "hardware":
            notes.append(
                f"run {hw_run.id} packed {hw_run.copies} copies an execution, emulated apart: an emulation has no "
                "crosstalk between copies, and cannot show it; only hardware can (see the agreement by copy)"
            )
        adaptive = None
        if hw_run.adaptive:
            transfer = next(f for f in figures if f.case == "transfer")
            adaptive = _adaptive_figures(hw, hw_run, test_keys, transfer)
            if not hw_run.rounds_done:
                notes.append(f"run {hw_run.id}'s rounds have not ended: its samples may still get more shots (`qhw collect`)")
        return Comparison(
            adaptive=adaptive,
            simulator=summarize(store, sim_run),
            hardware=summarize(store, hw_run),
            shared_samples=len(shared),
            accuracies=figures,
            agreement=agreement,
            shots_curve=_shots_curve(self.model, hw, hw_run, test_keys, y_test, seed),
            notes=notes,
            models=list(self.models),
            confusion=confusion,
            fidelities=fidelities,
        )


def summarize(store: Store, run: RunRecord) -> RunSummary:
    """A stored run as reports name it (qhw.overview's view of it)."""
    details = run_details(store, run.id)
    cost = details.overview.cost
    calibration = details.calibration
    return RunSummary(
        run=run.id,
        backend=run.backend,
        device_kind=run.device_kind,
        device=run.device_label,
        created=run.created_at.strftime("%Y-%m-%d %H:%M UTC") if isinstance(run.created_at, datetime) else str(run.created_at),
        shots=run.shots,
        feature_set=run.feature_set_id,
        split=run.split,
        mitigation=run.mitigation,
        samples=details.overview.samples,
        estimated_cost_usd=cost.estimate_usd,
        actual_cost_usd=cost.actual_usd,
        actual_cost=cost.actual_text,
        calibrated_at=None if calibration is None or calibration.calibrated_at is None else calibration.calibrated_at.isoformat(),
        calibration_age_hours=None if details.calibration_age is None else details.calibration_age.total_seconds() / 3600,
        calibration=None if calibration is None else calibration.to_dict(),
        noise=details.noise,
        quality=None if details.quality is None else details.quality.to_dict(),
        device_mitigation=details.device_mitigation,
        usage=details.overview.usage,
        usage_unit=details.overview.usage_unit,
    )


def _leaderboard_row(comparison: Comparison) -> LeaderboardRow:
    hw = comparison.hardware
    transfer = comparison.accuracy("transfer")
    mitigated = comparison.accuracy("transfer-mitigated")
    if transfer is None:  # every comparison has its transfer case
        raise ValueError(f"run {hw.run}: the comparison has no transfer accuracy")

    def per_1000(amount: float | None) -> float | None:
        return None if amount is None or not hw.samples else amount / hw.samples * 1000

    return LeaderboardRow(
        run=hw.run,
        backend=hw.backend,
        device_kind=hw.device_kind,
        device=hw.device,
        transfer_accuracy=transfer.accuracy,
        low=transfer.low,
        high=transfer.high,
        mitigated_accuracy=None if mitigated is None else mitigated.accuracy,
        mean_fidelity=comparison.agreement.fidelity.mean,
        estimated_cost_per_1000_usd=per_1000(hw.estimated_cost_usd),
        actual_cost_per_1000_usd=per_1000(hw.actual_cost_usd),
        calibration_age_hours=hw.calibration_age_hours,
        noise=hw.noise,
    )


def _features(counts: RunCounts, keys) -> np.ndarray:
    rows = _rows(counts, keys)
    return counts.frequencies()[rows].reshape(len(rows), int(np.prod(counts.counts.shape[1:])))


def _keys(counts: RunCounts, mask: np.ndarray) -> list[tuple[str, int]]:
    return [(str(s), int(i)) for s, i in zip(counts.splits[mask], counts.sample_index[mask], strict=True)]


def _shared(a: RunCounts, b: RunCounts) -> list[tuple[str, int]]:
    mask = np.ones(len(a.splits), dtype=bool)
    in_b = set(_keys(b, np.ones(len(b.splits), dtype=bool)))
    return [key for key in _keys(a, mask) if key in in_b]


def _rows(counts: RunCounts, keys) -> np.ndarray:
    position = {(str(s), int(i)): row for row, (s, i) in enumerate(zip(counts.splits, counts.sample_index, strict=True))}
    return np.array([position[key] for key in keys], dtype=np.int64)


def _confusion(y_true: np.ndarray, y_predicted: np.ndarray) -> np.ndarray:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y_true, y_predicted, labels=list(range(10)))


def _agreement(sim: RunCounts, hw: RunCounts, shared, labels: np.ndarray) -> tuple[Agreement, np.ndarray]:
    p = sim.frequencies(np.float64)[_rows(sim, shared)]
    q = hw.frequencies(np.float64)[_rows(hw, shared)]
    # One figure per sample: the mean over its circuits.
    by_circuit, distance_by_circuit = hellinger_fidelity(p, q), total_variation(p, q)
    fidelity = by_circuit.mean(axis=1)
    distance = distance_by_circuit.mean(axis=1)
    classes = sorted(set(labels.tolist()))
    copies = hw.copies[_rows(hw, shared)] if hw.copies is not None else np.zeros(by_circuit.shape, dtype=np.int64)
    # Positions counted from 1, as a user reads "the first sample of a shot".
    positions = 1 + (hw.positions[_rows(hw, shared)] if hw.positions is not None else np.zeros(by_circuit.shape, dtype=np.int64))
    agreement = Agreement(
        fidelity=Summary.of(fidelity),
        total_variation=Summary.of(distance),
        fidelity_by_class={c: Summary.of(fidelity[labels == c]) for c in classes},
        total_variation_by_class={c: Summary.of(distance[labels == c]) for c in classes},
        fidelity_by_copy={int(c): Summary.of(by_circuit[copies == c]) for c in np.unique(copies)},
        total_variation_by_copy={int(c): Summary.of(distance_by_circuit[copies == c]) for c in np.unique(copies)},
        fidelity_by_position={int(p): Summary.of(by_circuit[positions == p]) for p in np.unique(positions)},
        total_variation_by_position={int(p): Summary.of(distance_by_circuit[positions == p]) for p in np.unique(positions)},
    )
    return agreement, fidelity


def _adaptive_figures(hw: RunCounts, hw_run: RunRecord, test_keys, transfer: AccuracyFigure) -> AdaptiveFigures:

    shots = hw.shots_each[_rows(hw, test_keys)]
    per_sample = shots.max(axis=1)
    values, counts = np.unique(per_sample, return_counts=True)
    used, uniform = int(shots.sum()), int(shots.size * hw_run.shots)
    return AdaptiveFigures(
        rule=hw_run.adaptive.rule() if hw_run.adaptive else "",
        samples_by_shots={int(v): int(c) for v, c in zip(values, counts, strict=True)},
        shots_used=used,
        uniform_shots=uniform,
        share=used / uniform,
        transfer_accuracy=transfer.accuracy,
        low=transfer.low,
        high=transfer.high,
    )


def _shots_curve(model, hw: RunCounts, hw_run: RunRecord, test_keys, y_test: np.ndarray, seed: int) -> list[ShotsPoint]:
    """The transfer case at fewer shots: the hardware run's counts subsampled
    without replacement (an adaptive run's samples with fewer shots than a
    point keep all they have)."""
    rows = _rows(hw, test_keys)
    counts = hw.counts[rows]
    each = hw.shots_each[rows]
    rng = np.random.default_rng(seed)
    backend: RemoteBackend | None = None
    try:
        found = get_backend(hw_run.backend)
        backend = found if found.is_paid and is_remote(found) else None
    except QhwError:  # an adapter no longer installed, or an emulator of a stored document (free): the curve, without costs
        pass
    paid = backend is not None
    # At the prices of the run itself, so that the curve reads beside its actual cost.
    prices = hw_run.prices or (load_prices() if paid else None)
    points = []
    for shots in shot_ladder(hw.shots):
        drawn = counts if (each <= shots).all() else subsample_counts(counts, shots, rng)
        x = (drawn / drawn.sum(axis=-1, keepdims=True)).reshape(len(drawn), -1).astype(np.float32)
        correct = training.predict(model, x) == y_test
        low, high = bootstrap_interval(correct, seed=seed)
        estimate = None
        if backend is not None and prices is not None:
            # Offline (no network in a comparison): the device as its SDK's snapshot knows it.
            profile = backend.profile(offline=True)
            plans = plan_jobs(backend, profile, counts.shape[0] * counts.shape[1], shots)
            estimate = backend.estimate_cost(profile, sent_sizes(plans, 1), shots, prices)
        points.append(ShotsPoint(shots, float(correct.mean()), low, high, None if estimate is None else estimate.usd))
    return points
