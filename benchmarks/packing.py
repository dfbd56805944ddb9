"""How many copies of the 5-qubit feature map fit side by side on a device (qhw.packing).

For IBM's heavy-hex devices the topology and calibration are the snapshots
that qiskit-ibm-runtime ships with its fake devices (fake_brisbane 127
qubits, fake_torino 133, fake_fez 156). For the square lattices of IQM's
Garnet (20 qubits) and Rigetti's Ankaa (84) this machine has no published
document (no network): their lattices are built here with made-up, slightly
varied figures (readout 2-3 %, two-qubit 1-1.5 %), so their rows show the
geometry, not the devices' calibration. IonQ Forte is all-to-all (36 qubits);
a 32-ion trap with one broken coupler and a 100-qubit all-to-all device show
that dense devices are partitioned in polynomial time (qhw.packing, rule 5).

    python benchmarks/packing.py

Prints two tables: copies (samples an execution) with an idle qubit between
copies (spacing 1) and without (spacing 0), the estimated error of the best
and the worst copy, and the time the partition took; then the paper's test
set of full MNIST (10,000 images, 1,024 shots) on ibm_fez as qhw estimates
its QPU time, unpacked and with ``--pack auto``, before any network (IBM's
documented estimate from qiskit-ibm-runtime's snapshot of the device), against
the 600 s of IBM's free Open plan a month.

    python benchmarks/packing.py --accuracy [--shots 1024] [--device fake_fez]

also runs mnist-5k (seed 0) on the statevector simulator, its test split on
the emulated device unpacked and with ``--pack auto``, and compares each with
the simulator: the transfer accuracy of the packed run should fall inside the
bootstrap interval of the unpacked one (the emulation has no crosstalk, so
only the copies' own qubits differ).
"""

from __future__ import annotations

import itertools
import time

import quick
import tables


def _ibm(name: str):
    from qiskit_ibm_runtime import fake_provider

    from qhw.backends._ibm_calibration import device_graph

    return device_graph(getattr(fake_provider, name)().target)


def _lattice(rows: int, columns: int, first: int):
    from qhw.packing import DeviceGraph

    label = {(r, c): first + r * columns + c for r in range(rows) for c in range(columns)}
    couplers = [(label[r, c], label[r, c + 1]) for r in range(rows) for c in range(columns - 1)]
    couplers += [(label[r, c], label[r + 1, c]) for r in range(rows - 1) for c in range(columns)]
    return DeviceGraph.of(
        label.values(),
        couplers,
        readout_error={q: 0.02 * (1 + (q % 7) / 10) for q in label.values()},
        gate_error={pair: 0.01 * (1 + (sum(pair) % 5) / 10) for pair in couplers},
    )


def _ion_trap(qubits: int, broken: tuple[int, int] | None = None):
    """All-to-all; ``broken``: a coupler left out (a trap with one broken pair)."""
    from qhw.packing import DeviceGraph

    pairs = [pair for pair in itertools.combinations(range(qubits), 2) if pair != broken]
    return DeviceGraph.of(range(qubits), pairs, readout_error={q: 0.004 + q / 100_000 for q in range(qubits)})


def main(published: tables.Tables) -> None:
    from qhw.packing import partition

    devices = {
        "fake_brisbane (heavy-hex 127)": lambda: _ibm("FakeBrisbane"),
        "fake_torino (heavy-hex 133)": lambda: _ibm("FakeTorino"),
        "fake_fez (heavy-hex 156)": lambda: _ibm("FakeFez"),
        "IQM Garnet-like lattice (20)": lambda: _lattice(4, 5, 1),
        "Rigetti Ankaa-like lattice (84)": lambda: _lattice(7, 12, 0),
        "IonQ Forte-like all-to-all (36)": lambda: _ion_trap(36),
        "ion trap, one broken coupler (32)": lambda: _ion_trap(32, broken=(3, 17)),
        "all-to-all (100)": lambda: _ion_trap(100),
    }
    rows = []
    for name, build in devices.items():
        graph = build()
        for spacing in (1, 0):
            start = time.perf_counter()
            packed = partition(graph, width=5, spacing=spacing)
            seconds = time.perf_counter() - start
            rows.append((name, spacing, len(packed.copies), f"{packed.best_error:.3f}", f"{packed.worst_error:.3f}", f"{seconds:.3f}"))
    published.show(
        "copies", "copies of the 5-qubit feature map a device holds (qhw.packing), best error and worst error of a copy",
        ("device", "spacing", "copies", "best error", "worst error", "seconds"), rows,
    )


def qpu_time(published: tables.Tables, samples: int = 10_000, shots: int = 1024, device: str = "ibm_fez") -> None:
    from qhw.backend import get_backend
    from qhw.circuits import feature_map
    from qhw.planning import plan_jobs, plan_packing, sent_sizes
    from qhw.pricing import load_prices

    backend = get_backend(device)
    prices = load_prices()
    rows = []
    unpacked = None
    for label, wanted in (("unpacked (--pack 1)", 1), ("--pack auto, spacing 1", None)):
        profile = backend.profile(offline=True)  # before any network, as qhw submit estimates
        copies = plan_packing(backend, profile, wanted, 1, template=feature_map()).copies
        plans = plan_jobs(backend, profile, samples, shots, copies=copies)
        sizes = sent_sizes(plans, copies)
        estimate = backend.estimate_cost(profile, sizes, shots, prices)
        seconds = estimate.usd / prices["ibm_usd_per_qpu_second"]
        unpacked = unpacked or seconds
        rows.append((label, copies, len(plans), f"{sum(sizes):,}", f"{seconds:,.0f}", f"{seconds / unpacked:.3f} (1/{unpacked / seconds:.1f})",
                     f"{estimate.usd:,.2f}"))
    published.show(
        "qpu-time", f"{device}: {samples:,} samples x {shots:,} shots, qhw's estimate before any network (the device's snapshot)",
        ("configuration", "copies", "jobs", "executions", "QPU s", "vs unpacked", "USD"), rows,
    )


def accuracy(published: tables.Tables, device: str, shots: int, seed: int = 0, quick_mode: bool = False) -> None:
    import os
    import tempfile

    os.environ["QHW_HOME"] = tempfile.mkdtemp(prefix="qhw-bench-")
    from qhw import config, features, runs
    from qhw.compare import compare
    from qhw.store import Store

    store = Store(config.database_url())
    feature_set = features.build_features(store, seed=seed, **quick.features(quick_mode))
    simulator = runs.submit(store, backend_name="statevector", feature_set_id=feature_set.id, shots=shots, seed=seed).run
    rows = []
    for label, pack in (("unpacked", 1), ("--pack auto", "auto")):
        started = time.perf_counter()
        result = runs.submit(store, backend_name=device, feature_set_id=feature_set.id, split="test", shots=shots, seed=seed, pack=pack)
        seconds = time.perf_counter() - started
        comparison = compare(store, simulator_run_id=simulator.id, hardware_run_id=result.run.id, seed=seed, **quick.training(quick_mode))
        transfer = comparison.accuracy("transfer")
        shown = f"{transfer.accuracy:.3f} [{transfer.low:.3f}, {transfer.high:.3f}]"
        rows.append((label, result.run.copies, f"{result.executions:,}", f"{seconds:.1f}", shown, f"{comparison.agreement.fidelity.mean:.4f}"))
    published.show(
        "accuracy", f"{device}, mnist-5k test split, {shots} shots, trained on the statevector simulator",
        ("configuration", "copies", "executions", "submit s", "transfer accuracy [95 %]", "mean fidelity"), rows,
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accuracy", action="store_true", help="also run and compare mnist-5k on an emulated device")
    parser.add_argument("--device", default="fake_fez")
    parser.add_argument("--shots", type=int, default=1024)
    quick.add_option(parser)
    tables.add_option(parser)
    args = parser.parse_args()
    if args.quick:  # every step, the accuracy too, on the 5-qubit device (one copy) at 64 shots
        args.accuracy, args.device, args.shots = True, "fake_manila", 64
    published = tables.Tables(args)
    main(published)
    qpu_time(published)
    if args.accuracy:
        accuracy(published, args.device, args.shots, quick_mode=args.quick)
