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
   crosstalk. ``spacing`` 0 allows neighbouring copies. On a device where
   at least three quarters of all pairs are coupled (ion traps, a broken
   coupler or not) every qubit neighbours nearly every other, so spacing cannot apply
   there and copies are only disjoint.
4. **No copy much worse than the best**: a chain whose estimated error
   exceeds :data:`WORST_TO_BEST` times the best copy's (or the best's plus
   :data:`WORST_MARGIN`, whichever is larger) is not taken.
5. **Polynomial on dense devices.** A device's chains are enumerated when
   they number at most :data:`CHAIN_BUDGET` (bounded above, before any is
   enumerated, by its non-backtracking walks): every IBM heavy-hex device at
   any width, square lattices up to about 8 qubits a copy. Past that (ion
   traps, square lattices at 12) the chains are *grown* instead: from every
   free qubit, a chain grows one qubit at a time by the free neighbour whose
   coupler and readout cost least (costs are -log of the success
   probabilities of rule 2, so they add up along a chain); the grown chains
   are ranked and taken as in rules 3 and 4, and a chain that meets a taken
   or blocked qubit is grown again from the qubit it grew from. Each copy then costs
   O(qubits x width) steps, whatever the device's density; on an all-to-all
   device without gate errors it takes the best qubits in order of readout
   error, ``width`` at a time.

``partition(graph, copies=N)`` stops at N copies and refuses when fewer fit;
``copies=None`` (``--pack auto``) takes every copy the rule allows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial

from qhw.errors import ConfigError, ParameterError

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
#: Templates are at most this wide (qhw.feature_maps.MAX_QUBITS).
MAX_WIDTH = 12
#: Chains enumerated and ranked at most (rule 5 of the module's docstring):
#: about half a second of Python. fake_fez has 369 chains of 5 qubits and
#: 1,840 of 12; a 120-qubit square lattice 69,618 of 8 and 2.6 million of 12.
CHAIN_BUDGET = 100_000


def parse_copies(pack: int | str) -> int | None:
    """``--pack`` as a number of copies, None for ``auto``.

    Plain decimal digits only: Python's ``int`` would also take ``1_0`` (10)
    and other scripts' digits (the Arabic-Indic ``٣`` as 3).

    Raises:
        ConfigError: neither auto nor a whole number from 1 to MAX_COPIES.
    """
    return _auto_or_count(pack, "pack", "copies", MAX_COPIES)


#: The most samples a copy's qubits may run one after another in a shot (``--reuse``).
MAX_REUSE = 64


def parse_reuse(reuse: int | str) -> int | None:
    """``--reuse`` as samples a copy runs in a shot, None for ``auto``
    (plain decimal digits only, as ``--pack``).

    Raises:
        ConfigError: neither auto nor a whole number from 1 to MAX_REUSE.
    """
    return _auto_or_count(reuse, "reuse", "samples a shot", MAX_REUSE)


def _auto_or_count(value: int | str, parameter: str, what: str, maximum: int) -> int | None:
    """``auto`` as None, else a whole number from 1 to ``maximum`` in plain
    decimal digits: Python's ``int`` would also take ``1_0`` (10) and other
    scripts' digits (the Arabic-Indic ``٣`` as 3)."""
    from qhw.checks import parse_integer

    text = str(value).strip() if not isinstance(value, bool) else ""
    if text.lower() == "auto":
        return None
    try:
        count = parse_integer(text)
    except ValueError:
        count = 0
    if text.startswith(("+", "-")) or not 1 <= count <= maximum:
        raise ParameterError(parameter, f"must be auto or a whole number of {what} from 1 to {maximum}, got {value}")
    return count


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
    def all_to_all(self) -> bool:
        """At least three quarters of all pairs coupled (an ion trap, with or
        without a broken coupler): every qubit neighbours nearly every other,
        so spacing copies apart cannot apply (rule 3)."""
        n = len(self.qubits)
        return n > 1 and 4 * len(self.couplers) >= 3 * (n * (n - 1) // 2)

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
    for a, b in itertools.pairwise(chain):
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
        raise ParameterError("pack_spacing", f"must be 0 or 1, got {spacing}")
    if copies is not None and copies < 1:
        raise ParameterError("pack", f"must be auto or a whole number of copies, 1 or more, got {copies}")
    usable = graph.usable()
    neighbours = usable.neighbours()
    apart = spacing > 0 and not usable.all_to_all
    if chain_bound(usable, width) <= CHAIN_BUDGET:
        candidates: Iterator[tuple[float, tuple[int, ...]]] = iter(
            sorted((chain_error(usable, chain), chain) for chain in _chains(usable, width))
        )
        unavailable: set[int] = set()
    else:
        unavailable = set()
        candidates = _grown_chains(usable, width, unavailable)
    chosen: list[Copy] = []
    bound = None
    for error, chain in candidates:
        if bound is None:
            bound = max(error * WORST_TO_BEST, error + WORST_MARGIN)
        if error > bound or (copies is not None and len(chosen) == copies):
            break
        if any(q in unavailable for q in chain):
            continue
        chosen.append(Copy(qubits=chain, estimated_error=error))
        unavailable.update(chain)
        if apart:
            unavailable.update(n for q in chain for n in neighbours[q])
    if not chosen:
        raise NoChainError(f"the device has no {width} usable qubits coupled in a chain")
    if copies is not None and len(chosen) < copies:
        raise ParameterError(
            "pack", f"{copies}: only {len(chosen)} copies of {width} qubits fit on the device "
            f"(spacing {spacing}, none worse than {WORST_TO_BEST:g}x the best copy's estimated error)"
        )
    return Partition(copies=tuple(chosen), spacing=spacing)


def chain_bound(graph: DeviceGraph, width: int) -> float:
    """An upper bound on the chains of ``width`` qubits: half the
    non-backtracking walks of ``width - 1`` steps, counted in O(couplers x
    width) by the recurrence v_k = A v_(k-1) - (D - I) v_(k-2) (v_2 = A d - d),
    A the adjacency and D the degrees. Exact on trees and heavy-hex devices
    up to their 12-qubit cycles."""
    if width == 1:
        return float(len(graph.qubits))
    neighbours = graph.neighbours()
    degree = {q: len(others) for q, others in neighbours.items()}
    before, walks = {q: 1.0 for q in graph.qubits}, {q: float(degree[q]) for q in graph.qubits}
    for step in range(2, width):
        back = {q: degree[q] - (1 if step > 2 else 0) for q in graph.qubits}
        before, walks = walks, {q: sum(walks[n] for n in neighbours[q]) - back[q] * before[q] for q in graph.qubits}
    return sum(walks.values()) / 2


def _grown_chains(graph: DeviceGraph, width: int, unavailable: set[int]) -> Iterator[tuple[float, tuple[int, ...]]]:
    """Chains grown from every qubit (rule 5), best first, each grown again
    from the qubit it grew from when it meets a qubit in ``unavailable`` (which the
    caller fills as it takes chains): O(qubits x width) steps a taken chain."""
    import heapq

    def qubit_cost(q: int) -> float:
        return -math.log(max(1e-300, 1.0 - chain_error(graph, (q,))))

    def coupler_cost(a: int, b: int) -> float:
        return -math.log(max(1e-300, 1.0 - graph.gate_error.get(frozenset((a, b)), 0.0)))

    cost = {q: qubit_cost(q) for q in graph.qubits}
    # Each qubit's neighbours, cheapest step first; ``skip`` moves past those
    # taken for good (``unavailable`` only grows), so a scan never repeats them.
    def by_step(q: int, n: int) -> tuple[float, int]:
        return coupler_cost(q, n) + cost[n], n

    ranked = {q: sorted(others, key=partial(by_step, q)) for q, others in graph.neighbours().items()}
    skip = dict.fromkeys(graph.qubits, 0)

    def grow(start: int) -> tuple[int, ...] | None:
        chain = [start]
        while len(chain) < width:
            end = chain[-1]
            others = ranked[end]
            while skip[end] < len(others) and others[skip[end]] in unavailable:
                skip[end] += 1
            step = next((n for n in others[skip[end]:] if n not in unavailable and n not in chain), None)
            if step is None:
                return None
            chain.append(step)
        # The same chain read from its other end is the same copy: keep the smaller end first, as enumeration does.
        return tuple(chain) if chain[0] < chain[-1] else tuple(reversed(chain))

    heap = []
    for start in graph.qubits:
        chain = grow(start)
        if chain is not None:
            heap.append((chain_error(graph, chain), chain, start))
    heapq.heapify(heap)
    while heap:
        error, chain, start = heapq.heappop(heap)
        if any(q in unavailable for q in chain):
            if start not in unavailable:
                again = grow(start)
                if again is not None:
                    heapq.heappush(heap, (chain_error(graph, again), again, start))
            continue
        yield error, chain


def _chains(graph: DeviceGraph, width: int) -> Iterator[tuple[int, ...]]:
    """Every simple path of ``width`` qubits, each once (its smaller end first
    as read; the template runs along it either way)."""
    if width == 1:
        yield from ((q,) for q in graph.qubits)
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
