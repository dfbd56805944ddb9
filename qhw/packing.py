"""Copies of the feature map side by side on one device: which physical qubits each copy gets.

Multi-programming (Das et al. 2019, "A case for multi-programming quantum
computers") runs several small circuits at once on disjoint qubits of a wide
device. qhw's template is a chain: Ry and H on each qubit, then a CNOT
cascade 0->1->...->n-1, so a copy needs n qubits that form a path of the
device's coupling graph. The partition here takes the device as a
:class:`DeviceGraph` (its couplers and calibration) and returns the copies'
qubits, by a rule that is deterministic for a given calibration:

1. **Usable.** A qubit whose readout error, or a coupler whose two-qubit
   error, is :data:`BROKEN_ERROR` or more (IBM and Braket publish 1.0 for
   faulty ones) is never used; nor is a qubit without a readout figure on a
   device that publishes them for others.
2. **Estimated error of a copy**: one minus the product of the success
   probabilities of its parts: the readout of each qubit, the two-qubit
   gate on each coupler of the chain, and, where T1 and T2 are known,
   decoherence over :data:`COPY_DURATION_US` (exp(-t/T1) * exp(-t/T2) a
   qubit). Unknown figures count as perfect: the rule ranks, it does not
   predict.
3. **Greedy, best first.** Every chain of the device is ranked by its
   estimated error (ties by its qubits' labels); a chain is taken when none
   of its qubits is taken and, with ``spacing`` 1 (the default), none is
   coupled to a taken qubit either: an idle qubit between copies against
   crosstalk. ``spacing`` 0 allows neighbouring copies. On a fully
   connected device (ion traps) every qubit neighbours every other, so
   spacing cannot apply there and copies are only disjoint.
4. **No copy much worse than the best**: a chain whose estimated error
   exceeds :data:`WORST_TO_BEST` times the best copy's (or the best's plus
   :data:`WORST_MARGIN`, whichever is larger) is not taken.

``partition(graph, copies=N)`` stops at N copies and refuses when fewer fit;
``copies=None`` (``--pack auto``) takes every copy the rule allows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from qhw.errors import ConfigError

#: An error figure at or above this marks a qubit or coupler as broken.
BROKEN_ERROR = 0.5
#: How long a copy of the paper's circuit lasts, for decoherence (a few
#: two-qubit gates and a readout on superconducting devices).
COPY_DURATION_US = 1.0
#: A copy may be at most this many times worse than the best copy ...
WORST_TO_BEST = 2.5
#: ... or this much worse in absolute terms, whichever allows more.
WORST_MARGIN = 0.02
#: The most copies an execution may carry (``--pack``).
MAX_COPIES = 1024
#: Chains longer than this are not enumerated on sparse graphs (the count grows
#: as the degree to the width's power); templates are at most this wide.
MAX_WIDTH = 12


class NoChainError(ConfigError):
    """The device has no chain of the template's width at all."""


@dataclass(frozen=True)
class DeviceGraph:
    """What the partition needs of a device: its qubits (by the device's own
    labels), its couplers (either direction), and what is known of their errors."""

    qubits: tuple[int, ...]
    couplers: frozenset[frozenset[int]]
    readout_error: Mapping[int, float] = field(default_factory=dict)
    gate_error: Mapping[frozenset[int], float] = field(default_factory=dict)
    t1_us: Mapping[int, float] = field(default_factory=dict)
    t2_us: Mapping[int, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        qubits: Iterable[int],
        couplers: Iterable[tuple[int, int]],
        *,
        readout_error: Mapping[int, float] | None = None,
        gate_error: Mapping[tuple[int, int], float] | None = None,
        t1_us: Mapping[int, float] | None = None,
        t2_us: Mapping[int, float] | None = None,
    ) -> DeviceGraph:
        """A graph from plain pairs; a coupler's error is the worst of its two directions."""
        errors: dict[frozenset[int], float] = {}
        for (a, b), error in (gate_error or {}).items():
            key = frozenset((int(a), int(b)))
            if error is not None:
                errors[key] = max(errors.get(key, 0.0), float(error))
        return cls(
            qubits=tuple(sorted({int(q) for q in qubits})),
            couplers=frozenset(frozenset((int(a), int(b))) for a, b in couplers if int(a) != int(b)),
            readout_error={int(q): float(e) for q, e in (readout_error or {}).items() if e is not None},
            gate_error=errors,
            t1_us={int(q): float(t) for q, t in (t1_us or {}).items() if t},
            t2_us={int(q): float(t) for q, t in (t2_us or {}).items() if t},
        )

    @property
    def fully_connected(self) -> bool:
        n = len(self.qubits)
        return n > 1 and len(self.couplers) == n * (n - 1) // 2

    def usable(self) -> DeviceGraph:
        """The graph without its broken qubits and couplers (rule 1)."""
        published = bool(self.readout_error)
        qubits = tuple(
            q for q in self.qubits
            if (q in self.readout_error or not published) and self.readout_error.get(q, 0.0) < BROKEN_ERROR
        )
        kept = set(qubits)
        couplers = frozenset(c for c in self.couplers if c <= kept and self.gate_error.get(c, 0.0) < BROKEN_ERROR)
        return DeviceGraph(qubits, couplers, self.readout_error, self.gate_error, self.t1_us, self.t2_us)

    def neighbours(self) -> dict[int, list[int]]:
        adjacent: dict[int, list[int]] = {q: [] for q in self.qubits}
        for coupler in self.couplers:
            a, b = sorted(coupler)
            adjacent[a].append(b)
            adjacent[b].append(a)
        return {q: sorted(others) for q, others in adjacent.items()}


@dataclass(frozen=True)
class Copy:
    """One copy's physical qubits, in the template's order (qubit i of the
    template on ``qubits[i]``), and its estimated error."""

    qubits: tuple[int, ...]
    estimated_error: float


@dataclass(frozen=True)
class Partition:
    copies: tuple[Copy, ...]
    spacing: int

    @property
    def qubits(self) -> tuple[int, ...]:
        """Every qubit a copy uses, in copy order."""
        return tuple(q for copy in self.copies for q in copy.qubits)

    @property
    def best_error(self) -> float:
        return min(copy.estimated_error for copy in self.copies)

    @property
    def worst_error(self) -> float:
        return max(copy.estimated_error for copy in self.copies)


def chain_error(graph: DeviceGraph, chain: tuple[int, ...]) -> float:
    """A chain's estimated error (rule 2 of the module's docstring)."""
    success = 1.0
    for q in chain:
        success *= 1.0 - graph.readout_error.get(q, 0.0)
        if q in graph.t1_us:
            success *= math.exp(-COPY_DURATION_US / graph.t1_us[q])
        if q in graph.t2_us:
            success *= math.exp(-COPY_DURATION_US / graph.t2_us[q])
    for a, b in zip(chain, chain[1:]):
        success *= 1.0 - graph.gate_error.get(frozenset((a, b)), 0.0)
    return 1.0 - success


def partition(graph: DeviceGraph, *, width: int, copies: int | None = None, spacing: int = 1) -> Partition:
    """The copies' physical qubits on ``graph`` (see the module's docstring).

    Args:
        width: qubits a copy needs (a chain of them).
        copies: how many copies; None for as many as the rule allows.
        spacing: 1 to keep an idle qubit between copies, 0 to allow neighbours.

    Raises:
        NoChainError: no usable chain at all.
        ConfigError: bad arguments; fewer than ``copies`` fit.
    """
    if not 1 <= width <= MAX_WIDTH:
        raise ConfigError(f"a template of {width} qubits cannot be packed (1 to {MAX_WIDTH})")
    if spacing not in (0, 1):
        raise ConfigError(f"--pack-spacing must be 0 or 1, got {spacing}")
    if copies is not None and copies < 1:
        raise ConfigError(f"--pack must be auto or a whole number of copies, 1 or more, got {copies}")
    usable = graph.usable()
    ranked = sorted(((chain_error(usable, chain), chain) for chain in _chains(usable, width)))
    if not ranked:
        raise NoChainError(f"the device has no {width} usable qubits coupled in a chain")
    best = ranked[0][0]
    bound = max(best * WORST_TO_BEST, best + WORST_MARGIN)
    neighbours = usable.neighbours()
    apart = spacing > 0 and not usable.fully_connected
    taken: set[int] = set()
    blocked: set[int] = set()
    chosen: list[Copy] = []
    for error, chain in ranked:
        if error > bound or (copies is not None and len(chosen) == copies):
            break
        if any(q in taken or q in blocked for q in chain):
            continue
        chosen.append(Copy(qubits=chain, estimated_error=error))
        taken.update(chain)
        if apart:
            blocked.update(n for q in chain for n in neighbours[q])
    if copies is not None and len(chosen) < copies:
        raise ConfigError(
            f"--pack {copies}: only {len(chosen)} copies of {width} qubits fit on the device "
            f"(spacing {spacing}, none worse than {WORST_TO_BEST:g}x the best copy's estimated error)"
        )
    return Partition(copies=tuple(chosen), spacing=spacing)


def _chains(graph: DeviceGraph, width: int) -> Iterator[tuple[int, ...]]:
    """Every simple path of ``width`` qubits, each once (its smaller end first
    as read; the template runs along it either way)."""
    if width == 1:
        yield from ((q,) for q in graph.qubits)
        return
    if graph.fully_connected:
        # Every ordering is a chain: the best are simply the best qubits, in
        # order of readout error, grouped ``width`` at a time (a path search
        # over n!/(n-width)! orderings would say the same, slowly).
        ordered = sorted(graph.qubits, key=lambda q: (graph.readout_error.get(q, 0.0), q))
        for start in range(0, len(ordered) - width + 1, width):
            yield tuple(ordered[start : start + width])
        return
    neighbours = graph.neighbours()

    def extend(path: list[int]) -> Iterator[tuple[int, ...]]:
        if len(path) == width:
            if path[0] < path[-1]:
                yield tuple(path)
            return
        for n in neighbours[path[-1]]:
            if n not in path:
                path.append(n)
                yield from extend(path)
                path.pop()

    for start in graph.qubits:
        yield from extend([start])
