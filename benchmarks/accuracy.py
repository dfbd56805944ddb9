"""Accuracy of the classical baseline and the hybrid classifier on aer_simulator.

mnist-5k (4,000 train / 1,000 test), seed 0, 1,024 shots, the library's
defaults otherwise. Prints one table: each figure, the target it must reach,
and how long each step took. Runs in a throwaway QHW_HOME unless --home is given.

    python benchmarks/accuracy.py [--components 5 20] [--seed 0] [--shots 1024]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

TARGETS = {("classical", 5): 0.92, ("hybrid", 5): 0.68, ("hybrid", 20): 0.92}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--components", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--home", type=Path, help="QHW_HOME to use (default: a temporary folder)")
    args = parser.parse_args()
    os.environ["QHW_HOME"] = str(args.home or tempfile.mkdtemp(prefix="qhw-bench-"))

    from rich.console import Console
    from rich.table import Table

    from qhw import config, features, runs, training
    from qhw.store import Store

    store = Store(config.database_url())
    table = Table(title=f"qhw accuracy: mnist-5k, seed {args.seed}, {args.shots} shots, aer_simulator")
    for column in ("classifier", "components", "circuits", "accuracy", "target", "met", "features s", "submit s", "train s"):
        table.add_column(column)

    def row(kind: str, components: int, accuracy: float, seconds: dict[str, float]) -> None:
        target = TARGETS.get((kind, components))
        met = "" if target is None else ("yes" if accuracy >= target else "NO")
        table.add_row(
            kind, str(components), str(components // 5), f"{accuracy:.3f}",
            "" if target is None else f">= {target:.2f}", met,
            *(f"{seconds[k]:.1f}" if k in seconds else "" for k in ("features", "submit", "train")),
        )

    for components in args.components:
        started = time.perf_counter()
        feature_set = features.build_features(store, seed=args.seed, components=components)
        built = time.perf_counter() - started
        started = time.perf_counter()
        classical = training.train_classical(store, feature_set_id=feature_set.id, seed=args.seed)
        row("classical", components, classical.accuracy, {"features": built, "train": time.perf_counter() - started})
        started = time.perf_counter()
        run = runs.submit(
            store, backend_name="aer_simulator", feature_set_id=feature_set.id, shots=args.shots, seed=args.seed
        ).run
        simulated = time.perf_counter() - started
        started = time.perf_counter()
        hybrid = training.train_hybrid(store, run_id=run.id, seed=args.seed)
        row("hybrid", components, hybrid.accuracy, {"submit": simulated, "train": time.perf_counter() - started})
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
