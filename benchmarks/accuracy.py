"""Accuracy of the classical baseline and the hybrid classifier, for each feature map.

mnist-5k (4,000 train / 1,000 test), seed 0, 1,024 shots on aer_simulator,
the library's defaults otherwise. For each map: one circuit a sample
(components = qubits), and the components that use the 64 latent dimensions
(the largest multiple of the map's parameters that the latent holds: 60 for
5 qubits, 64 for 8). Prints one table: each figure with its 95 % bootstrap
interval, its gap to the classical baseline, the target it must reach, the
circuits and qubits a sample costs, and how long each step took. Runs in a
throwaway QHW_HOME unless --home is given.

    python benchmarks/accuracy.py [--maps paper zz angle reupload] [--qubits 5] [--seed 0] [--shots 1024]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

LATENT = 64
#: Floors every run must reach, and the issue's aim: some map within 1 point of the classical baseline.
CLASSICAL_TARGET = 0.92
PAPER_ONE_CIRCUIT_TARGET = 0.68
BASELINE_GAP = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", nargs="+", default=["paper", "zz", "angle", "reupload"])
    parser.add_argument("--qubits", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--backend", default="aer_simulator")
    parser.add_argument("--home", type=Path, help="QHW_HOME to use (default: a temporary folder)")
    args = parser.parse_args()
    os.environ["QHW_HOME"] = str(args.home or tempfile.mkdtemp(prefix="qhw-bench-"))

    from rich.console import Console
    from rich.table import Table

    from qhw import config, feature_maps, features, runs, training
    from qhw.store import Store

    store = Store(config.database_url())
    table = Table(title=f"qhw accuracy by feature map: mnist-5k, seed {args.seed}, {args.shots} shots, {args.backend}")
    for column in ("classifier", "map", "qubits", "components", "circuits", "accuracy [95 %]", "vs classical", "target", "met",
                   "features s", "submit s", "train s"):
        table.add_column(column)

    started = time.perf_counter()
    first = features.build_features(store, seed=args.seed)  # the latent is the map's business only downstream
    built = time.perf_counter() - started
    started = time.perf_counter()
    classical = training.train_classical(store, feature_set_id=first.id, seed=args.seed)
    baseline = classical.accuracy
    table.add_row("classical", "-", "-", f"{LATENT} latent", "-", f"{baseline:.3f}", "", f">= {CLASSICAL_TARGET:.2f}",
                  "yes" if baseline >= CLASSICAL_TARGET else "NO", f"{built:.1f}", "", f"{time.perf_counter() - started:.1f}")
    best = None
    for name in args.maps:
        chosen = feature_maps.resolve(name, qubits=args.qubits)
        wide = LATENT // chosen.num_parameters * chosen.num_parameters
        for components in (chosen.num_parameters, wide):
            started = time.perf_counter()
            feature_set = features.build_features(store, seed=args.seed, components=components, feature_map=chosen)
            built = time.perf_counter() - started
            started = time.perf_counter()
            run = runs.submit(store, backend_name=args.backend, feature_set_id=feature_set.id, shots=args.shots, seed=args.seed).run
            simulated = time.perf_counter() - started
            started = time.perf_counter()
            hybrid = training.train_hybrid(store, run_id=run.id, seed=args.seed)
            trained = time.perf_counter() - started
            low, high = _interval(hybrid, args.seed)
            gap = hybrid.accuracy - baseline
            if name == "paper" and components == chosen.num_parameters:
                target, met = f">= {PAPER_ONE_CIRCUIT_TARGET:.2f}", "yes" if hybrid.accuracy >= PAPER_ONE_CIRCUIT_TARGET else "NO"
            else:
                target, met = "", ""
            if best is None or hybrid.accuracy > best[0]:
                best = (hybrid.accuracy, name, feature_set.circuits_per_sample, feature_set.num_qubits)
            table.add_row(
                "hybrid", name, str(feature_set.num_qubits), str(components), str(feature_set.circuits_per_sample),
                f"{hybrid.accuracy:.3f} [{low:.3f}, {high:.3f}]", f"{gap:+.3f}", target, met,
                f"{built:.1f}", f"{simulated:.1f}", f"{trained:.1f}",
            )
    Console(width=160).print(table)
    if best is not None:
        accuracy, name, circuits, qubits = best
        verdict = "within" if baseline - accuracy <= BASELINE_GAP else "NOT within"
        print(
            f"best hybrid: {name}, {circuits} circuits of {qubits} qubits a sample ({circuits * qubits} qubit-circuits; times the packing "
            f"factor's share on hardware), {accuracy:.3f} against the classical {baseline:.3f}: {verdict} {BASELINE_GAP:.2f} of it"
        )


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
