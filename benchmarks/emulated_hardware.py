"""What IBM's emulated devices do to the hybrid classifier, with and without readout mitigation.

mnist-5k, seed 0, for each feature map (the paper's, and angle encoding: the
same information, as docs/explanation/science.md shows, without the paper's
four CNOTs): aer_simulator on every sample; each device on every sample
too, with --mitigate readout (the emulated devices' noise is IBM's calibrated
model of each, run by qhw's noisy engine), then `compare`. For each device:
the simulator's accuracy, the transfer accuracy (trained on the simulator,
tested on the device), the same on readout-mitigated quasi-probabilities,
trained and tested on the device (with and without mitigation), and the
classical baseline, each with its 95 % bootstrap interval. Prints one table.
Runs in a throwaway QHW_HOME unless --home is given.

    python benchmarks/emulated_hardware.py [--maps paper angle] [--devices fake_manila fake_lima fake_fez] [--shots 1024] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import quick
import tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", nargs="+", default=["fake_manila", "fake_lima", "fake_fez"])
    parser.add_argument("--maps", nargs="+", default=["paper", "angle"], help="feature maps (qhw features build --feature-map)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--home", type=Path, help="QHW_HOME to use (default: a temporary folder)")
    quick.add_option(parser)
    tables.add_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.devices, args.shots, args.maps = ["fake_manila"], 64, ["paper"]
    os.environ["QHW_HOME"] = str(args.home or tempfile.mkdtemp(prefix="qhw-bench-"))

    from qhw import config, feature_maps, features, runs
    from qhw.compare import compare
    from qhw.store import Store

    store = Store(config.database_url())
    title = f"hybrid classifier on emulated IBM devices: mnist-5k, seed {args.seed}, {args.shots} shots, every sample"
    cases = ("simulator", "transfer", "transfer-mitigated", "hardware", "hardware-mitigated", "classical")
    header = ("map", "device", "layout", "fidelity to the simulator (mean)", *cases, "submit s", "compare s")
    rows = []
    for name in args.maps:
        feature_set = features.build_features(store, seed=args.seed, feature_map=feature_maps.resolve(name), **quick.features(args.quick))
        simulator = runs.submit(store, backend_name="aer_simulator", feature_set_id=feature_set.id, shots=args.shots, seed=args.seed).run
        for device in args.devices:
            started = time.perf_counter()
            run = runs.submit(store, backend_name=device, feature_set_id=feature_set.id, shots=args.shots, seed=args.seed, mitigate="readout").run
            submitted = time.perf_counter() - started
            started = time.perf_counter()
            result = compare(store, simulator_run_id=simulator.id, hardware_run_id=run.id, seed=args.seed, **quick.training(args.quick))
            compared = time.perf_counter() - started
            accuracy = {a.case: a for a in result.accuracies}
            shown = [f"{accuracy[case].accuracy:.3f} [{accuracy[case].low:.3f}, {accuracy[case].high:.3f}]" if case in accuracy else "" for case in cases]
            layout = " ".join(map(str, run.layout or ()))
            rows.append((name, device, layout, f"{result.agreement.fidelity.mean:.4f}", *shown, f"{submitted:.1f}", f"{compared:.1f}"))
    tables.Tables(args).show("devices", title, header, rows)


if __name__ == "__main__":
    main()
