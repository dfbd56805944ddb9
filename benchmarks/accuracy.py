"""Accuracy of the classical baseline and the hybrid classifier, for each feature map.

mnist-5k (4,000 train / 1,000 test), seed 0, 1,024 shots on aer_simulator,
the library's defaults otherwise. For each map: one circuit a sample
(components = the map's parameters), four (the paper's best, 20 components
at 5 qubits), and the components that use the 64 latent dimensions (the
largest multiple of the parameters that the latent holds: 60 for 5 qubits,
64 for 8); or the --components given. Each run's hybrid is trained
with each --readouts (qhw.training.Readout): all outcome probabilities, and
the Pauli-Z expectation that moves most with each parameter. Prints one table: each figure with its 95 % bootstrap
interval, its gap to the classical baseline, the target it must reach, the
circuits and qubits a sample costs, and how long each step took. Runs in a
throwaway QHW_HOME unless --home is given.

    python benchmarks/accuracy.py [--maps paper zz angle reupload] [--qubits 5] [--components 5 30 60]
        [--readouts probabilities observables] [--train-seeds 0 1 2] [--seed 0] [--shots 1024] [--quick]

With --train-seeds, every classifier (the classical one too) is trained once a
seed and the table gives the mean and each seed's figure: on 1,000 test
images one classifier seed moves accuracy by about half a point, as much as
the gaps being compared.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import quick
import tables

LATENT = 64
#: Floors every run must reach, and the issue's aim: some map within 1 point of the classical baseline.
CLASSICAL_TARGET = 0.92
PAPER_ONE_CIRCUIT_TARGET = 0.68
BASELINE_GAP = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", nargs="+", default=["paper", "zz", "angle", "reupload"])
    parser.add_argument("--qubits", type=int, default=5)
    parser.add_argument("--components", type=int, nargs="+", help="default: the map's parameters, and the latent's largest multiple of them")
    parser.add_argument("--readouts", nargs="+", default=["probabilities", "observables"])
    parser.add_argument("--train-seeds", type=int, nargs="+", help="classifier seeds to average over (default: --seed alone)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--backend", default="aer_simulator")
    parser.add_argument("--home", type=Path, help="QHW_HOME to use (default: a temporary folder)")
    quick.add_option(parser)
    tables.add_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.maps, args.components, args.shots, args.backend = ["paper"], [5], 64, "statevector"
    os.environ["QHW_HOME"] = str(args.home or tempfile.mkdtemp(prefix="qhw-bench-"))

    from qhw import config, feature_maps, features, runs, training
    from qhw.store import Store

    store = Store(config.database_url())
    title = f"qhw accuracy by feature map: mnist-5k, seed {args.seed}, {args.shots} shots, {args.backend}"
    header = ("classifier", "readout", "map", "qubits", "components", "circuits a sample",
              "accuracy [95 %]" if not args.train_seeds else "accuracy: mean (each seed)", "vs classical", "target", "met",
              "features s", "submit s", "train s")
    rows = []

    started = time.perf_counter()
    first = features.build_features(store, seed=args.seed, **quick.features(args.quick))  # the latent is the map's business only downstream
    built = time.perf_counter() - started
    started = time.perf_counter()
    train_seeds = args.train_seeds or [args.seed]
    classical = [training.train_classical(store, feature_set_id=first.id, seed=seed, **quick.training(args.quick)) for seed in train_seeds]
    baseline = _mean(classical)
    rows.append(("classical", "-", "-", "-", f"{LATENT} latent", "-", _figure(classical, args.seed), "", f">= {CLASSICAL_TARGET:.2f}",
                  "yes" if baseline >= CLASSICAL_TARGET else "NO", f"{built:.1f}", "", f"{time.perf_counter() - started:.1f}"))
    best = None
    for name in args.maps:
        chosen = feature_maps.resolve(name, qubits=args.qubits)
        wide = LATENT // chosen.num_parameters * chosen.num_parameters
        for components in args.components or (chosen.num_parameters, 4 * chosen.num_parameters, wide):
            if components % chosen.num_parameters:
                print(f"skipped: {name} takes {chosen.num_parameters} parameters a circuit, {components} components is no multiple")
                continue
            started = time.perf_counter()
            feature_set = features.build_features(store, seed=args.seed, components=components, feature_map=chosen, **quick.features(args.quick))
            built = time.perf_counter() - started
            started = time.perf_counter()
            run = runs.submit(store, backend_name=args.backend, feature_set_id=feature_set.id, shots=args.shots, seed=args.seed).run
            simulated = time.perf_counter() - started
            for readout in args.readouts:
                started = time.perf_counter()
                hybrids = [training.train_hybrid(store, run_id=run.id, seed=seed, readout=readout, **quick.training(args.quick)) for seed in train_seeds]
                trained = (time.perf_counter() - started) / len(train_seeds)
                accuracy = _mean(hybrids)
                gap = accuracy - baseline
                if name == "paper" and components == chosen.num_parameters and readout == "probabilities":
                    target, met = f">= {PAPER_ONE_CIRCUIT_TARGET:.2f}", "yes" if accuracy >= PAPER_ONE_CIRCUIT_TARGET else "NO"
                else:
                    target, met = "", ""
                if best is None or accuracy > best[0]:
                    best = (accuracy, name, feature_set.circuits_per_sample, feature_set.num_qubits, readout)
                rows.append((
                    "hybrid", readout, name, str(feature_set.num_qubits), str(components), str(feature_set.circuits_per_sample),
                    _figure(hybrids, args.seed), f"{gap:+.3f}", target, met,
                    f"{built:.1f}", f"{simulated:.1f}", f"{trained:.1f}",
                ))
    notes = []
    if best is not None:
        accuracy, name, circuits, qubits, readout = best
        verdict = "within" if baseline - accuracy <= BASELINE_GAP else "NOT within"
        seeds = "" if len(train_seeds) == 1 else f" (means over classifier seeds {', '.join(map(str, train_seeds))})"
        notes.append(
            f"Best hybrid{seeds}: {name} read as {readout}, {circuits} circuits of {qubits} qubits a sample "
            f"({circuits * qubits} qubit-circuits; times the packing "
            f"factor's share on hardware), {accuracy:.3f} against the classical {baseline:.3f}: {verdict} {BASELINE_GAP:.2f} of it."
        )
    tables.Tables(args).show("maps", title, header, rows, notes)


def _mean(results) -> float:
    return sum(result.accuracy for result in results) / len(results)


def _figure(results, seed: int) -> str:
    """One seed: the accuracy and its 95 % bootstrap interval; several: the mean and each seed's."""
    if len(results) == 1:
        low, high = _interval(results[0], seed)
        return f"{results[0].accuracy:.3f} [{low:.3f}, {high:.3f}]"
    return f"{_mean(results):.3f} ({' '.join(f'{r.accuracy:.3f}' for r in results)})"


def _interval(result, seed: int) -> tuple[float, float]:
    """95 % bootstrap interval of a test accuracy: a 0/1 vector's percentile
    bootstrap depends only on its count of ones, so the count is enough."""
    import numpy as np

    from qhw.compare import bootstrap_interval

    n = result.test_samples
    hits = round(result.accuracy * n)
    return bootstrap_interval(np.r_[np.ones(hits), np.zeros(n - hits)], seed=seed)


if __name__ == "__main__":
    main()
