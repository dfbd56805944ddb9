"""What IBM's emulated devices do to the hybrid classifier, with and without readout mitigation.

mnist-5k, seed 0: aer_simulator on every sample, each device on the test
samples with --mitigate readout, then `compare`. Prints one table. Runs in a
throwaway QHW_HOME unless --home is given.

    python benchmarks/emulated_hardware.py [--devices fake_manila fake_lima fake_quito] [--shots 1024] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import quick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", nargs="+", default=["fake_manila", "fake_lima", "fake_quito"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--home", type=Path, help="QHW_HOME to use (default: a temporary folder)")
    quick.add_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.devices, args.shots = ["fake_manila"], 64
    os.environ["QHW_HOME"] = str(args.home or tempfile.mkdtemp(prefix="qhw-bench-"))

    from rich.console import Console
    from rich.table import Table

    from qhw import config, features, runs
    from qhw.compare import compare
    from qhw.store import Store

    store = Store(config.database_url())
    feature_set = features.build_features(store, seed=args.seed, **quick.features(args.quick))
    simulator = runs.submit(store, backend_name="aer_simulator", feature_set_id=feature_set.id, shots=args.shots, seed=args.seed).run
    table = Table(title=f"hybrid classifier on emulated IBM devices: mnist-5k, seed {args.seed}, {args.shots} shots")
    for column in ("device", "layout", "fidelity (mean)", "simulator", "transfer", "transfer mitigated", "submit s", "compare s"):
        table.add_column(column)
    for device in args.devices:
        started = time.perf_counter()
        run = runs.submit(
            store, backend_name=device, feature_set_id=feature_set.id, split="test", shots=args.shots, seed=args.seed, mitigate="readout"
        ).run
        submitted = time.perf_counter() - started
        started = time.perf_counter()
        result = compare(store, simulator_run_id=simulator.id, hardware_run_id=run.id, seed=args.seed, **quick.training(args.quick))
        compared = time.perf_counter() - started
        accuracy = {a.case: a for a in result.accuracies}
        cases = ("simulator", "transfer", "transfer-mitigated")
        shown = [f"{accuracy[case].accuracy:.3f} [{accuracy[case].low:.3f}, {accuracy[case].high:.3f}]" for case in cases]
        table.add_row(device, str(run.layout), f"{result.agreement.fidelity.mean:.4f}", *shown, f"{submitted:.1f}", f"{compared:.1f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
