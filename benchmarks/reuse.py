"""Several samples a shot on the same qubits (``--reuse``): QPU time and accuracy.

    python benchmarks/reuse.py [--device fake_fez] [--shots 1024] [--seed 0] [--quick]

Prints three tables.

1. The paper's test set of full MNIST (10,000 images, 1,024 shots) on ibm_fez
   with ``--pack auto`` and ``--reuse`` 1, 2, 4, 8, 16 and auto: QPU seconds
   as qhw estimates them before any network (rep_delay plus the compiled
   circuit with its mid-circuit measurements and resets, from
   qiskit-ibm-runtime's snapshot of the device's target), against
   ``--reuse 1``. The target: auto at most a quarter of ``--reuse 1``.
2. mnist-5k (seed 0): the statevector simulator runs every sample and, on
   the emulated device (IBM's calibrated noise model of fake_fez, its resets
   and mid-circuit measurements included), the test split runs with
   ``--pack auto`` and each ``--reuse``; ``qhw compare`` trains on the
   simulator and tests on the device (transfer accuracy, its 95 % bootstrap
   interval) and gives the mean fidelity of each position of the shot
   against the simulator. Last, ``--reuse auto --adaptive`` with a model
   trained on the simulator: its share of the uniform run's shots.
3. The moonshot: all 70,000 MNIST images at 1,024 shots, at one circuit a
   sample (the paper's) and at four (20 components, the configuration within
   a point of the classical baseline), unpacked / packed / packed and reused
   / packed, reused and adaptive (the adaptive share of table 2), in QPU
   seconds against the 600 s a month of IBM's free Open plan. The adaptive
   share is measured on one-circuit samples; a four-circuit sample is assumed
   to stop as early (its classifier sees four circuits' counts).

The emulation has no crosstalk and no state-preparation error after a short
reset: what it shows is the resets' and mid-circuit measurements' own noise
as IBM's model has it (docs/how-to/pack-and-reuse.md, "Several samples a shot").
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import quick
import tables

#: What --reuse takes in table 1 and 2; None is auto.
REUSES = (1, 2, 4, 8, 16, None)
FREE_PLAN_SECONDS = 600
MNIST_IMAGES = 70_000


def _label(reuse) -> str:
    return "auto" if reuse is None else str(reuse)


def qpu_seconds(device: str, samples: int, shots: int, *, pack, reuse, circuits_per_sample: int = 1):
    """The offline estimate of a run (QPU seconds) and its plan."""
    from qhw.backend import get_backend
    from qhw.circuits import feature_map
    from qhw.planning import RunRequest, plan_run
    from qhw.pricing import load_prices

    backend = get_backend(device)
    profile = backend.profile(offline=True)  # before any network, as qhw submit estimates
    request = RunRequest(executions=samples * circuits_per_sample, shots=shots, template=feature_map(), pack=pack, reuse=reuse)
    plan = plan_run(backend, profile, request, load_prices())
    return plan.estimate.quantum_seconds, plan


def estimate_table(published: tables.Tables, device: str = "ibm_fez", samples: int = 10_000, shots: int = 1024) -> None:
    rows = []
    first = None
    for reuse in REUSES:
        seconds, plan = qpu_seconds(device, samples, shots, pack=None, reuse=reuse)
        first = first or seconds
        rows.append((_label(reuse), plan.reuse, plan.copies, f"{plan.executions_sent:,}", f"{seconds:,.1f}", f"{seconds / first:.3f}"))
    published.show(
        "estimate", f"{device}: {samples:,} samples x {shots:,} shots, --pack auto, qhw's QPU-time estimate",
        ("--reuse", "samples a copy a shot", "copies", "executions", "QPU s (estimate)", "vs --reuse 1"), rows,
    )


def accuracy_table(published: tables.Tables, device: str, shots: int, seed: int, quick_mode: bool) -> float:
    """Table 2; returns the adaptive run's share of the uniform run's shots."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["QHW_HOME"] = tempfile.mkdtemp(prefix="qhw-bench-reuse-")
    from qhw import config, features, runs, training
    from qhw.compare import compare
    from qhw.store import Store

    store = Store(config.database_url())
    feature_set = features.build_features(store, seed=seed, **quick.features(quick_mode))
    simulator = runs.submit(store, backend_name="statevector", feature_set_id=feature_set.id, shots=shots, seed=seed).run
    rows = []
    for reuse in (2,) if quick_mode else REUSES:  # quick: one reused run (auto runs below, with --adaptive)
        started = time.perf_counter()
        result = runs.submit(
            store, backend_name=device, feature_set_id=feature_set.id, split="test", shots=shots, seed=seed, pack="auto",
            reuse="auto" if reuse is None else reuse,
        )
        seconds = time.perf_counter() - started
        comparison = compare(store, simulator_run_id=simulator.id, hardware_run_id=result.run.id, seed=seed, **quick.training(quick_mode))
        transfer = comparison.accuracy("transfer")
        shown = f"{transfer.accuracy:.3f} [{transfer.low:.3f}, {transfer.high:.3f}]"
        by_position = " ".join(f"{summary.mean:.4f}" for _, summary in sorted(comparison.agreement.fidelity_by_position.items()))
        rows.append((_label(reuse), result.run.reuse, result.run.copies, f"{result.executions:,}", f"{seconds:.1f}", shown, by_position))

    model = training.train_hybrid(store, run_id=simulator.id, seed=seed, **quick.training(quick_mode))
    started = time.perf_counter()
    adaptive = runs.submit(
        store, backend_name=device, feature_set_id=feature_set.id, split="test", shots=shots, seed=seed, pack="auto", reuse="auto",
        adaptive=True, model_id=model.model.id,
    ).run
    seconds = time.perf_counter() - started
    comparison = compare(store, simulator_run_id=simulator.id, hardware_run_id=adaptive.id, seed=seed, **quick.training(quick_mode))
    transfer = comparison.accuracy("transfer")
    used = store.results.shots_used(adaptive.id)
    share = used / (shots * adaptive.n_samples * feature_set.circuits_per_sample)
    shown = f"{transfer.accuracy:.3f} [{transfer.low:.3f}, {transfer.high:.3f}]"
    rows.append((f"auto, --adaptive ({share:.0%} of the shots)", adaptive.reuse, adaptive.copies, "", f"{seconds:.1f}", shown, ""))
    published.show(
        "accuracy",
        f"{device} --pack auto, mnist-5k test split, {shots} shots: mean fidelity by position against the simulator",
        ("--reuse", "K", "copies", "executions", "submit s", "transfer accuracy [95 %]", "mean fidelity by position 1..K"), rows,
    )
    return share


def moonshot_table(published: tables.Tables, adaptive_share: float | None, device: str = "ibm_fez", shots: int = 1024) -> None:
    rows = []
    for circuits in (1, 4):
        configurations = [("unpacked", 1, 1), ("--pack auto", None, 1), ("--pack auto --reuse auto", None, None)]
        for label, pack, reuse in configurations:
            seconds, _ = qpu_seconds(device, MNIST_IMAGES, shots, pack=pack, reuse=reuse, circuits_per_sample=circuits)
            rows.append((f"`{label}`" if pack != 1 else label, circuits, f"{seconds:,.0f}", f"{seconds / FREE_PLAN_SECONDS:.2f}"))
        if adaptive_share is not None:
            seconds = _adaptive_seconds(device, circuits, shots, adaptive_share)
            rows.append((f"`--pack auto --reuse auto --adaptive` ({adaptive_share:.0%} of the shots)", circuits, f"{seconds:,.0f}",
                         f"{seconds / FREE_PLAN_SECONDS:.2f}"))
    published.show(
        "moonshot", f"all {MNIST_IMAGES:,} MNIST images x {shots:,} shots on {device}, against the {FREE_PLAN_SECONDS} QPU s a month of IBM's Open plan",
        ("configuration", "circuits a sample", "QPU s", "months of the Open plan"), rows,
    )


def _adaptive_seconds(device: str, circuits: int, shots: int, share: float) -> float:
    """Packed and reused, with ``share`` of the uniform run's shots: estimated
    as a run whose every execution gets that share (an adaptive run's rounds
    add a few jobs' fixed overhead, seconds against hundreds)."""
    seconds, _ = qpu_seconds(device, MNIST_IMAGES, max(1, round(share * shots)), pack=None, reuse=None, circuits_per_sample=circuits)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="fake_fez", help="the emulated device of table 2")
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    quick.add_option(parser)
    tables.add_option(parser)
    args = parser.parse_args()
    if args.quick:  # every step on the emulated 5-qubit device (one copy) at 64 shots
        args.device, args.shots = "fake_manila", 64
    published = tables.Tables(args)
    estimate_table(published)
    share = accuracy_table(published, args.device, args.shots, args.seed, args.quick)
    moonshot_table(published, share)


if __name__ == "__main__":
    main()
