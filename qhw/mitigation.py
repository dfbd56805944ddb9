"""Readout mitigation with mthree (IBM's maintained M3 package).

A run submitted with ``--mitigate readout`` also measures two calibration
states on the feature map's own physical qubits: all qubits prepared 0, and
all prepared 1 (on every copy's qubits, for a packed run: each copy is
mitigated by its own). Each qubit's 2x2 assignment matrix comes from those counts
(independent readout errors, as M3's "independent" calibration assumes), and
mthree turns every sample's counts into quasi-probabilities. These are stored
beside the raw counts, never instead of them.
"""

from __future__ import annotations

import numpy as np

from qhw.errors import ConfigError
from qhw.jobstates import FINAL_STATES, JobState
from qhw.records import RunRecord
from qhw.store import RunCounts, Store

METHOD = "readout-m3"


def assignment_matrices(all_zeros: np.ndarray, all_ones: np.ndarray, num_qubits: int) -> list[np.ndarray]:
    """Per-qubit matrices A[measured, prepared] from the two calibration count vectors.

    Args:
        all_zeros: counts (2**q,) of the circuit that prepared every qubit in 0.
        all_ones: counts (2**q,) of the circuit that prepared every qubit in 1.
    """
    outcomes = np.arange(2**num_qubits)
    matrices = []
    for qubit in range(num_qubits):
        reads_one = (outcomes >> qubit) & 1 == 1
        p1_given_0 = all_zeros[reads_one].sum() / all_zeros.sum()
        p0_given_1 = all_ones[~reads_one].sum() / all_ones.sum()
        matrices.append(np.array([[1 - p1_given_0, p0_given_1], [p1_given_0, 1 - p0_given_1]]))
    return matrices


def mitigate_counts(counts: np.ndarray, matrices: list[np.ndarray]) -> np.ndarray:
    """Quasi-probabilities (..., 2**q) for canonical counts (..., 2**q), through mthree."""
    import mthree

    num_qubits = len(matrices)
    mitigator = mthree.M3Mitigation()
    mitigator.cals_from_matrices(matrices)
    flat = counts.reshape(-1, counts.shape[-1])
    # mthree's bitstrings use Qiskit's order (qubit 0 last), which is the
    # binary form of qhw's canonical index.
    as_dicts = [{format(i, f"0{num_qubits}b"): int(c) for i, c in enumerate(row) if c} for row in flat]
    quasis = mitigator.apply_correction(as_dicts, qubits=list(range(num_qubits)))
    dense = np.zeros(flat.shape, dtype=np.float64)
    for row, quasi in enumerate(quasis):
        for bitstring, value in quasi.items():
            dense[row, int(bitstring, 2)] = value
    return dense.reshape(counts.shape)


def calibration_missing(store: Store, run: RunRecord) -> str | None:
    """Why the run's readout calibration cannot be used yet, or None when it can."""
    if run.mitigation != "readout":
        return f"run {run.id} has no readout calibration: submit with --mitigate readout"
    if len(store.results.calibration(run.id)) == 2 * run.slots:
        return None
    jobs = [job for job in store.ledger.jobs(run.id) if job.purpose == "calibration" and job.state is not JobState.COLLECTED]
    ended = [job for job in jobs if job.state in FINAL_STATES]
    if ended:
        job = ended[0]
        return f"run {run.id}'s readout calibration job {job.id} ended {job.state.value}" + (f" ({job.error})" if job.error else "")
    return f"run {run.id}'s readout calibration is not collected yet: run `qhw collect`"


def mitigated_counts(store: Store, run: RunRecord) -> RunCounts:
    """The run's complete samples as mitigated quasi-probabilities (stored once, then reused).

    The returned RunCounts holds quasi-probabilities in ``counts`` with ``shots`` = 1.

    Raises:
        ConfigError: the run was not submitted with --mitigate readout, or its
            calibration has not been collected.
    """
    stored = store.results.run_counts(run.id)
    # An adaptive run's counts grow round by round: mitigated once its rounds have ended.
    final = not run.adaptive or run.rounds_done
    saved = store.results.mitigated(run.id, METHOD) if final else {}
    missing = [i for i, key in enumerate(zip(stored.splits, stored.sample_index, strict=True)) if (str(key[0]), int(key[1])) not in saved]
    if missing:
        missing_calibration = calibration_missing(store, run)
        if missing_calibration is not None:
            raise ConfigError(missing_calibration)
        calibration = store.results.calibration(run.id)
        last = 2**run.num_qubits - 1
        subset = stored.subset(missing)
        # Each slot of a packed run (a copy at a position) by the calibration of
        # its own qubits at its own position (a mid-circuit measurement errs as
        # it does, not as the final one). A sample measured by several slots
        # (an adaptive run's rounds may run it on different ones) is the
        # shot-weighted mean of each slot's mitigated counts; one slot's counts
        # are mitigated whole.
        by_slot = store.results.counts_by_slot(run.id, [(str(s), int(i)) for s, i in zip(subset.splits, subset.sample_index, strict=True)])
        shots = by_slot.sum(axis=-1)  # (samples, circuits, slots)
        quasi = np.zeros(subset.counts.shape, dtype=np.float64)
        for slot in range(run.slots):
            matrices = assignment_matrices(calibration[(slot, 0)], calibration[(slot, last)], run.num_qubits)
            measured = shots[:, :, slot] > 0
            if measured.any():
                weight = shots[:, :, slot][measured] / shots.sum(axis=-1)[measured]
                quasi[measured] += weight[:, None] * mitigate_counts(by_slot[:, :, slot][measured], matrices)
        if not final:
            return RunCounts(subset.splits, subset.sample_index, quasi, shots=1)
        store.results.store_mitigated(run.id, METHOD, subset, quasi)
        saved = store.results.mitigated(run.id, METHOD)
    quasi = np.stack([saved[(str(s), int(i))] for s, i in zip(stored.splits, stored.sample_index, strict=True)])
    return RunCounts(stored.splits, stored.sample_index, quasi, shots=1)
