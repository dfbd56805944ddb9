"""The noisy engine (backends/_density.py) against Aer's density_matrix method.

Each reference is Aer's own density matrix, with the same noise model, of the
qubits a register measures, taken where the register is measured (its
measurements removed: a reset after a measurement is the reset alone), then
each bit's readout error as Aer applies it (an assignment of the recorded
bit). The engine must give the same probabilities to 1e-8.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from qhw import circuits
from qhw.backends import _density
from qhw.backends._density import NoiseChannels, Unsupported

from conftest import engine_agreement, fake_ibm_device

TOLERANCE = 1e-8


def _full_model(device):
    """The noise model today's path (Runtime's local mode) runs the fake device with."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return device._get_noise_model_from_backend_v2()


def _transpiled(device, template, layout=None):
    from qiskit.transpiler import generate_preset_pass_manager

    return generate_preset_pass_manager(optimization_level=3, backend=device, seed_transpiler=1, initial_layout=layout).run(template)


def aer_register_probabilities(circuit, row, model, register: str) -> np.ndarray:
    """Aer's density_matrix method: the register's outcome probabilities, exactly.

    The circuit's instructions are first put in the order of their qubits'
    positions (a qubit's position is the resets it has had): instructions on
    disjoint qubits commute, and the compiler may start a qubit's next
    position before another qubit's measurement of this one. The register's
    qubits are then saved once every instruction of its position has run.
    """
    from qiskit import QuantumCircuit
    from qiskit_aer import AerSimulator

    bound = circuit.assign_parameters(row) if circuit.parameters else circuit
    resets = [0] * bound.num_qubits
    keyed = []
    for i, instruction in enumerate(bound.data):
        qubits = [bound.find_bit(q).index for q in instruction.qubits]
        if instruction.operation.name == "reset":
            for q in qubits:
                resets[q] += 1
        positions = {resets[q] for q in qubits}
        assert len(positions) == 1, "an instruction spans positions"
        keyed.append((positions.pop(), i, instruction, qubits))
    keyed.sort(key=lambda item: item[:2])
    measured = {}  # bit of the register -> (qubit, position)
    for position, _, instruction, qubits in keyed:
        if instruction.operation.name == "measure":
            places = [j for reg, j in bound.find_bit(instruction.clbits[0]).registers if reg.name == register]
            if places:
                measured[places[0]] = (qubits[0], position)
    (position,) = {p for _, p in measured.values()}
    saved = [measured[j][0] for j in sorted(measured)]
    reference = QuantumCircuit(bound.num_qubits)
    for key, _, instruction, qubits in keyed:
        if key > position:
            break
        if instruction.operation.name not in ("measure", "barrier"):
            reference.append(instruction.operation, qubits)
    reference.save_density_matrix(qubits=saved, label="rho")
    rho = np.asarray(AerSimulator(method="density_matrix", noise_model=model).run(reference, shots=1).result().data(0)["rho"])
    table = np.real(np.diag(rho)).reshape((2,) * len(saved))
    for i, qubit in enumerate(saved):
        error = model._local_readout_errors.get((qubit,))
        if error is not None:
            axis = len(saved) - 1 - i
            table = np.moveaxis(np.tensordot(table, np.asarray(error.probabilities), axes=([axis], [0])), -1, axis)
    return table.reshape(-1)


def _instructions(circuit):
    return frozenset((i.operation.name, tuple(circuit.find_bit(q).index for q in i.qubits)) for i in circuit.data)


def _engine(circuit, model, rows, registers):
    program = _density.compile_circuit(circuit, NoiseChannels(model))
    return _density.probabilities(program, rows, registers)


def _rows(circuit, n, seed=0):
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, (n, len(circuit.parameters)))


def test_fake_manila_paper_map_equals_aer_density_matrix(manila):
    model = _full_model(manila)
    circuit = _transpiled(manila, circuits.feature_map())
    rows = _rows(circuit, 3)
    engine = _engine(circuit, model, rows, ["meas"])
    for r in range(3):
        assert np.abs(engine[r, 0] - aer_register_probabilities(circuit, rows[r], model, "meas")).max() < TOLERANCE
    # The noise is real: the ideal distribution is not what the engine gives.
    from qhw.backends.statevector import outcome_probabilities

    ideal = outcome_probabilities(_transpiled(manila, circuits.feature_map()), rows[:1])
    assert np.abs(engine[0, 0] - ideal[0]).max() > 1e-3


def test_the_fourier_form_equals_the_direct_simulation(manila):
    """Rows through the trigonometric polynomial and through density matrices: the same numbers."""
    model = _full_model(manila)
    circuit = _transpiled(manila, circuits.feature_map())
    rows = _rows(circuit, 600, seed=3)
    program = _density.compile_circuit(circuit, NoiseChannels(model))
    many = _density.probabilities(program, rows, ["meas"])
    assert program._fourier, "the paper's map (a 243-point grid of 5 qubits) uses the Fourier form"
    (component, _), = program.groups
    picked = [0, 1, 300, 301, 598, 599]
    few = _density._component_distribution(component, rows[picked][:, component.columns])
    assert np.abs(many[picked, 0] - few).max() < 1e-12
    # The choice is the component's alone: two rows use the form too (a job's counts do not depend on its size).
    fresh = _density.compile_circuit(circuit, NoiseChannels(model))
    assert np.abs(_density.probabilities(fresh, rows[:2], ["meas"]) - many[:2]).max() < 1e-12 and fresh._fourier


def test_a_two_qubit_map_packed_and_reused_on_fake_fez_equals_aer(fez):
    """Two copies of a 2-qubit map, each run twice a shot (measured, reset,
    run again): every slot's register against Aer's density matrix."""
    template = circuits.feature_map(2)
    packed = circuits.packed(template, 2, 2)
    circuit = _transpiled(fez, packed, layout=[0, 1, 3, 4])
    from qhw.backends._ibm_calibration import device_noise_model

    model = device_noise_model(fez, _instructions(circuit))
    assert "reset" in {i.operation.name for i in circuit.data}
    names = [circuits.copy_register(s) for s in range(4)]
    rows = _rows(circuit, 2, seed=1)
    engine = _engine(circuit, model, rows, names)
    for r in range(2):
        for s, name in enumerate(names):
            assert np.abs(engine[r, s] - aer_register_probabilities(circuit, rows[r], model, name)).max() < TOLERANCE, (r, name)
    # Positions differ only by the reset: the second position is not the first's copy.
    assert np.abs(engine[:, 2] - engine[:, 0]).max() > 0


def test_fake_fez_paper_map_packed_equals_aer_per_copy(fez):
    """Three copies of the paper's map on fake_fez's qubits: each copy's
    register against Aer on the whole packed circuit, with the noise model
    fake_fez builds for itself restricted to those qubits."""
    from qhw.backends._ibm_calibration import device_noise_model

    layout = [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    circuit = _transpiled(fez, circuits.packed(circuits.feature_map(), 2), layout=layout)
    model = device_noise_model(fez, _instructions(circuit))
    rows = _rows(circuit, 2, seed=2)
    engine = _engine(circuit, model, rows, ["meas", "meas1"])
    for r in range(2):
        for s, name in enumerate(["meas", "meas1"]):
            assert np.abs(engine[r, s] - aer_register_probabilities(circuit, rows[r], model, name)).max() < TOLERANCE


def test_the_restricted_model_is_the_devices_own(manila):
    """A fake device's channels, built for the qubits a circuit uses only,
    are those of the noise model it builds for itself (all its qubits)."""
    from qhw.backends._ibm_calibration import device_noise_model

    keys = [("sx", (1,)), ("x", (2,)), ("cx", (1, 2)), ("cx", (2, 1)), ("reset", (1,)), ("id", (2,))]
    full = NoiseChannels(_full_model(manila))
    part = NoiseChannels(device_noise_model(manila, frozenset(keys + [("measure", (1,))])))
    for key in keys:
        assert np.array_equal(full.error(*key), part.error(*key)), key
    assert np.array_equal(full.readout(1), part.readout(1))
    assert part.error("sx", (0,)) is None  # not asked for
    assert part.readout(2) is None


def test_an_errors_superoperator_is_qiskits(manila):
    """The engine's own reading of Aer's errors (a mixture of small circuits) equals Qiskit's channel conversion."""
    from qiskit.quantum_info import Kraus

    model = _full_model(manila)
    for name, qubits in [("sx", (0,)), ("cx", (0, 1)), ("reset", (3,)), ("x", (4,))]:
        error = model._local_quantum_errors[name][qubits]
        expected = _density._superop([np.asarray(k) for k in Kraus(error).data])
        assert np.abs(_density.error_superop(error) - expected).max() < 1e-12, name


def test_a_twelve_qubit_map_equals_aer(fez):
    from qhw.backends._ibm_calibration import device_noise_model

    circuit = _transpiled(fez, circuits.feature_map(12))
    model = device_noise_model(fez, _instructions(circuit))
    rows = _rows(circuit, 1, seed=4)
    engine = _engine(circuit, model, rows, ["meas"])
    assert np.abs(engine[0, 0] - aer_register_probabilities(circuit, rows[0], model, "meas")).max() < TOLERANCE


def test_what_the_engine_cannot_represent_is_refused_with_a_reason(manila):
    from qiskit import QuantumCircuit
    from qiskit_aer.noise import NoiseModel, ReadoutError, depolarizing_error

    model = _full_model(manila)
    after = QuantumCircuit(1, 2)
    after.measure(0, 0)
    after.x(0)
    after.measure(0, 1)
    with pytest.raises(Unsupported, match="after its measurement"):
        _density.compile_circuit(after, NoiseChannels(model))
    delayed = QuantumCircuit(1, 1)
    delayed.delay(100, 0)
    delayed.measure(0, 0)
    with pytest.raises(Unsupported, match="delays"):
        _density.compile_circuit(delayed, NoiseChannels(model))
    correlated = NoiseModel()
    correlated.add_readout_error(ReadoutError([[0.9, 0.05, 0.05, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]), [0, 1])
    measured = QuantumCircuit(2, 2)
    measured.measure([0, 1], [0, 1])
    with pytest.raises(Unsupported, match="correlated readout"):
        _density.compile_circuit(measured, NoiseChannels(correlated))
    on_measure = NoiseModel()
    on_measure.add_all_qubit_quantum_error(depolarizing_error(0.1, 1), "measure")
    with pytest.raises(Unsupported, match="measure"):
        _density.compile_circuit(measured, NoiseChannels(on_measure))


# --- the engine in qhw's runs ---------------------------------------------------------------------


def _submit(store, backend: str, **options):
    from qhw import runs

    return runs.submit(store, backend_name=backend, split="test", seed=5, **options)



def test_fake_devices_run_the_density_engine_by_default_and_aer_on_request(featured_store, monkeypatch):
    """Each run records its engine and runs on it; the two engines' outcomes
    agree within shot noise, and both differ from the ideal simulator's by
    the device's noise."""
    import json

    from click.testing import CliRunner

    from qhw.cli import main

    drawn = []
    real_sample = _density.sample
    monkeypatch.setattr(_density, "sample", lambda *args, **kw: drawn.append(1) or real_sample(*args, **kw))
    density = _submit(featured_store, "fake_manila", shots=4096, workers=1)
    assert drawn, "the density engine drew the shots"
    drawn.clear()
    aer = _submit(featured_store, "fake_manila", shots=4096, engine="aer", workers=1)
    assert not drawn, "--engine aer runs on Aer"
    ideal = _submit(featured_store, "statevector", shots=4096)
    assert (density.run.engine, aer.run.engine, ideal.run.engine) == ("density", "aer", None)
    shown = json.loads(CliRunner().invoke(main, ["runs", "show", str(density.run.id), "--json"]).stdout)
    assert (shown["engine"], shown["engine_note"]) == ("density", None)
    between_engines, noise = engine_agreement(featured_store, density.run.id, aer.run.id, ideal.run.id)
    # Pooled over the samples' shots, two draws of one distribution differ by about 1e-2 at most.
    assert between_engines < 0.02, between_engines
    assert noise > 2 * between_engines, (noise, between_engines)


def test_the_same_seed_gives_the_same_counts_on_any_number_of_workers(featured_store):
    """A reused run on fake_manila in several jobs: one worker (in this process) or two (a pool)."""
    from sqlalchemy import select

    from qhw.store.models import ResultRow

    runs_ = [_submit(featured_store, "fake_manila", shots=65_536, reuse=2, workers=workers) for workers in (1, 2)]
    assert all(len(r.jobs) > 1 for r in runs_)

    def stored(run_id):
        with featured_store.database.transaction(write=False) as session:
            rows = session.execute(
                select(ResultRow.sample_index, ResultRow.position, ResultRow.counts).where(ResultRow.run_id == run_id).order_by(ResultRow.sample_index)
            ).all()
        return [(index, position, bytes(counts)) for index, position, counts in rows]

    first, second = (stored(r.run.id) for r in runs_)
    assert first == second
    assert {position for _, position, _ in first} == {0, 1}


def test_a_noise_model_the_engine_cannot_represent_runs_on_aer_and_says_why(featured_store, monkeypatch):
    """A channel the engine cannot apply exactly (here: the device's cx error,
    refused at the channels' boundary as a correlated error would be): the
    run falls back to Aer, records why and says it once."""
    import functools
    import json

    from click.testing import CliRunner

    from qhw.backends import _ibm_calibration, ibm
    from qhw.cli import main

    real_error = _ibm_calibration.DeviceChannels.error

    def error(self, name, qubits):
        if name == "cx":
            raise Unsupported("the noise model has a correlated error on cx")
        return real_error(self, name, qubits)

    monkeypatch.setattr(_ibm_calibration.DeviceChannels, "error", error)
    # A fresh cache of channels for this test (a process keeps a device's channels once read).
    monkeypatch.setattr(ibm, "device_channels", functools.cache(_ibm_calibration.device_channels.__wrapped__))
    result = CliRunner().invoke(main, ["submit", "--backend", "fake_manila", "--split", "test", "--limit", "5", "--workers", "1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["engine"] == "aer"
    assert "correlated error on cx" in result.stderr and "runs on Aer" in result.stderr
    run = featured_store.ledger.run(None)
    assert run.engine == "aer" and "correlated error on cx" in run.engine_note
    assert featured_store.results.run_counts(run.id).counts.shape[0] == 5


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backend", "statevector", "--engine", "density"], "statevector has no engine 'density': it computes its jobs one way only"),
        (["--backend", "fake_manila", "--engine", "qiskit"], "Invalid value for '--engine'"),
    ],
)
def test_an_engine_a_backend_has_not_is_refused_before_anything_is_written(featured_store, args, message):
    from click.testing import CliRunner

    from qhw.cli import main

    before = featured_store.ledger.runs()
    result = CliRunner().invoke(main, ["submit", "--split", "test", "--limit", "5", *args])
    assert result.exit_code != 0
    assert message in result.stderr and "Traceback" not in result.output
    assert featured_store.ledger.runs() == before


@pytest.mark.parametrize("device_name, sample", [("FakeManilaV2", None), ("FakeFez", 60)])
def test_the_channels_read_from_the_properties_are_aers(device_name, sample):
    """Every instruction's channel and every qubit's readout, as the engine
    computes them from the device's properties, equal those of the noise
    model the device builds for itself (all of fake_manila's; a sample of
    fake_fez's 1,640 instructions, each kind of gate among them)."""
    from qhw.backends._ibm_calibration import DeviceChannels, device_noise_model

    device = fake_ibm_device(device_name)
    channels = DeviceChannels(device)
    keys = sorted(channels._gates)
    if sample is not None:
        by_name: dict = {}
        for key in keys:
            by_name.setdefault(key[0], []).append(key)
        rng = np.random.default_rng(0)
        picks = {name: rng.choice(len(group), min(len(group), sample // len(by_name) + 1), replace=False) for name, group in by_name.items()}
        keys = [group[i] for name, group in by_name.items() for i in picks[name]]
    qubits = sorted({q for _, where in keys for q in where})
    model = NoiseChannels(device_noise_model(device, frozenset(keys) | {("measure", (q,)) for q in qubits}))
    compared = 0
    for name, where in keys:
        ours, aers = channels.error(name, where), model.error(name, where)
        if aers is None:  # Aer leaves an ideal error out
            assert ours is None or np.abs(ours - np.eye(len(ours))).max() < 1e-12, (name, where)
        else:
            assert np.abs(ours - aers).max() < 1e-12, (name, where)
            compared += 1
    for qubit in qubits:
        assert np.array_equal(channels.readout(qubit), model.readout(qubit))
    assert compared > 20


def test_a_wide_circuit_runs_on_aer_unless_the_engine_is_asked_for():
    """Past 8 qubits a part's density matrix costs more than Aer's shots: the
    default is Aer, said in the note; --engine density is honoured."""
    from qhw.backend import get_backend

    fez = get_backend("fake_fez", seed=0)
    wide = fez.transpile(circuits.feature_map(12), seed=0)
    default, asked = fez.engine_for(wide, None), fez.engine_for(wide, "density")
    assert default.engine == "aer" and "widest part has 12 qubits" in default.note
    assert (asked.engine, asked.note) == ("density", None)
    narrow = fez.transpile(circuits.feature_map(8), seed=0)
    assert fez.engine_for(narrow, None).engine == "density"


def test_the_engines_jobs_are_sized_for_it(featured_store, monkeypatch):
    """The density engine takes larger jobs than Aer (no per-shot memory): a
    run's jobs, and an adaptive run's later rounds', are planned for the
    engine it runs on. (Sizes shrunk here so that a small feature set shows it.)"""
    from qhw.backends import _engines, ibm

    monkeypatch.setattr(ibm, "LOCAL_CIRCUITS_PER_JOB", 4)
    monkeypatch.setattr(_engines, "DENSITY_CIRCUITS_PER_JOB", 16)
    density = _submit(featured_store, "fake_manila", limit=20, workers=1)
    aer = _submit(featured_store, "fake_manila", limit=20, engine="aer", workers=1)
    assert [job.executions for job in density.jobs] == [16, 4]
    assert [job.executions for job in aer.jobs] == [4] * 5
    adaptive = _submit(featured_store, "fake_manila", limit=20, adaptive=True, shots=1024, workers=1)
    later = [job for job in adaptive.jobs if job.round > 0]
    assert later and max(job.executions for job in later) > 4
