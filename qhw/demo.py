"""`qhw demo`: the whole hybrid pipeline on the embedded MNIST subset, locally."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qhw import features, report, runs, training
from qhw.backend import get_backend
from qhw.checks import check_positive, check_seed
from qhw.compare import Comparison, compare
from qhw.datasets import MNIST_5K, MNIST_5K_TEST_SIZE, MNIST_5K_TRAIN_SIZE
from qhw.errors import ConfigError, ParameterError
from qhw.planning import check_shots
from qhw.progress import Progress, SilentProgress
from qhw.records import EvaluationRecord, FeatureSetRecord, RunRecord
from qhw.store import Store

SIMULATOR = "aer_simulator"
EMULATED_HARDWARE = "fake_manila"


@dataclass(frozen=True)
class DemoResult:
    feature_set: FeatureSetRecord
    simulator_run: RunRecord
    hardware_run: RunRecord
    classical: training.TrainResult
    hybrid: training.TrainResult
    hybrid_on_hardware: EvaluationRecord
    comparison: Comparison
    report: Path  # the comparison's index.html


def run_demo(
    store: Store,
    *,
    seed: int = 0,
    shots: int = 1024,
    hardware: str = EMULATED_HARDWARE,
    limit_train: int | None = None,
    limit_test: int | None = None,
    autoencoder_epochs: int = 30,
    classifier_epochs: int = training.DEFAULT_EPOCHS,
    progress: Progress | None = None,
) -> DemoResult:
    """Features on mnist-5k, the classical baseline, the simulator on every
    sample, the (emulated) device on the test samples, the hybrid classifier
    trained on the simulator and applied to both, and their comparison."""
    progress = progress or SilentProgress()
    _check_inputs(seed, shots, hardware, limit_train, limit_test, autoencoder_epochs, classifier_epochs)
    feature_set = features.build_features(
        store,
        dataset=MNIST_5K,
        seed=seed,
        epochs=autoencoder_epochs,
        limit_train=limit_train,
        limit_test=limit_test,
        progress=progress,
    )
    classical = training.train_classical(
        store, feature_set_id=feature_set.id, epochs=classifier_epochs, seed=seed, progress=progress
    )
    simulator_run = runs.submit(
        store, backend_name=SIMULATOR, feature_set_id=feature_set.id, split="all", shots=shots, seed=seed, progress=progress
    ).run
    hardware_run = runs.submit(
        store,
        backend_name=hardware,
        feature_set_id=feature_set.id,
        split="test",
        shots=shots,
        seed=seed,
        mitigate="readout",
        progress=progress,
    ).run
    runs.collect(store, wait=True, interval=1.0, progress=progress)
    hybrid = training.train_hybrid(
        store, run_id=simulator_run.id, epochs=classifier_epochs, seed=seed, progress=progress
    )
    on_hardware = training.evaluate_on_run(store, model_id=hybrid.model.id, run_id=hardware_run.id)
    comparison = compare(
        store, simulator_run_id=simulator_run.id, hardware_run_id=hardware_run.id, epochs=classifier_epochs, seed=seed, progress=progress
    )
    index, _ = report.keep_report(store, comparison, hardware_runs=[hardware_run.id])
    return DemoResult(
        feature_set=feature_set,
        simulator_run=simulator_run,
        hardware_run=hardware_run,
        classical=classical,
        hybrid=hybrid,
        hybrid_on_hardware=on_hardware,
        comparison=comparison,
        report=index,
    )


def _check_inputs(
    seed: int, shots: int, hardware: str, limit_train: int | None, limit_test: int | None, *epochs: int | None
) -> None:
    """Everything the demo could refuse, refused before it builds anything.

    Raises:
        ConfigError, UnknownBackendError: with the option at fault.
    """
    check_seed(seed)
    check_positive(shots, "shots")
    for value, parameter in zip(epochs, ("autoencoder_epochs", "epochs"), strict=True):
        check_positive(value, parameter)
    for value, parameter, size in ((limit_train, "limit_train", MNIST_5K_TRAIN_SIZE), (limit_test, "limit_test", MNIST_5K_TEST_SIZE)):
        check_positive(value, parameter)
        if value is not None and value > size:
            raise ParameterError(parameter, f"{value} exceeds the {size:,} images of {MNIST_5K}'s {parameter.rsplit('_', 1)[1]} split")
    device = get_backend(hardware)
    if device.is_paid:
        raise ConfigError(
            f"qhw demo runs on free backends only and {hardware} costs money: run the steps yourself "
            f"(qhw submit --backend {hardware} ...), which show the estimate and ask first"
        )
    report.check_report_dir(None)
    for backend in (get_backend(SIMULATOR), device):
        check_shots(backend.profile(offline=True), shots)
