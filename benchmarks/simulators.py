"""Per-sample cost of qhw's local backends against the NumPy floor, in one run.

The floor: the feature map's exact outcome probabilities in closed form (each
qubit reads 1 with probability (1 - sin theta)/2 before the CNOT cascade),
then NumPy's multinomial draw of the shots. Every other row is a real
`qhw submit` in this process (transpile, ledger writes, counts stored), timed
from the call to its return, on the samples of the embedded MNIST subset; the
last rows put qhw's own overhead beside the raw Aer call it wraps.

    python benchmarks/simulators.py [--samples 5000] [--shots 1024] [--large 70000] [--quick]

``--large`` times the statevector backend and the floor on that many samples
(random angles: no feature set that large is needed to time the simulation).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import quick
import tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5000, help="samples of mnist-5k to run (at most 5000)")
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--large", type=int, default=70_000, help="samples for the statevector-against-floor row")
    parser.add_argument("--skip", nargs="*", default=[], help="backends to leave out, e.g. braket_local")
    quick.add_option(parser)
    tables.add_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.samples, args.large, args.shots = 100, 2000, 64
    os.environ["QHW_HOME"] = tempfile.mkdtemp(prefix="qhw-simulators-")

    import numpy as np

    from qhw import circuits, config, parallel, runs
    from qhw.backend import get_backend
    from qhw.features import build_features
    from qhw.store import Store
    from qhw.store.arrays import load_arrays

    store = Store(config.database_url())
    limit_test = min(1000, args.samples // 5)
    feature_set = build_features(store, epochs=1, limit_train=args.samples - limit_test, limit_test=limit_test)
    angles = np.concatenate([load_arrays(store.artifacts, feature_set).angles_train, load_arrays(store.artifacts, feature_set).angles_test])
    n, cores = len(angles), parallel.default_workers()
    rows: list[tuple[str, float, str]] = []

    def floor(values: np.ndarray, seed: int = 0) -> float:
        start = time.perf_counter()
        p_one = (1 - np.sin(values.astype(np.float64))) / 2
        index = np.arange(32)
        outputs = (index[:, None] >> np.arange(5)) & 1
        before = outputs.copy()
        before[:, 1:] ^= outputs[:, :-1]  # pre-cascade bits from the outputs
        probabilities = np.prod(np.where(before[None, :, :] == 1, p_one[:, None, :], 1 - p_one[:, None, :]), axis=2)
        probabilities /= probabilities.sum(axis=1, keepdims=True)  # rounding may leave a sum of 1 + 1e-16
        np.random.default_rng(seed).multinomial(args.shots, probabilities)
        return time.perf_counter() - start

    def timed_submit(backend: str, workers: int | None) -> float:
        start = time.perf_counter()
        runs.submit(store, backend_name=backend, feature_set_id=feature_set.id, shots=args.shots, workers=workers)
        return time.perf_counter() - start

    floor_seconds = min(floor(angles) for _ in range(3))
    rows.append((f"NumPy floor (closed form + multinomial), {n} samples", floor_seconds, "1.0x"))
    cases = [("statevector", 1), ("aer_simulator", 1), ("aer_simulator", cores), ("fake_manila", 1), ("fake_manila", cores), ("braket_local", 1)]
    for backend, workers in cases:
        if backend in args.skip:
            continue
        seconds = timed_submit(backend, workers)
        rows.append((f"qhw submit {backend}, {workers} worker(s), {n} samples", seconds, f"{seconds / floor_seconds:,.0f}x"))

    # statevector at full-dataset size, against the floor on the same angles.
    large = np.random.default_rng(0).uniform(-np.pi / 2, np.pi / 2, (args.large, 5))
    simulator = get_backend("statevector", seed=0)
    executable = simulator.transpile(circuits.feature_map(), seed=0)
    simulator.run(executable, large[:10], args.shots)  # compile once
    start = time.perf_counter()
    for chunk in range(0, args.large, 10_000):
        simulator.run(executable, large[chunk : chunk + 10_000], args.shots, seed=chunk)
    statevector_seconds = time.perf_counter() - start
    large_floor = min(floor(large) for _ in range(3))
    rows.append((f"NumPy floor, {args.large} samples", large_floor, "1.0x"))
    rows.append((f"statevector backend, {args.large} samples (jobs of 10,000)", statevector_seconds, f"{statevector_seconds / large_floor:.1f}x"))

    # qhw's own overhead on aer_simulator: the same SamplerV2 calls, raw, one thread.
    from qiskit_aer.primitives import SamplerV2

    aer = get_backend("aer_simulator", seed=0)
    transpiled = aer.transpile(circuits.feature_map(), seed=0).circuit
    values = circuits.parameter_rows(angles, 1, transpiled)
    start = time.perf_counter()
    for first in range(0, n, 1000):
        sampler = SamplerV2(seed=first, options={"backend_options": {"max_parallel_threads": 1}})
        sampler.run([(transpiled, values[first : first + 1000])], shots=args.shots).result()
    raw = time.perf_counter() - start
    start = time.perf_counter()
    for first in range(0, n, 1000):
        SamplerV2(seed=first).run([(transpiled, values[first : first + 1000])], shots=args.shots).result()
    raw_threads = time.perf_counter() - start
    wrapped = timed_submit("aer_simulator", 1)
    rows.append((f"raw Aer SamplerV2, jobs of 1,000, Aer's own threads (all cores), {n} samples", raw_threads, f"{raw_threads / raw:.2f}x one thread"))
    rows.append((f"raw Aer SamplerV2, jobs of 1,000, one thread, {n} samples", raw, "1.00 (reference)"))
    rows.append((f"qhw submit aer_simulator, 1 worker, {n} samples", wrapped, f"{wrapped / raw:.2f}x the raw call"))

    published = tables.Tables(args)
    published.show(
        "local", f"qhw local simulators, {args.shots} shots; {cores} cores", ("what", "seconds", "per sample (us)", "ratio"),
        [(what, f"{seconds:.3f}", f"{seconds / (args.large if str(args.large) in what else n) * 1e6:,.1f}", ratio) for what, seconds, ratio in rows],
    )
    noisy_table(args, published, store, feature_set, angles, floor_seconds)
    store.close()


def noisy_table(args, published: tables.Tables, store, feature_set, angles, floor_seconds: float) -> None:
    """Emulated devices: qhw's noisy engine (the default) against Aer's
    sampling path (``--engine aer``, Runtime's local mode) and Aer's
    density-matrix method with the same noise model, per sample, one worker."""
    import warnings

    import numpy as np

    from qhw import circuits, runs
    from qhw.backend import get_backend
    from qhw.backends import _density
    from qhw.executables import packed_executable
    from qhw.planning import RunRequest, plan_run
    from qhw.store.arrays import load_arrays

    n = len(angles)
    rows: list[tuple[str, int, float]] = [("NumPy floor, ideal (closed form + multinomial)", n, floor_seconds)]

    def timed(backend: str, **options) -> float:
        start = time.perf_counter()
        runs.submit(store, backend_name=backend, feature_set_id=feature_set.id, shots=args.shots, workers=1, **options)
        return time.perf_counter() - start

    # fake_manila: the whole subset through qhw on each engine.
    aer_manila = timed("fake_manila", engine="aer")
    density_manila = timed("fake_manila")
    rows += [("fake_manila, qhw submit --engine aer (Runtime local mode, shot by shot)", n, aer_manila)]
    rows += [("fake_manila, qhw submit (density engine)", n, density_manila)]
    manila = get_backend("fake_manila", seed=0)
    executable = manila.transpile(circuits.feature_map(), seed=0)
    values = circuits.parameter_rows(angles, 1, executable.circuit)
    start = time.perf_counter()
    program = manila._engine_program(executable)  # the noise model of its qubits, compiled (once a run)
    _density.probabilities(program, values, ["meas"])
    rows += [("fake_manila, the engine's floor (probabilities only: no shots, no ledger)", n, time.perf_counter() - start)]
    # Aer's density-matrix method with the same noise model, a parameter row at a time (a subset).
    from qiskit_aer import AerSimulator

    few = min(n, 100 if args.quick else 500)
    simulator = AerSimulator(method="density_matrix", noise_model=program_model(manila, executable), max_parallel_threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        simulator.run([executable.circuit.assign_parameters(row) for row in values[:few]], shots=args.shots, seed_simulator=0).result()
    rows += [("fake_manila, Aer density_matrix method, same noise model (a job of bound circuits)", few, time.perf_counter() - start)]

    # fake_fez --pack auto: the subset through qhw, Aer's path on a part of it.
    part = min(len(load_arrays(store.artifacts, feature_set).angles_test), 1000)  # the test split, at most 1,000
    density_fez = timed("fake_fez", pack="auto")
    if args.quick:  # Aer's path reads fake_fez's whole noise model (20 s or more): left to the full run
        aer_fez = None
    else:
        aer_fez = timed_limit(store, feature_set, args.shots, part)
        rows += [(f"fake_fez --pack auto, qhw submit --engine aer, {part} samples", part, aer_fez)]
    rows += [("fake_fez --pack auto, qhw submit (density engine)", n, density_fez)]
    # fake_fez --pack auto --reuse auto with every --noise effect on: the engine against Aer on the same noise.
    harsh = "realistic,prep=auto,scale=1.5,readout=1.5,bad-qubit=10:0.1"
    reused = dict(pack="auto", reuse="auto", noise=harsh)
    noisy_part = part
    if args.quick:
        aer_noisy = None
    else:
        start = time.perf_counter()
        runs.submit(store, backend_name="fake_fez", feature_set_id=feature_set.id, shots=args.shots, workers=1, engine="aer",
                    limit=noisy_part, split="test", **reused)
        aer_noisy = time.perf_counter() - start
        rows += [(f"fake_fez --noise (every effect) --pack auto --reuse auto, qhw submit --engine aer, {noisy_part} samples", noisy_part, aer_noisy)]
    rows += [("fake_fez --noise (every effect) --pack auto --reuse auto, qhw submit (density engine)", n, timed("fake_fez", **reused))]

    # All of MNIST: 70,000 samples' worth of random angles, packed as qhw plans them, one process, the ledger left out.
    fez = get_backend("fake_fez", seed=0)
    total = 2_000 if args.quick else 70_000
    request = RunRequest(executions=total, shots=args.shots, template=circuits.feature_map(), pack=None)
    plan = plan_run(fez, fez.profile(), request, None)
    start = time.perf_counter()
    packed = packed_executable(fez, plan.packing, 0, template=circuits.feature_map())
    logical = np.random.default_rng(0).uniform(-np.pi / 2, np.pi / 2, (total, 5))
    rows_packed = circuits.circuit_rows(logical, packed.circuit, packed.slots)
    for first in range(0, len(rows_packed), 256):  # the emulator's jobs (256 packed executions)
        fez.run(packed, rows_packed[first : first + 256], args.shots, seed=first)
    label = f"fake_fez --pack auto ({packed.copies} copies), the engine, {total:,} samples, compiled and run in one process"
    rows += [(label, total, time.perf_counter() - start)]

    # braket_emulator: an IQM-like document (the tests' own: Braket's schema
    # classes, Garnet-like figures), on the engine and on LocalEmulator (a part).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from device_documents import write_garnet_like

    document = write_garnet_like(Path(os.environ["QHW_HOME"]) / "garnet.json")
    emulator = f"braket_emulator:{document}"
    few_braket = min(len(load_arrays(store.artifacts, feature_set).angles_test), 100 if args.quick else 500)
    start = time.perf_counter()
    runs.submit(store, backend_name=emulator, feature_set_id=feature_set.id, shots=args.shots, workers=1, engine="braket", limit=few_braket, split="test")
    braket_local = time.perf_counter() - start
    rows += [(f"braket_emulator (IQM-like), qhw submit --engine braket (LocalEmulator), {few_braket} samples", few_braket, braket_local)]
    rows += [("braket_emulator (IQM-like), qhw submit (density engine)", n, timed(emulator))]

    reference = {  # (the noisy rows first: their label starts as fake_fez's)
        "fake_fez --noise": None if aer_noisy is None else aer_noisy / noisy_part,
        "fake_manila": aer_manila / n, "fake_fez": None if aer_fez is None else aer_fez / part, "braket_emulator": braket_local / few_braket,
    }
    shown = []
    for what, samples, seconds in rows:
        per = seconds / samples
        device = next((d for d in reference if what.startswith(d)), None)
        if "--engine " in what:  # the provider's own path: the row the others are measured against
            ratio = "1x (the reference)"
        else:
            ratio = f"{reference[device] / per:,.1f}x faster" if device and reference[device] else ""
        shown.append((what, f"{samples:,}", f"{seconds:.2f}", f"{per * 1e6:,.1f}", ratio))
    published.show(
        "emulated", f"emulated devices, {args.shots} shots, one worker", ("what", "samples", "seconds", "per sample (us)", "vs its provider's path"), shown,
    )

def program_model(backend, executable):
    """The noise model the engine reads for an executable's instructions (the device's own, restricted)."""
    from qhw.backends._ibm_calibration import device_noise_model

    circuit = executable.circuit
    return device_noise_model(backend._device, frozenset((i.operation.name, tuple(circuit.find_bit(q).index for q in i.qubits)) for i in circuit.data))


def timed_limit(store, feature_set, shots: int, limit: int) -> float:
    from qhw import runs

    start = time.perf_counter()
    runs.submit(store, backend_name="fake_fez", feature_set_id=feature_set.id, shots=shots, workers=1, pack="auto", engine="aer", limit=limit, split="test")
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
