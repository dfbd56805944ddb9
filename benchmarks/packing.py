"""How many copies of the 5-qubit feature map fit side by side on a device (qhw.packing).

For IBM's heavy-hex devices the topology and calibration are the snapshots
that qiskit-ibm-runtime ships with its fake devices (fake_brisbane 127
qubits, fake_torino 133, fake_fez 156). For the square lattices of IQM's
Garnet (20 qubits) and Rigetti's Ankaa (84) this machine has no published
document (no network): their lattices are built here with made-up, slightly
varied figures (readout 2-3 %, two-qubit 1-1.5 %), so their rows show the
geometry, not the devices' calibration. IonQ Forte is all-to-all (36 qubits).

    python benchmarks/packing.py

Prints a table: copies (samples an execution) with an idle qubit between
copies (spacing 1) and without (spacing 0), the estimated error of the best
and the worst copy, and the time the partition took.
"""

from __future__ import annotations

import itertools
import time


def _ibm(name: str):
    from qiskit_ibm_runtime import fake_provider

    from qhw.backends.ibm import device_graph

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


def _ion_trap(qubits: int):
    from qhw.packing import DeviceGraph

    return DeviceGraph.of(range(qubits), itertools.combinations(range(qubits), 2), readout_error={q: 0.004 for q in range(qubits)})


def main() -> None:
    from qhw.packing import partition

    devices = {
        "fake_brisbane (heavy-hex 127)": lambda: _ibm("FakeBrisbane"),
        "fake_torino (heavy-hex 133)": lambda: _ibm("FakeTorino"),
        "fake_fez (heavy-hex 156)": lambda: _ibm("FakeFez"),
        "IQM Garnet-like lattice (20)": lambda: _lattice(4, 5, 1),
        "Rigetti Ankaa-like lattice (84)": lambda: _lattice(7, 12, 0),
        "IonQ Forte-like all-to-all (36)": lambda: _ion_trap(36),
    }
    header = f"{'device':34} {'spacing':>7} {'copies':>6} {'best error':>10} {'worst error':>11} {'seconds':>8}"
    print(header)
    print("-" * len(header))
    for name, build in devices.items():
        graph = build()
        for spacing in (1, 0):
            start = time.perf_counter()
            packed = partition(graph, width=5, spacing=spacing)
            seconds = time.perf_counter() - start
            print(f"{name:34} {spacing:>7} {len(packed.copies):>6} {packed.best_error:>10.3f} {packed.worst_error:>11.3f} {seconds:>8.3f}")


if __name__ == "__main__":
    main()
