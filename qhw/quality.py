"""Every circuit checked against its exact answer, and the parts of a run that fall behind.

qhw knows what each circuit should measure: its feature map has at most a
dozen qubits, so the exact outcome distribution of any sample is a
statevector away. As a job's counts are stored, each circuit's Hellinger
fidelity to that distribution is stored with them (``ExactAnswers``), on any
backend, packed or not; a run's quality is then these fidelities grouped by
copy, by position in a shot and by job (``run_quality``).

The rule that flags a group (a copy, a position, a job) is written down in
``flagged``; ``--quality-floor`` replaces it with a fixed floor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

#: A group is flagged only when its mean fidelity is this far below the rest
#: of the run's: copies on a device's well-calibrated qubits differ by up to
#: about half a point among themselves (fake_fez's 17 copies: 0.977 to 0.983,
#: benchmarks/noise.py), a copy on a qubit gone bad by several points.
TOLERANCE = 0.01
#: The chance, over the whole run, of flagging a group that is not behind
#: (split evenly over the groups compared: Bonferroni).
FALSE_ALARM = 1e-3


def hellinger_fidelity(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(sum_i sqrt(p_i q_i))**2 over the last axis, as Qiskit defines it; 1 for equal distributions."""
    return np.sum(np.sqrt(np.clip(p, 0, None) * np.clip(q, 0, None)), axis=-1) ** 2


class ExactAnswers:
    """The exact outcome distributions of a feature map's circuits (the
    statevector simulator's, computed for every row at once), and each
    measured circuit's fidelity to its own."""

    def __init__(self, template) -> None:
        from qhw.backends.statevector import StatevectorBackend

        self._circuit = StatevectorBackend().transpile(template).circuit

    def probabilities(self, parameters: np.ndarray) -> np.ndarray:
        """(circuits, 2**qubits) for rows of the template's parameters, canonical order."""
        from qhw.backends.statevector import outcome_probabilities

        return outcome_probabilities(self._circuit, parameters)

    def fidelities(self, parameters: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Each circuit's Hellinger fidelity of its measured frequencies to its exact distribution."""
        counts = np.asarray(counts, dtype=float)
        shots = counts.sum(axis=1, keepdims=True)
        frequencies = np.divide(counts, shots, out=np.zeros_like(counts), where=shots > 0)
        return hellinger_fidelity(frequencies, self.probabilities(parameters))


@dataclass(frozen=True)
class GroupQuality:
    """One copy, position or job of a run: its circuits' mean fidelity, and whether it is flagged."""

    key: int  # the copy, the position (0: a shot's first), or the job's id
    circuits: int
    mean_fidelity: float
    flagged: bool

    def to_dict(self, name: str) -> dict:
        return {name: self.key, "mean_fidelity": self.mean_fidelity, "circuits": self.circuits, "flagged": self.flagged}


@dataclass(frozen=True)
class RunQuality:
    """A run's circuits against their exact answers, by copy, position and job."""

    circuits: int
    mean_fidelity: float | None
    copies: list[GroupQuality] = field(default_factory=list)
    positions: list[GroupQuality] = field(default_factory=list)
    jobs: list[GroupQuality] = field(default_factory=list)
    floor: float | None = None  # a fixed floor in place of the rule
    # What --quality auto did (qhw.repair): its mode, the slots it left out,
    # the results it measured again (superseded, counted above) and its log.
    mode: str = "off"
    excluded_slots: tuple[int, ...] = ()
    repaired: int = 0
    log: tuple[str, ...] = ()

    @property
    def flagged(self) -> list[tuple[str, GroupQuality]]:
        return [(kind, g) for kind, groups in (("copy", self.copies), ("position", self.positions), ("job", self.jobs)) for g in groups if g.flagged]

    def to_dict(self) -> dict:
        return {
            "circuits": self.circuits,
            "mean_fidelity": self.mean_fidelity,
            "rule": "floor" if self.floor is not None else "significantly below the rest",
            "floor": self.floor,
            "copies": [g.to_dict("copy") for g in self.copies],
            "positions": [g.to_dict("position") for g in self.positions],
            "jobs": [g.to_dict("job") for g in self.jobs],
            "mode": self.mode,
            "excluded_slots": list(self.excluded_slots),
            "repaired": self.repaired,
            "log": list(self.log),
        }


def run_quality(
    fidelity: np.ndarray, copies: np.ndarray, positions: np.ndarray, jobs: np.ndarray, *, floor: float | None = None
) -> RunQuality:
    """Per-circuit fidelities (with each circuit's copy, position and job) grouped, each group flagged or not."""
    fidelity = np.asarray(fidelity, dtype=float)
    if fidelity.size == 0:
        return RunQuality(circuits=0, mean_fidelity=None, floor=floor)

    def groups(keys: np.ndarray) -> list[GroupQuality]:
        keys = np.asarray(keys)
        values = np.unique(keys)
        flags = flagged(fidelity, keys, floor=floor)
        return [
            GroupQuality(int(k), int(np.sum(keys == k)), float(fidelity[keys == k].mean()), bool(flags[int(k)]))
            for k in values
        ]

    return RunQuality(
        circuits=int(fidelity.size), mean_fidelity=float(fidelity.mean()), copies=groups(copies), positions=groups(positions),
        jobs=groups(jobs), floor=floor,
    )


def flagged(fidelity: np.ndarray, keys: np.ndarray, *, floor: float | None = None) -> dict[int, bool]:
    """Which groups (by key) are flagged: the rule.

    With a ``floor``: a group whose mean fidelity is below it.

    Otherwise a group g of n_g circuits and mean m_g is compared with the rest
    of the run (n_r circuits, mean m_r). The per-circuit fidelities' spread
    s (their standard deviation over the whole run) already holds the shots'
    noise (fewer shots, a wider spread) and the samples' own differences, so
    the deficit's standard error is s * sqrt(1/n_g + 1/n_r): few circuits
    behind a figure, a wide margin. g is flagged when

        m_r - m_g > TOLERANCE  and  m_r - m_g > z * s * sqrt(1/n_g + 1/n_r),

    z the normal quantile of 1 - FALSE_ALARM / G over the G groups compared:
    behind by more than the spread between good copies, and by more than
    chance explains. A run of one group has nothing to compare with.
    """
    keys = np.asarray(keys)
    values = [int(k) for k in np.unique(keys)]
    if floor is not None:
        return {k: bool(fidelity[keys == k].mean() < floor) for k in values}
    if len(values) < 2:
        return dict.fromkeys(values, False)
    spread = float(fidelity.std())
    z = NormalDist().inv_cdf(1 - FALSE_ALARM / len(values))
    out = {}
    for k in values:
        mine = keys == k
        n_g, n_r = int(mine.sum()), int((~mine).sum())
        deficit = float(fidelity[~mine].mean() - fidelity[mine].mean())
        error = spread * math.sqrt(1 / n_g + 1 / n_r)
        out[k] = deficit > TOLERANCE and deficit > z * error
    return out
