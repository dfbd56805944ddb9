"""The partition of a device into copies of the feature map (qhw.packing), on real device topologies."""

from __future__ import annotations

import itertools
import json
import re

import numpy as np
import pytest

from qhw.errors import ConfigError
from qhw.packing import (
    BROKEN_ERROR,
    CHAIN_BUDGET,
    COPY_DURATION_US,
    WORST_MARGIN,
    WORST_TO_BEST,
    DeviceGraph,
    chain_bound,
    chain_error,
    partition,
)

WIDTH = 5


def ibm_graph(name: str) -> DeviceGraph:
    from qiskit_ibm_runtime import fake_provider

    from qhw.backends._ibm_calibration import device_graph

    return device_graph(getattr(fake_provider, name)().target)


def lattice(rows: int, columns: int, *, first: int = 0, readout: float = 0.02, gate: float = 0.01) -> DeviceGraph:
    """A square lattice (IQM's Garnet, Rigetti's Ankaa), qubits numbered row by row from ``first``."""
    label = {(r, c): first + r * columns + c for r in range(rows) for c in range(columns)}
    couplers = [(label[r, c], label[r, c + 1]) for r in range(rows) for c in range(columns - 1)]
    couplers += [(label[r, c], label[r + 1, c]) for r in range(rows - 1) for c in range(columns)]
    # Errors vary a little by qubit, as on any real device, so that the ranking is not all ties.
    return DeviceGraph.of(
        label.values(),
        couplers,
        readout_error={q: readout * (1 + (q % 7) / 10) for q in label.values()},
        gate_error={pair: gate * (1 + (sum(pair) % 5) / 10) for pair in couplers},
    )


def assert_sound(graph: DeviceGraph, packed, *, spacing: int, width: int = WIDTH) -> None:
    usable = graph.usable()
    used = [q for copy in packed.copies for q in copy.qubits]
    assert len(used) == len(set(used)), "copies share a qubit"
    assert set(used) <= set(usable.qubits), "a broken or unknown qubit is used"
    for copy in packed.copies:
        assert len(copy.qubits) == width
        for a, b in itertools.pairwise(copy.qubits):
            assert frozenset((a, b)) in usable.couplers, f"{a}-{b} of copy {copy.qubits} is no usable coupler"
        assert copy.estimated_error == pytest.approx(chain_error(usable, copy.qubits))
    if spacing and not usable.all_to_all:
        for first, second in itertools.combinations(packed.copies, 2):
            assert not any(frozenset((a, b)) in graph.couplers for a in first.qubits for b in second.qubits), (
                f"copies {first.qubits} and {second.qubits} are neighbours"
            )
    assert packed.worst_error <= max(packed.best_error * WORST_TO_BEST, packed.best_error + WORST_MARGIN) + 1e-12


@pytest.mark.parametrize("name, qubits", [("FakeBrisbane", 127), ("FakeTorino", 133), ("FakeFez", 156)])
@pytest.mark.parametrize("spacing", [1, 0])
def test_heavy_hex_devices_pack_many_disjoint_chains(name, qubits, spacing):
    graph = ibm_graph(name)
    assert len(graph.qubits) == qubits
    packed = partition(graph, width=WIDTH, spacing=spacing)
    assert_sound(graph, packed, spacing=spacing)
    assert len(packed.copies) >= 13  # measured: 15-17 with spacing, 17-23 without (benchmarks/packing.py)
    assert packed == partition(graph, width=WIDTH, spacing=spacing)  # deterministic


def test_spacing_costs_copies_but_keeps_an_idle_qubit_between_them():
    graph = ibm_graph("FakeFez")
    spaced, packed = partition(graph, width=WIDTH, spacing=1), partition(graph, width=WIDTH, spacing=0)
    assert len(spaced.copies) < len(packed.copies)
    touching = [
        (a, b) for first, second in itertools.combinations(packed.copies, 2)
        for a in first.qubits for b in second.qubits if frozenset((a, b)) in graph.couplers
    ]
    assert touching  # without spacing, some copies do neighbour each other


def test_the_order_of_the_device_description_does_not_change_the_partition():
    graph = ibm_graph("FakeTorino")
    pairs = [tuple(sorted(c)) for c in graph.couplers]
    shuffled = DeviceGraph.of(
        reversed(graph.qubits),
        [(b, a) for a, b in reversed(pairs)],
        readout_error=dict(reversed(list(graph.readout_error.items()))),
        gate_error={tuple(sorted(k, reverse=True)): v for k, v in graph.gate_error.items()},
        t1_us=graph.t1_us,
        t2_us=graph.t2_us,
    )
    assert partition(shuffled, width=WIDTH) == partition(graph, width=WIDTH)


def test_broken_qubits_and_couplers_are_never_used():
    graph = ibm_graph("FakeFez")
    best = partition(graph, width=WIDTH, copies=1).copies[0].qubits
    # IBM publishes an error of 1 for a faulty coupler or qubit.
    broken_coupler = frozenset(best[1:3])
    broken_qubit = best[4]
    damaged = DeviceGraph(
        qubits=graph.qubits,
        couplers=graph.couplers,
        readout_error={**graph.readout_error, broken_qubit: 1.0},
        gate_error={**graph.gate_error, broken_coupler: 1.0},
        t1_us=graph.t1_us,
        t2_us=graph.t2_us,
    )
    for spacing in (0, 1):
        packed = partition(damaged, width=WIDTH, spacing=spacing)
        assert_sound(damaged, packed, spacing=spacing)
        assert broken_qubit not in packed.qubits
        assert not any(frozenset(pair) == broken_coupler for copy in packed.copies for pair in itertools.pairwise(copy.qubits))


def test_a_qubit_torino_publishes_as_broken_is_left_out():
    graph = ibm_graph("FakeTorino")
    broken = [q for q, error in graph.readout_error.items() if error >= BROKEN_ERROR]
    assert broken  # FakeTorino's snapshot has one (readout error 0.57)
    assert not set(broken) & set(partition(graph, width=WIDTH, spacing=0).qubits)


@pytest.mark.parametrize("rows, columns, first, least", [(4, 5, 1, 1), (7, 12, 0, 4)])  # IQM Garnet (20, from 1), Rigetti Ankaa (84)
def test_square_lattices(rows, columns, first, least):
    graph = lattice(rows, columns, first=first)
    for spacing in (1, 0):
        packed = partition(graph, width=WIDTH, spacing=spacing)
        assert_sound(graph, packed, spacing=spacing)
        assert min(packed.qubits) >= first
    assert len(partition(graph, width=WIDTH, spacing=0).copies) > len(partition(graph, width=WIDTH, spacing=1).copies) >= least


def test_an_all_to_all_ion_trap_splits_into_disjoint_groups():
    qubits = range(36)  # IonQ Forte
    graph = DeviceGraph.of(qubits, itertools.combinations(qubits, 2), readout_error={q: 0.003 + q / 10_000 for q in qubits})
    packed = partition(graph, width=WIDTH, spacing=1)  # spacing cannot apply where every qubit neighbours every other
    assert_sound(graph, packed, spacing=1)
    assert len(packed.copies) == 36 // WIDTH
    assert packed.copies[0].qubits == (0, 1, 2, 3, 4)  # the best qubits first


def test_the_estimated_error_multiplies_what_is_known():
    graph = DeviceGraph.of(
        [0, 1, 2], [(0, 1), (1, 2)],
        readout_error={0: 0.01, 1: 0.02, 2: 0.03}, gate_error={(0, 1): 0.05, (2, 1): 0.04}, t1_us={1: 100.0}, t2_us={2: 50.0},
    )
    import math

    expected = 1 - (0.99 * 0.98 * 0.97 * 0.95 * 0.96 * math.exp(-COPY_DURATION_US / 100) * math.exp(-COPY_DURATION_US / 50))
    assert chain_error(graph, (0, 1, 2)) == pytest.approx(expected)


def test_no_copy_is_much_worse_than_the_best():
    # Two good chains, and one far worse: auto leaves the bad one out, and asking for it fails.
    qubits = range(15)
    couplers = [(a, a + 1) for a in qubits if a % 5 != 4]
    readout = {q: (0.30 if q >= 10 else 0.01) for q in qubits}
    graph = DeviceGraph.of(qubits, couplers, readout_error=readout)
    packed = partition(graph, width=WIDTH, spacing=0)
    assert [copy.qubits for copy in packed.copies] == [(0, 1, 2, 3, 4), (5, 6, 7, 8, 9)]
    with pytest.raises(ConfigError, match="only 2 copies of 5 qubits fit"):
        partition(graph, width=WIDTH, copies=3, spacing=0)


def test_a_braket_document_is_partitioned_by_the_device_s_own_labels():
    from qhw.backends._braket_devices import device_graph

    from device_documents import garnet_like

    graph = device_graph(garnet_like(6, line=(3, 1, 6, 2, 5, 4)))
    assert graph.qubits == (1, 2, 3, 4, 5, 6)
    assert graph.readout_error[1] == pytest.approx(0.05)
    packed = partition(graph, width=WIDTH)
    assert len(packed.copies) == 1 and set(packed.copies[0].qubits) <= {3, 1, 6, 2, 5, 4}
    assert packed.copies[0].qubits in ((3, 1, 6, 2, 5), (1, 6, 2, 5, 4))


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"copies": 0}, "pack must be auto or a whole number of copies, 1 or more, got 0"),
        ({"copies": -1}, "got -1"),
        ({"copies": 40}, "pack 40: only"),
        ({"spacing": 2}, "pack_spacing must be 0 or 1, got 2"),
        ({"width": 13}, "a template of 13 qubits cannot be packed"),
    ],
)
def test_bad_requests_are_refused(arguments, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        partition(ibm_graph("FakeFez"), **{"width": WIDTH, **arguments})


def test_a_device_without_a_chain_long_enough_is_refused():
    line = DeviceGraph.of(range(4), [(0, 1), (1, 2), (2, 3)])
    with pytest.raises(ConfigError, match="the device has no 5 usable qubits coupled in a chain"):
        partition(line, width=WIDTH)
    assert json.dumps([c.qubits for c in partition(line, width=4).copies]) == "[[0, 1, 2, 3]]"


@pytest.mark.parametrize("broken", ["coupler", "qubit"])
def test_a_chain_through_a_broken_part_is_no_chain_even_when_it_is_the_only_one(broken):
    line = list(range(WIDTH))
    graph = DeviceGraph.of(
        line, itertools.pairwise(line),
        readout_error={q: (1.0 if broken == "qubit" and q == 2 else 0.01) for q in line},
        gate_error={(1, 2): 1.0} if broken == "coupler" else {},
    )
    with pytest.raises(ConfigError, match="no 5 usable qubits coupled in a chain"):
        partition(graph, width=WIDTH)


def every_chain(graph: DeviceGraph, width: int) -> list[tuple[int, ...]]:
    """Every simple path of ``width`` usable qubits, each once, smaller end first (brute force, here)."""
    neighbours = {q: {n for c in graph.couplers if q in c for n in c if n != q} for q in graph.qubits}
    found = set()
    paths = [[q] for q in graph.qubits]
    for _ in range(width - 1):
        paths = [path + [n] for path in paths for n in neighbours[path[-1]] if n not in path]
    for path in paths:
        found.add(tuple(path) if path[0] < path[-1] else tuple(reversed(path)))
    return sorted(found)


def best_first(graph: DeviceGraph, width: int, spacing: int) -> list[tuple[int, ...]]:
    """The copies the module docstring's rules 1 to 4 give, over every chain (what qhw did before rule 5)."""
    usable = graph.usable()
    ranked = sorted((chain_error(usable, chain), chain) for chain in every_chain(usable, width))
    bound = max(ranked[0][0] * WORST_TO_BEST, ranked[0][0] + WORST_MARGIN)
    taken: set[int] = set()
    chosen = []
    for error, chain in ranked:
        if error > bound:
            break
        if taken & set(chain):
            continue
        chosen.append(chain)
        taken |= set(chain)
        if spacing:
            taken |= {n for c in usable.couplers if c & set(chain) for n in c}
    return chosen


@pytest.mark.parametrize("name", ["FakeBrisbane", "FakeTorino", "FakeFez"])
def test_heavy_hex_devices_are_ranked_over_every_chain_at_every_width(name):
    """IBM's heavy-hex devices keep the exhaustive ranking (no fewer copies than before rule 5), at every width."""
    graph = ibm_graph(name)
    for width in (2, 5, 8, 12):
        assert chain_bound(graph.usable(), width) <= CHAIN_BUDGET
        for spacing in (0, 1):
            packed = partition(graph, width=width, spacing=spacing)
            assert [copy.qubits for copy in packed.copies] == best_first(graph, width, spacing), (width, spacing)


def test_the_chain_bound_is_never_below_the_chains():
    cases = [(lattice(4, 5), w) for w in (2, 3, 5, 8)] + [(ibm_graph("FakeFez"), 5), (ibm_graph("FakeManilaV2"), 5)]
    cases.append((DeviceGraph.of(range(8), itertools.combinations(range(8), 2)), 4))
    for graph, width in cases:
        chains = len(every_chain(graph, width))
        assert chain_bound(graph, width) >= chains, (width, chains)
    fez = ibm_graph("FakeFez").usable()
    assert chain_bound(fez, 5) == len(every_chain(fez, 5))  # exact where the shortest cycle is longer than the chain


@pytest.mark.parametrize("qubits, broken", [(32, (0, 1)), (32, (3, 17)), (100, None)])
def test_dense_devices_grow_their_chains_into_disjoint_copies(qubits, broken):
    """An ion trap with one broken coupler, and a 100-qubit all-to-all device:
    the search over every ordering was factorial there (it hung)."""
    pairs = [pair for pair in itertools.combinations(range(qubits), 2) if pair != broken]
    graph = DeviceGraph.of(range(qubits), pairs, readout_error={q: 0.003 + q / 100_000 for q in range(qubits)})
    assert chain_bound(graph, WIDTH) > CHAIN_BUDGET
    for spacing in (1, 0):  # spacing cannot apply where nearly every qubit neighbours every other
        packed = partition(graph, width=WIDTH, spacing=spacing)
        assert_sound(graph, packed, spacing=spacing)
        assert len(packed.copies) == qubits // WIDTH
    # The five best qubits first, joined by couplers that exist (assert_sound: never 0-1 where it is broken).
    assert set(partition(graph, width=WIDTH).copies[0].qubits) == {0, 1, 2, 3, 4}


def test_a_square_lattice_at_twelve_qubits_a_copy_grows_its_chains():
    graph = lattice(10, 12)  # IBM Nighthawk's 120-qubit square lattice: 2.6 million chains of 12
    assert chain_bound(graph, 12) > CHAIN_BUDGET
    for spacing in (1, 0):
        packed = partition(graph, width=12, spacing=spacing)
        assert_sound(graph, packed, spacing=spacing, width=12)
        assert len(packed.copies) >= 4


# --- packed circuits and their demultiplexing ----------------------------------------------------------


def _deterministic_rows(executions: int) -> tuple[np.ndarray, list[int]]:
    """Angles of +-pi/2 make the feature map deterministic: Ry(+-pi/2) then H
    gives |0> or |1>, which the CNOT cascade maps to one known basis state.
    Every row differs, so a swapped copy or a swapped bit is caught."""
    rows, expected = [], []
    for e in range(executions):
        bits = [((e * 7 + 3) >> i) & 1 for i in range(WIDTH)]
        rows.append([np.pi / 2 if bit == 0 else -np.pi / 2 for bit in bits])
        for i in range(WIDTH - 1):
            bits[i + 1] ^= bits[i]
        expected.append(sum(bit << i for i, bit in enumerate(bits)))
    assert len(set(expected)) == executions
    return np.array(rows), expected


def _run_packed(circuit, rows, copies, backend, shots: int) -> np.ndarray:
    from qiskit_aer.primitives import SamplerV2

    from qhw.circuits import copy_register, counts_from_bitarray, demultiplexed, packed_rows

    values = packed_rows(rows, copies, circuit)
    result = SamplerV2.from_backend(backend, seed=3).run([(circuit, values)], shots=shots).result()[0]
    by_copy = np.stack([counts_from_bitarray(getattr(result.data, copy_register(c)), WIDTH) for c in range(copies)], axis=1)
    return demultiplexed(by_copy, len(rows))


def test_a_packed_circuit_gives_each_execution_its_own_counts_on_an_ideal_simulator():
    from qiskit_aer import AerSimulator

    from qhw.circuits import feature_map, packed

    rows, expected = _deterministic_rows(7)
    circuit = packed(feature_map(), 3)
    assert circuit.num_qubits == 15 and [r.name for r in circuit.cregs] == ["meas", "meas1", "meas2"]
    counts = _run_packed(circuit, rows, 3, AerSimulator(), shots=50)
    assert counts.shape == (7, 2**WIDTH)
    assert [int(np.argmax(row)) for row in counts] == expected
    assert (counts.max(axis=1) == 50).all()


def test_a_packed_circuit_runs_on_the_partition_s_qubits_of_a_noisy_device():
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.fake_provider import FakeFez

    from qhw.circuits import feature_map, packed

    device = FakeFez()
    # Two copies: Aer simulates the 10 qubits in use with the noise of each (a state of 2**10).
    chains = partition(ibm_graph("FakeFez"), width=WIDTH, copies=2)
    circuit = generate_preset_pass_manager(
        optimization_level=1, target=device.target, initial_layout=list(chains.qubits), seed_transpiler=0
    ).run(packed(feature_map(), 2))
    assert list(circuit.layout.final_index_layout()[: 2 * WIDTH]) == list(chains.qubits)  # no qubit moved
    rows, expected = _deterministic_rows(5)
    counts = _run_packed(circuit, rows, 2, AerSimulator.from_backend(device), shots=200)
    assert [int(np.argmax(row)) for row in counts] == expected  # noise blurs, the right outcome still leads
    assert (counts.sum(axis=1) == 200).all()


def test_the_fill_of_the_last_packed_execution_is_never_read():
    from qhw.circuits import demultiplexed

    by_copy = np.arange(2 * 3 * 4).reshape(2, 3, 4)  # 2 packed executions of 3 copies
    assert demultiplexed(by_copy, 5).tolist() == by_copy.reshape(6, 4)[:5].tolist()


# --- packed runs, end to end -------------------------------------------------------------------------


@pytest.mark.parametrize("backend_name", ["statevector", "aer_simulator", "braket_local", "fake_fez", "braket_emulator"])
def test_a_packed_run_stores_each_sample_s_own_counts(signed_features, backend_name, tmp_path):
    from sqlalchemy import select

    from qhw import runs
    from qhw.store.models import ResultRow

    from conftest import expected_index
    from device_documents import garnet_like

    store, arrays = signed_features
    if backend_name == "braket_emulator":  # a line of 17 qubits numbered from 1: three copies, spaced
        document = tmp_path / "line17.json"
        document.write_text(garnet_like(17).json())
        backend_name = f"braket_emulator:{document}"
    result = runs.submit(store, backend_name=backend_name, split="test", limit=8, shots=64, pack=3, workers=1)
    run = result.run
    assert run.copies == 3 and result.executions == 3  # 8 samples, 3 a packed execution
    assert all(job.state.value == "collected" for job in result.jobs)
    stored = store.results.run_counts(run.id)
    assert len(stored.counts) == 8 and (stored.counts.sum(axis=2) == 64).all()
    for index, counts in zip(stored.sample_index, stored.counts[:, 0], strict=True):
        assert int(np.argmax(counts)) == expected_index(arrays.angles_test[index])
    with store.database.transaction(write=False) as session:
        copies = session.execute(select(ResultRow.copy).where(ResultRow.run_id == run.id).order_by(ResultRow.id)).scalars().all()
    assert sorted(copies) == [0, 0, 0, 1, 1, 1, 2, 2]  # the last packed execution has two samples and a fill
    if backend_name == "fake_fez":
        chains = partition(ibm_graph("FakeFez"), width=WIDTH, copies=3)
        assert run.layout == chains.qubits and len(set(run.layout)) == 15
        snapshot, _ = store.ledger.device_snapshot(run.id)
        assert {q.qubit for q in snapshot.qubits} == set(run.layout)  # every qubit used is described


def test_pack_auto_fills_a_wide_device_and_says_one_copy_on_a_simulator(signed_features):
    from qhw import runs

    store, _ = signed_features
    packed = runs.submit(store, backend_name="fake_fez", split="test", limit=40, shots=32, pack="auto", workers=1)
    assert packed.run.copies == len(partition(ibm_graph("FakeFez"), width=WIDTH).copies) > 15
    assert "room for" in packed.notes[0]
    single = runs.submit(store, backend_name="statevector", split="test", limit=4, shots=32, pack="auto")
    assert single.run.copies == 1 and "no qubits to share" in single.notes[0]
    # fake_lima's 5 qubits form a T, no chain: the compiler places one copy, with swaps.
    t_shaped = runs.submit(store, backend_name="fake_lima", split="test", limit=4, shots=32, pack="auto")
    assert t_shaped.run.copies == 1 and "one copy" in t_shaped.notes[0]


@pytest.mark.parametrize(
    "pack, spacing, backend_name, message",
    [
        (0, 1, "statevector", "pack must be auto or a whole number of copies from 1 to 1024, got 0"),
        (-1, 1, "statevector", "got -1"),
        ("many", 1, "statevector", "got many"),
        (1, 2, "statevector", "pack_spacing must be 0"),
        (2, 1, "fake_manila", "pack 2: only 1 copies of 5 qubits fit"),
        (2, 1, "fake_lima", "no 5 usable qubits coupled in a chain"),
    ],
)
def test_packing_refuses_what_cannot_be_packed_and_writes_nothing(featured_store, pack, spacing, backend_name, message):
    from qhw import runs
    from qhw.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        runs.submit(featured_store, backend_name=backend_name, split="test", limit=4, shots=32, pack=pack, pack_spacing=spacing)
    assert featured_store.ledger.runs() == []


def test_runs_show_lists_each_copy_s_qubits(signed_features):
    from qhw import runs
    from qhw.overview import run_details

    store, _ = signed_features
    run = runs.submit(store, backend_name="fake_fez", split="test", limit=4, shots=16, pack=2, pack_spacing=0, workers=1).run
    shown = run_details(store, run.id).to_dict()
    chains = partition(ibm_graph("FakeFez"), width=WIDTH, copies=2, spacing=0)
    assert [copy["qubits"] for copy in shown["copies"]] == [list(copy.qubits) for copy in chains.copies]
    assert [copy["estimated_error"] for copy in shown["copies"]] == pytest.approx([copy.estimated_error for copy in chains.copies])


def test_readout_mitigation_calibrates_and_corrects_each_copy_on_its_own_qubits(featured_store):
    from qhw import runs
    from qhw.mitigation import assignment_matrices, mitigate_counts, mitigated_counts

    result = runs.submit(featured_store, backend_name="fake_fez", split="test", limit=6, shots=2000, pack=3, mitigate="readout", workers=1)
    run = result.run
    calibration = featured_store.results.calibration(run.id)
    assert sorted(calibration) == [(copy, state) for copy in range(3) for state in (0, 31)]
    for copy in range(3):  # each copy's qubits read mostly what was prepared on them
        assert calibration[(copy, 0)].argmax() == 0 and calibration[(copy, 31)].argmax() == 31
    stored = featured_store.results.run_counts(run.id)
    quasi = mitigated_counts(featured_store, run)
    for i in range(len(stored.counts)):
        copy = int(stored.copies[i, 0])
        own = assignment_matrices(calibration[(copy, 0)], calibration[(copy, 31)], WIDTH)
        assert np.allclose(quasi.counts[i, 0], mitigate_counts(stored.counts[i, 0], own))
    # The copies' qubits differ, and so do their calibrations: another copy's would correct otherwise.
    other = assignment_matrices(calibration[(1, 0)], calibration[(1, 31)], WIDTH)
    first = int(np.flatnonzero(stored.copies[:, 0] == 0)[0])
    assert not np.allclose(quasi.counts[first, 0], mitigate_counts(stored.counts[first, 0], other))


def test_compare_shows_agreement_by_copy_and_that_emulation_has_no_crosstalk(featured_store):
    from qhw import runs
    from qhw.compare import compare, hellinger_fidelity

    sim = runs.submit(featured_store, backend_name="statevector", split="all", limit=12, shots=256).run
    packed = runs.submit(featured_store, backend_name="fake_fez", split="test", limit=12, shots=256, pack=3, workers=1).run
    comparison = compare(featured_store, simulator_run_id=sim.id, hardware_run_id=packed.id, epochs=2)
    by_copy = comparison.agreement.fidelity_by_copy
    assert sorted(by_copy) == [0, 1, 2] and sum(summary.n for summary in by_copy.values()) == comparison.shared_samples
    # Copy 1's figure is the mean over exactly the circuits copy 1 measured.
    s, h = featured_store.results.run_counts(sim.id), featured_store.results.run_counts(packed.id)
    rows = {(str(a), int(b)): i for i, (a, b) in enumerate(zip(s.splits, s.sample_index, strict=True))}
    mine = [i for i in range(len(h.counts)) if h.copies[i, 0] == 1]
    expected = [
        hellinger_fidelity(s.counts[rows[(str(h.splits[i]), int(h.sample_index[i]))], 0] / 256, h.counts[i, 0] / 256) for i in mine
    ]
    assert by_copy[1].mean == pytest.approx(float(np.mean(expected)))
    assert any("cannot show it; only hardware can" in note for note in comparison.notes)
    assert "fidelity_by_copy" in comparison.to_dict()["agreement"]
    # The command line shows it too, and so does the report.
    from click.testing import CliRunner

    from qhw.cli import main

    shown = CliRunner().invoke(main, ["compare", "--sim", str(sim.id), "--hw", str(packed.id), "--epochs", "2"])
    assert shown.exit_code == 0, shown.output
    assert f"agreement by copy of run {packed.id}" in shown.output
    report = shown.output.rsplit("report: ", 1)[1].strip()
    assert "<th>copy</th>" in open(report, encoding="utf-8").read()


def test_a_packed_ibm_job_reads_each_copy_from_its_own_register_of_one_pub(signed_features, ibm_cloud):
    from qhw import runs

    from conftest import expected_index

    store, arrays = signed_features
    result = runs.submit(store, backend_name="ibm_fez", split="test", limit=8, shots=64, pack=3, approve=lambda estimate: True)
    for _ in range(6):  # the fake's job is queued, then running, then done
        if runs.collect(store).pending_jobs == 0:
            break
    assert len(ibm_cloud.jobs) == 1 and result.run.copies == 3 and result.executions == 3
    stored = store.results.run_counts(result.run.id)
    assert len(stored.counts) == 8
    for index, counts in zip(stored.sample_index, stored.counts[:, 0], strict=True):
        assert int(np.argmax(counts)) == expected_index(arrays.angles_test[index])
        assert counts.max() == 64  # an ideal device: every shot the sample's one outcome


def test_a_packed_local_job_holds_no_more_shots_than_an_unpacked_one():
    """A local simulator holds every shot of a job at once, its copies' too (they
    run apart): its jobs are cut by logical executions; a provider's by what is sent."""
    from qhw.backend import LOCAL_SHOTS_PER_JOB, get_backend
    from qhw.planning import plan_jobs

    local = get_backend("fake_fez")
    per_job = LOCAL_SHOTS_PER_JOB // 2**14  # 64 executions of 2**14 shots
    plans = plan_jobs(local, local.profile(), 200, 2**14, copies=5)
    assert [plan.executions for plan in plans] == [60, 60, 60, 20]  # whole packed executions of 5, at most 64
    assert max(plan.executions for plan in plans) * 2**14 <= LOCAL_SHOTS_PER_JOB
    remote = get_backend("ibm_fez")
    profile = remote.profile(offline=True)
    sent = profile.limits.circuits_per_job(1024)
    assert plan_jobs(remote, profile, 10 * sent, 1024, copies=5)[0].executions == 5 * sent  # the provider's limit counts executions sent
    assert per_job == 64


def test_an_adaptive_packed_run_adds_each_round_to_its_own_sample(signed_features, monkeypatch):
    """Rounds of an adaptive run land on shifting copies (round 2 runs fewer
    samples): every shot of every round must still be its own sample's one outcome."""
    from qhw import rounds, runs

    from conftest import expected_index

    store, arrays = signed_features
    # Round 0 all go on; afterwards the first sample of each round is settled.
    monkeypatch.setattr(rounds, "unsettled_by_change", lambda before, after, settings: np.arange(len(after.counts)) > 0)
    run = runs.submit(store, backend_name="statevector", split="test", limit=8, shots=128, adaptive=True, pack=3).run
    assert run.copies == 3 and run.rounds_done and run.round == 2
    stored = store.results.run_counts(run.id)
    assert sorted(stored.shots_each[:, 0].tolist()) == [64] + [128] * 7
    for index, counts, shots in zip(stored.sample_index, stored.counts[:, 0], stored.shots_each[:, 0], strict=True):
        assert counts[expected_index(arrays.angles_test[index])] == shots  # every shot of every round on its own outcome
