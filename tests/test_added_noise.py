"""--noise on an emulated IBM device: each effect an explicit channel, and the
noisy engine exact on them.

The oracle is Aer's density_matrix method (test_density.aer_register_probabilities)
on the very circuit the engine reads, with --noise's channels written in, and
with the device's noise model scaled by Aer's own errors (scaled_noise_model):
every register's probabilities within 1e-8, each effect alone and all at once.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_density import _instructions, _rows, _transpiled, aer_register_probabilities

from qhw import circuits
from qhw.backends import _density
from qhw.backends._added_noise import LABEL, DeviceFacts, device_facts, with_added_noise
from qhw.backends._ibm_calibration import device_channels, scaled_noise_model
from qhw.noise import NoiseSpec, parse_noise

TOLERANCE = 1e-8


def _compare(device, circuit, copies, spec: NoiseSpec, names, rows) -> tuple[float, float]:
    """(the largest difference between the engine and Aer, the largest change the spec makes to the engine's figures)."""
    noisy = with_added_noise(circuit, spec, device_facts(device), copies)
    model = scaled_noise_model(device, _instructions(noisy), spec.scale, spec.readout)
    engine = _density.probabilities(_density.compile_circuit(noisy, device_channels(device, spec.scale, spec.readout)), rows, names)
    plain = _density.probabilities(_density.compile_circuit(circuit, device_channels(device)), rows, names)
    worst = max(
        np.abs(engine[r, s] - aer_register_probabilities(noisy, rows[r], model, name)).max()
        for r in range(len(rows)) for s, name in enumerate(names)
    )
    return worst, float(np.abs(engine - plain).max())


EFFECTS = [
    "scale=3", "readout=4", "reset=0.1", "crosstalk=0.6", "prep=0.1", "prep=auto", "bad-qubit={bad}:0.3",
    "scale=2,readout=2,reset=0.05,measure-crosstalk=0.2,crosstalk=0.4,prep=auto,bad-qubit={bad}:0.2",
    # A job of a drifting run: every rate of realistic times its factor.
    "drifted:realistic,readout=2,prep=auto,bad-qubit={bad}:0.2",
]


def _spec(text: str) -> NoiseSpec:
    """An EFFECTS entry as a job runs it ("drifted:": at a drift factor of 1.7)."""
    drifted = text.startswith("drifted:")
    spec = parse_noise(text.removeprefix("drifted:"))
    return spec.drifted(1.7) if drifted else spec


#: Effects the paper's map on fake_manila cannot feel, and why: it has no
#: reset; and on a cx device every qubit has had its last non-diagonal gate
#: (H) before the first cx, so a ZZ rotation after any layer commutes with the
#: cascade to the measurement. Their channels are written all the same, and
#: the engine must still agree with Aer to the last digit.
UNFELT_ON_MANILA = ("reset=0.1", "crosstalk=0.6")


@pytest.mark.parametrize("text", EFFECTS)
def test_fake_manila_each_effect_equals_aer(manila, text):
    circuit = _transpiled(manila, circuits.feature_map())
    layout = circuit.layout.final_index_layout()[:5]
    spec = _spec(text.format(bad=layout[2]))
    worst, effect = _compare(manila, circuit, [layout], spec, ["meas"], _rows(circuit, 2, seed=3))
    assert worst < TOLERANCE
    if text in UNFELT_ON_MANILA:
        assert effect < 1e-12
    else:
        assert effect > 1e-3, "the effect changes what the device measures"


@pytest.mark.parametrize("text", EFFECTS)
def test_fake_fez_packed_side_by_side_and_reused_each_effect_equals_aer(fez, text):
    """Two copies of a 3-qubit map on neighbouring qubits 0-1-2 and 3-4-5
    (spacing 0: coupler 2-3 between the copies, idle qubits beside them),
    each run twice a shot: every slot's register."""
    layout = [0, 1, 2, 3, 4, 5]
    circuit = _transpiled(fez, circuits.packed(circuits.feature_map(3), 2, 2), layout=layout)
    spec = _spec(text.format(bad=4))
    names = [circuits.copy_register(s) for s in range(4)]
    worst, effect = _compare(fez, circuit, [layout[:3], layout[3:]], spec, names, _rows(circuit, 2, seed=1))
    assert worst < TOLERANCE
    assert effect > 1e-3


def test_every_kind_of_crosstalk_pair_is_written_as_the_docstring_says(fez):
    """Copies 0-1 and 2-3 side by side, qubit 4 idle beside copy 2-3 (fez couples 0-1-2-3-4)."""
    layout = [0, 1, 2, 3]
    circuit = _transpiled(fez, circuits.packed(circuits.feature_map(2), 2), layout=layout)
    assert all(len(i.qubits) < 2 or {circuit.find_bit(q).index for q in i.qubits} in ({0, 1}, {2, 3}) for i in circuit.data)
    noisy = with_added_noise(circuit, parse_noise("crosstalk=0.2"), device_facts(fez), [layout[:2], layout[2:]])
    written = [
        (i.operation.name, len(i.qubits), tuple(noisy.find_bit(q).index for q in i.qubits))
        for i in noisy.data if getattr(i.operation, "label", None) == LABEL
    ]
    assert ("unitary", 2, (0, 1)) in written and ("unitary", 2, (2, 3)) in written  # within a copy: the coherent ZZ
    assert ("unitary", 1, (3,)) in written  # beside idle qubit 4: its rz
    assert ("quantum_channel", 1, (1,)) in written and ("quantum_channel", 1, (2,)) in written  # between copies: twirled
    assert all(qubits != (4,) for _, _, qubits in written), "an idle qubit gets nothing (it stays in |0>)"
    twirled = next(i.operation for i in noisy.data if i.operation.name == "quantum_channel")
    assert _flip_probability(twirled) == pytest.approx(np.sin(0.1) ** 2)  # a ZZ error's sin^2(theta / 2)
    assert not any(name == "unitary" and qubits == (1, 2) for name, _, qubits in written), "no coherent ZZ links two copies"


def _flip_probability(operation) -> float:
    """A written Z error's probability, read off the superoperator the engine applies (coherences times 1 - 2p)."""
    return float((1 - _density._written_channel(operation)[1, 1].real) / 2)


class _NoChannels:
    """No device noise: what --noise writes, alone."""

    def error(self, name, qubits):
        return None

    def readout(self, qubit):
        return None


def test_each_written_channel_does_what_its_key_says():
    """On one qubit with no device noise: prep=P starts it in |1> with P;
    reset=P leaves it there with P after a reset; bad-qubit=Q:P depolarizes
    it before its measurement (a flip with P/2) and after each gate."""
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister

    q = QuantumRegister(1)
    first, second = ClassicalRegister(1, "meas"), ClassicalRegister(1, "meas1")
    circuit = QuantumCircuit(q, first, second)
    circuit.measure(0, first[0])
    circuit.reset(0)
    circuit.measure(0, second[0])
    facts = DeviceFacts(frozenset(), {0: 100e-6}, 250e-6)

    def outcome(text: str) -> tuple[float, float]:
        noisy = with_added_noise(circuit, parse_noise(text), facts, [(0,)])
        program = _density.compile_circuit(noisy, _NoChannels())
        table = _density.probabilities(program, np.zeros((1, 0)), ["meas", "meas1"])[0]
        return float(table[0, 1]), float(table[1, 1])  # P(1) before the reset, and after it

    assert outcome("prep=0.1") == pytest.approx((0.1, 0.0))
    assert outcome("prep=auto") == pytest.approx((0.5 * np.exp(-2.5), 0.0))
    assert outcome("reset=0.2") == pytest.approx((0.0, 0.2))
    assert outcome("bad-qubit=0:0.3") == pytest.approx((0.15, 0.15))
    gated = QuantumCircuit(q, first)
    gated.x(0)
    gated.measure(0, first[0])
    noisy = with_added_noise(gated, parse_noise("bad-qubit=0:0.3"), facts, [(0,)])
    table = _density.probabilities(_density.compile_circuit(noisy, _NoChannels()), np.zeros((1, 0)), ["meas"])[0, 0]
    assert table[0] == pytest.approx(2 * 0.15 * 0.85)  # depolarized after the x and before the measurement: one flip of the two


def test_the_twirled_zz_between_copies_gives_each_copy_what_the_joint_zz_error_does():
    """The claim behind writing crosstalk between copies as a Z error on each:
    a ZZ error of probability p on (a, b), and Z errors of p on a and on b
    apart, leave each copy's register with the same distribution (on Aer)."""
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
    from qiskit_aer import AerSimulator
    from qiskit_aer.noise import pauli_error

    def circuit(joint: bool, p: float = 0.3):
        q = QuantumRegister(4)
        a, b = ClassicalRegister(2, "a"), ClassicalRegister(2, "b")
        qc = QuantumCircuit(q, a, b)
        for qubit, angle in enumerate([0.3, 1.1, 2.0, 0.7]):
            qc.ry(angle, qubit)
        qc.cx(0, 1)
        qc.cx(3, 2)
        for _ in range(2):  # twice: the second acts on copies the first has correlated
            if joint:
                qc.append(pauli_error([("ZZ", p), ("II", 1 - p)]), [1, 2])
            else:
                qc.append(pauli_error([("Z", p), ("I", 1 - p)]), [1])
                qc.append(pauli_error([("Z", p), ("I", 1 - p)]), [2])
            qc.h([1, 2])
            qc.cx(1, 0)
            qc.cx(2, 3)
        qc.measure([0, 1], a)
        qc.measure([2, 3], b)
        return qc

    def marginals(qc) -> tuple[np.ndarray, np.ndarray]:
        qc = qc.remove_final_measurements(inplace=False)
        qc.save_probabilities_dict([0, 1], label="a")
        qc.save_probabilities_dict([2, 3], label="b")
        data = AerSimulator(method="density_matrix").run(qc).result().data()
        return tuple(np.array([data[name].get(i, 0.0) for i in range(4)]) for name in ("a", "b"))

    joint, apart = marginals(circuit(True)), marginals(circuit(False))
    for one, other in zip(joint, apart, strict=True):
        assert np.abs(one - other).max() < 1e-12
    # ... and the error is felt: without it, each copy's distribution is another.
    clean = marginals(circuit(True, p=0.0))
    assert min(np.abs(clean[c] - joint[c]).max() for c in range(2)) > 0.01


def test_a_measurement_dephases_a_neighbour_still_in_use():
    """Qubit 0 is measured on the clock's first tick, while its neighbour 1
    waits for its CZ between two H gates: the Z error of probability P flips
    qubit 1's outcome with probability P (the engine, and Aer). Qubits being
    measured themselves, or measured already, are not dephased: qubit 1's own
    measurement dephases qubit 2 (measured beside it) to no effect."""
    from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
    from qiskit_aer.noise import NoiseModel

    q = QuantumRegister(3)
    first, second = ClassicalRegister(1, "meas"), ClassicalRegister(2, "meas1")
    circuit = QuantumCircuit(q, first, second)
    circuit.x(0)
    circuit.h(1)
    circuit.cz(1, 2)
    circuit.h(1)
    circuit.measure(0, first[0])
    circuit.measure([1, 2], second)
    facts = DeviceFacts(frozenset({(0, 1), (1, 2)}), {}, 0.0)
    noisy = with_added_noise(circuit, parse_noise("measure-crosstalk=0.25"), facts, [(0,), (1, 2)])

    class NoChannels:
        def error(self, name, qubits):
            return None

        def readout(self, qubit):
            return None

    program = _density.compile_circuit(noisy, NoChannels())
    assert _density.probabilities(program, np.zeros((1, 0)), ["meas"])[0, 0] == pytest.approx([0, 1], abs=1e-12)
    table = _density.probabilities(program, np.zeros((1, 0)), ["meas1"])[0, 0]
    assert table == pytest.approx([0.75, 0.25, 0, 0], abs=1e-12)
    assert np.abs(table - aer_register_probabilities(noisy, [], NoiseModel(), "meas1")).max() < TOLERANCE
    dephased = [noisy.find_bit(i.qubits[0]).index for i in noisy.data if i.operation.name == "quantum_channel"]
    assert dephased == [1, 2]


def test_the_scaled_channels_are_aers_scaled_errors(manila):
    """The engine's scaled gate and readout channels against Aer's errors of
    the same scaled parameters, one instruction at a time."""
    from qhw.backends._density import NoiseChannels

    keys = frozenset([("sx", (0,)), ("cx", (0, 1)), ("x", (3,)), ("reset", (2,)), ("measure", (1,))])
    for scale, readout in [(0.0, 0.0), (0.5, 2.0), (7.0, 30.0)]:
        ours = device_channels(manila, scale, readout)
        aers = NoiseChannels(scaled_noise_model(manila, keys, scale, readout))
        for name, qubits in keys - {("measure", (1,))}:
            mine, theirs = ours.error(name, qubits), aers.error(name, qubits)
            if theirs is None:
                assert mine is None or np.abs(mine - np.eye(len(mine))).max() < 1e-12
            else:
                assert np.abs(mine - theirs).max() < 1e-12, (scale, name)
        mine, theirs = ours.readout(1), aers.readout(1)
        assert (mine is None and theirs is None) or np.abs(mine - theirs).max() < 1e-12
    assert device_channels(manila, 30.0, 100.0).readout(1).max() <= 1.0  # probabilities capped


def test_a_spec_with_nothing_to_write_leaves_the_circuit_as_it_is(manila):
    circuit = _transpiled(manila, circuits.feature_map())
    for text in ("scale=2", "readout=3,drift=0.2"):
        noisy = with_added_noise(circuit, parse_noise(text), device_facts(manila), [range(5)])
        assert [i.operation.name for i in noisy.data] == [i.operation.name for i in circuit.data]


# --- the noise kept with a run, and used by every process that works it ---------------------------


def _counts(store, run_id: int) -> np.ndarray:
    return store.results.run_counts(run_id).counts


def test_a_run_keeps_its_noise_and_a_later_collect_runs_it_so(featured_store, monkeypatch):
    """A noisy run cut off before its jobs ran, collected by a later worker
    (which reads the run from the ledger alone), measures what the same run
    measures uninterrupted; without the noise, something else. Its SPEC,
    written out, and its jobs' drift factors are kept and shown."""
    import json

    from click.testing import CliRunner

    from qhw import runs
    from qhw.cli import main
    from qhw.worker import RunWorker

    noise = "realistic,bad-qubit=2:0.3"
    options = dict(backend_name="fake_manila", split="test", limit=10, shots=4096, seed=5, workers=1)
    whole = runs.submit(featured_store, noise=noise, **options)
    plain = runs.submit(featured_store, **options)

    def cut_off(self, job):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(RunWorker, "_run_here", cut_off)
        with pytest.raises(KeyboardInterrupt):
            runs.submit(featured_store, noise=noise, **options)
    cut = featured_store.ledger.runs()[-1]
    assert not featured_store.results.count_samples(cut.id)
    runs.collect(featured_store, run_id=cut.id, workers=1)
    assert np.array_equal(_counts(featured_store, cut.id), _counts(featured_store, whole.run.id))
    assert not np.array_equal(_counts(featured_store, cut.id), _counts(featured_store, plain.run.id))

    stored = featured_store.ledger.run(cut.id)
    assert stored.noise == parse_noise(noise) and featured_store.ledger.run(plain.run.id).noise is None
    jobs = featured_store.ledger.jobs(cut.id)
    assert [job.noise_factor for job in jobs] == [stored.noise.drift_factor(0, job.round, job.execution_start) for job in jobs]
    assert all(job.noise_factor is None for job in featured_store.ledger.jobs(plain.run.id))
    shown = json.loads(CliRunner().invoke(main, ["runs", "show", str(cut.id), "--json"]).stdout)
    assert shown["noise"] == "reset=0.01,measure-crosstalk=0.01,crosstalk=0.01,prep=0.01,drift=0.2,bad-qubit=2:0.3"
    assert shown["noise_factors"] == [{"job": job.id, "factor": job.noise_factor} for job in jobs]
    text = CliRunner().invoke(main, ["runs", "show", str(cut.id)]).stdout
    assert "noise added" in text and "bad-qubit=2:0.3" in text and "drift factors" in text


def test_each_round_of_an_adaptive_noisy_run_draws_its_own_drift(featured_store):
    from qhw import runs

    run = runs.submit(
        featured_store, backend_name="fake_manila", split="test", limit=10, shots=1024, seed=5, workers=1, adaptive=True,
        noise="drift=0.5,seed=3,reset=0.05",
    ).run
    jobs = featured_store.ledger.jobs(run.id)
    assert len({job.round for job in jobs}) > 1
    factors = {job.round: job.noise_factor for job in jobs}
    assert None not in factors.values() and len(set(factors.values())) == len(factors)
    assert featured_store.ledger.run(run.id).noise.reset == 0.05


def test_engine_aer_runs_the_same_added_noise(featured_store):
    """--engine aer (Aer's sampler, the scaled model, the channels written
    in) and the density engine: one distribution within shot noise, far from
    the run without --noise."""
    from qhw import runs

    from conftest import engine_agreement

    options = dict(backend_name="fake_manila", split="test", limit=10, shots=8192, seed=5, workers=1)
    noise = "readout=2,reset=0.2,prep=0.15,bad-qubit=1:0.3,scale=2"
    density = runs.submit(featured_store, noise=noise, **options)
    aer = runs.submit(featured_store, noise=noise, engine="aer", **options)
    plain = runs.submit(featured_store, engine="aer", **options)
    assert (density.run.engine, aer.run.engine) == ("density", "aer")
    between, against_plain = engine_agreement(featured_store, density.run.id, aer.run.id, plain.run.id)
    assert between < 0.01, between
    assert against_plain > 10 * between, (against_plain, between)


def test_a_retried_noisy_job_runs_with_the_run_s_noise(featured_store, monkeypatch):
    from qhw import runs
    from qhw.backends.ibm import IBMEmulator
    from qhw.errors import JobFailedError

    options = dict(backend_name="fake_manila", split="test", limit=10, shots=4096, seed=5, workers=1, noise="bad-qubit=3:0.4,drift=0.3")
    whole = runs.submit(featured_store, **options)

    def refuse(self, *args, **kwargs):
        raise JobFailedError("the emulator refused the job")

    with monkeypatch.context() as patch:
        patch.setattr(IBMEmulator, "run", refuse)
        failed = runs.submit(featured_store, **options)
    assert not featured_store.results.count_samples(failed.run.id)
    runs.retry_run(featured_store, failed.run.id, workers=1)
    assert np.array_equal(_counts(featured_store, failed.run.id), _counts(featured_store, whole.run.id))
    retried = [job for job in featured_store.ledger.jobs(failed.run.id) if job.noise_factor is not None]
    assert retried and retried[0].noise_factor == featured_store.ledger.jobs(whole.run.id)[0].noise_factor


def test_compare_and_its_report_name_the_noise(featured_store, tmp_path):
    import json

    from click.testing import CliRunner

    from qhw import runs
    from qhw.cli import main

    simulator = runs.submit(featured_store, backend_name="aer_simulator", split="all", shots=256).run
    noisy = runs.submit(featured_store, backend_name="fake_manila", split="test", shots=256, noise="realistic,bad-qubit=1:0.1").run
    plain = runs.submit(featured_store, backend_name="fake_manila", split="test", shots=256).run
    spec = "reset=0.01,measure-crosstalk=0.01,crosstalk=0.01,prep=0.01,drift=0.2,bad-qubit=1:0.1"
    result = CliRunner().invoke(main, ["compare", "--sim", str(simulator.id), "--hw", str(noisy.id), "--epochs", "2", "--out", str(tmp_path / "one")])
    assert result.exit_code == 0, result.output
    assert f"run {noisy.id}: emulation of ibm_manila" in result.stdout and f"with --noise {spec}" in result.stdout
    assert f"with --noise {spec}" in (tmp_path / "one" / "index.html").read_text()
    board = CliRunner().invoke(
        main, ["compare", "--sim", str(simulator.id), "--hw", str(noisy.id), "--hw", str(plain.id), "--epochs", "2", "--out", str(tmp_path / "two"), "--json"]
    )
    assert board.exit_code == 0, board.output
    rows = {row["run"]: row for row in json.loads(board.stdout)["leaderboard"]}
    assert (rows[noisy.id]["noise"], rows[plain.id]["noise"]) == (spec, None)
    assert f"(--noise {spec})" in (tmp_path / "two" / "index.html").read_text()


# --- braket_emulator: the same effects on Braket's noisy circuit, against braket_dm ---------------------

BRAKET_EFFECTS = ["scale=3", "readout=3", "crosstalk=0.6", "prep=0.1", "bad-qubit={bad}:0.3",
                  "scale=2,readout=2,reset=0.1,measure-crosstalk=0.2,crosstalk=0.4,prep=0.05,bad-qubit={bad}:0.2"]


@pytest.fixture(scope="module")
def braket_packed(tmp_path_factory):
    """Two copies of the paper's map side by side (spacing 0) on a 12-qubit IQM-like line."""
    from dataclasses import replace

    from test_density_braket import _backend, _document

    from qhw.executables import packed_executable
    from qhw.planning import plan_packing

    backend = _backend(_document(tmp_path_factory.mktemp("braket"), 12))
    template = circuits.feature_map()
    plan = plan_packing(backend, backend.profile(), 2, 0, template=template)
    packed = replace(packed_executable(backend, plan, 1, template=template), engine="density")
    assert packed.copies == 2
    return backend, packed


@pytest.mark.parametrize("text", BRAKET_EFFECTS)
def test_braket_emulator_each_effect_equals_braket_dm(braket_packed, text):
    """Each copy computed apart (as the run computes it), its noisy circuit
    with the effect written in, on the engine and on braket_dm."""
    from dataclasses import replace

    from test_density_braket import braket_dm_probabilities

    from qhw.parallel import part_executable

    backend, packed = braket_packed
    spec = parse_noise(text.format(bad=packed.copy_layout(0)[2]))
    row = np.random.default_rng(4).uniform(-np.pi, np.pi, (1, len(packed.circuit.parameters)))
    for copy in range(2):
        plain = part_executable(backend, packed, copy)
        part = part_executable(backend, replace(packed, noise=spec), copy)
        assert part.noise.busy_qubits == packed.copy_layout(1 - copy)  # the other copy, in use beside it
        rows = np.ascontiguousarray(row[:, circuits.copy_columns(packed.circuit, part.circuit)])
        engine = _density.probabilities(backend._engine_program(part), rows, [circuits.copy_register(0)])[0, 0]
        assert np.abs(engine - braket_dm_probabilities(backend, part, rows[0])).max() < TOLERANCE
        before = _density.probabilities(backend._engine_program(plain), rows, [circuits.copy_register(0)])[0, 0]
        if copy == 0 or "bad-qubit" not in text or "," in text:
            assert np.abs(engine - before).max() > 1e-3, (text, copy)
    # A job's drift makes a part of its own (a part made for another job's noise is not reused).
    drifted = part_executable(backend, replace(packed, noise=spec.drifted(2.0)), 0)
    assert drifted.noise == replace(spec.drifted(2.0), busy_qubits=packed.copy_layout(1))


def test_braket_emulator_runs_with_noise_on_both_engines(tmp_path, featured_store):
    from test_density_braket import _document

    from qhw import runs

    from conftest import engine_agreement, shot_noise_floor

    emulator = f"braket_emulator:{_document(tmp_path)}"
    options = dict(backend_name=emulator, split="test", limit=8, shots=8192, seed=5, workers=1)
    noise = "readout=3,prep=0.2,bad-qubit=2:0.4,scale=3"
    density = runs.submit(featured_store, noise=noise, **options)
    braket = runs.submit(featured_store, noise=noise, engine="braket", **options)
    plain = runs.submit(featured_store, engine="braket", **options)
    assert featured_store.ledger.run(density.run.id).noise == parse_noise(noise)
    between, against_plain = engine_agreement(featured_store, density.run.id, braket.run.id, plain.run.id)
    # Within shot noise: Braket's simulator takes no seed, and 65,536 shots over
    # 32 outcomes differ by about 0.0125 from draw to draw (0.010-0.016 seen);
    # a fixed bound of 0.015 failed one CI run in many.
    floor = shot_noise_floor(featured_store, density.run.id)
    assert between < 1.5 * floor, (between, floor)
    assert against_plain > 5 * between, (against_plain, between)
