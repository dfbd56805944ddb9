"""Any feature map, any width: the built-ins and a user's file, on every kind of backend.

Each map's counts are checked against Qiskit's own ``Statevector`` of the
circuit, bound with the very values the run exported: exactly (the
statevector backend's probabilities) and within shot noise (its counts,
aer_simulator's, and an emulated device's, whose layout is not the identity).
The file is a user's OpenQASM 3: 6 qubits, a parameter used twice, cz, rx and
x, its inputs declared out of alphabetical order and its qubits measured into
classical bits in reverse, so that a mapping by name or by classical bit
would show.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from qhw import feature_maps, runs
from qhw.cli import main
from qhw.errors import ConfigError
from qhw.export import export_results
from qhw.store import Store

#: A user's map: inputs declared b, a, c (so qhw binds components 0, 1, 2 to b, a, c),
#: `a` used twice, qubit i measured into bit 5 - i.
USER_QASM = """OPENQASM 3.0;
include "stdgates.inc";
input float[64] b;
input float[64] a;
input float[64] c;
qubit[6] q;
bit[6] m;
rx(a) q[0];
ry(b) q[1];
cz q[0], q[1];
rx(2 * a + 0.3) q[2];
x q[3];
cz q[2], q[3];
ry(c) q[4];
rx(b - c) q[5];
cz q[3], q[4];
cz q[4], q[5];
h q[3];
m[5] = measure q[0];
m[4] = measure q[1];
m[3] = measure q[2];
m[2] = measure q[3];
m[1] = measure q[4];
m[0] = measure q[5];
"""

#: (map, options of feature_maps.resolve, components) of the module's feature sets.
MAPS = {
    "zz": ("zz", dict(qubits=4, reps=2), 8),  # two circuits a sample
    "angle": ("angle", dict(qubits=3), 3),
    "reupload": ("reupload", dict(qubits=4, reps=2), 4),
    "file": (None, {}, 6),  # the user's file, two circuits a sample
}


@pytest.fixture(scope="module")
def maps_home(tmp_path_factory):
    """A home with one small feature set a map (ids in MAPS' order, from 1)."""
    from qhw.features import build_features

    path = tmp_path_factory.mktemp("maps") / "home"
    user_file = path.parent / "user_map.qasm"
    user_file.write_text(USER_QASM)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QHW_HOME", str(path))
        patch.delenv("QHW_DB_URL", raising=False)
        store = Store(f"sqlite:///{path.parent}/maps.db")
        for index, (name, options, components) in enumerate(MAPS.values(), start=1):
            chosen = feature_maps.resolve(name or str(user_file), **options)
            record = build_features(store, limit_train=60, limit_test=12, epochs=1, feature_map=chosen, components=components)
            assert record.id == index
        store.close()
    return path


@pytest.fixture
def maps_store(maps_home, monkeypatch):
    monkeypatch.setenv("QHW_HOME", str(maps_home))
    monkeypatch.delenv("QHW_DB_URL", raising=False)
    store = Store(f"sqlite:///{maps_home.parent}/maps.db")
    yield store
    store.close()


def feature_set_id(name: str) -> int:
    return list(MAPS).index(name) + 1


def ideal_probabilities(template_qasm3: str, parameters: np.ndarray) -> np.ndarray:
    """(samples, circuits, 2**Q) by Qiskit's Statevector, from the exported
    OpenQASM 3 (its inputs bound in their order of declaration)."""
    import openqasm3
    from openqasm3 import ast
    from qiskit import qasm3
    from qiskit.quantum_info import Statevector

    names = [
        s.identifier.name for s in openqasm3.parse(template_qasm3).statements
        if isinstance(s, ast.IODeclaration) and s.io_identifier == ast.IOKeyword.input
    ]
    circuit = qasm3.loads(template_qasm3)
    by_name = {p.name: p for p in circuit.parameters}
    unitary = circuit.remove_final_measurements(inplace=False)
    out = np.empty((*parameters.shape[:2], 2**circuit.num_qubits))
    for s in range(parameters.shape[0]):
        for k in range(parameters.shape[1]):
            bound = unitary.assign_parameters({by_name[n]: float(v) for n, v in zip(names, parameters[s, k], strict=True)})
            out[s, k] = Statevector(bound).probabilities()
    return out


def exported(store: Store, run_id: int, tmp_path):
    out = tmp_path / f"run{run_id}.npz"
    export_results(store, run_id, out)
    with np.load(out) as data:
        return {key: data[key] for key in data.files}


def assert_within_shot_noise(counts: np.ndarray, probabilities: np.ndarray, shots: int, extra: float = 0.0) -> None:
    """Every outcome's frequency within 5 standard errors of its probability (plus ``extra``)."""
    frequencies = counts / shots
    bound = 5 * np.sqrt(probabilities * (1 - probabilities) / shots) + 1.0 / shots + extra
    worst = np.max(np.abs(frequencies - probabilities) - bound)
    assert worst <= 0, f"a frequency is {worst:.4f} beyond 5 standard errors"


# --- the user's file, read as the user wrote it --------------------------------------------------


def test_the_user_file_binds_its_inputs_in_declaration_order_and_measures_by_qubit(maps_store):
    """The canonical template against the file itself, loaded by Qiskit with
    no help from qhw: components 0, 1, 2 go to b, a, c, and outcome bit i is
    qubit i although the file measured qubit i into bit 5 - i."""
    from qiskit import qasm3
    from qiskit.quantum_info import Statevector

    record = maps_store.catalogue.feature_set(feature_set_id("file"))
    assert (record.feature_map, record.num_qubits, record.num_parameters, record.circuits_per_sample) == ("file:user_map.qasm", 6, 3, 2)
    template = feature_maps.template_of(record)
    original = qasm3.loads(USER_QASM).remove_final_measurements(inplace=False)
    names = {p.name: p for p in original.parameters}
    values = np.array([0.4, 1.3, 2.2])  # b, a, c
    ours = template.remove_final_measurements(inplace=False).assign_parameters(values)
    theirs = original.assign_parameters({names["b"]: 0.4, names["a"]: 1.3, names["c"]: 2.2})
    expected = Statevector(theirs).probabilities()
    assert np.allclose(Statevector(ours).probabilities(), expected, atol=1e-12)
    # Bound by name instead (a, b, c) the distribution differs: the order is tested.
    swapped = original.assign_parameters({names["a"]: 0.4, names["b"]: 1.3, names["c"]: 2.2})
    assert not np.allclose(Statevector(swapped).probabilities(), expected, atol=1e-3)


# --- every map through every kind of backend -----------------------------------------------------


@pytest.mark.parametrize("name", list(MAPS))
def test_statevector_gives_each_map_s_exact_distribution(maps_store, tmp_path, name):
    from qhw import circuits
    from qhw.backends.statevector import outcome_probabilities

    run = runs.submit(maps_store, feature_set_id=feature_set_id(name), backend_name="statevector", split="test", limit=4, shots=10**6, seed=3).run
    record = maps_store.catalogue.feature_set(run.feature_set_id)
    data = exported(maps_store, run.id, tmp_path)
    q, k, p = record.num_qubits, record.circuits_per_sample, record.num_parameters
    assert data["counts"].shape == (4, k, 2**q) and data["parameters"].shape == (4, k, p)
    assert str(data["feature_map"]) == record.feature_map
    # The exported parameters are the feature set's own components, sample by sample.
    from qhw.store.arrays import load_arrays

    angles = load_arrays(maps_store.artifacts, record).angles_test[data["sample_index"]]
    assert np.array_equal(data["parameters"].reshape(4, k * p), angles)
    low, high = record.angle_range
    assert angles.min() >= low and angles.max() <= high
    ideal = ideal_probabilities(str(data["template"]), data["parameters"])
    # Exact: the stored executable's probabilities are Statevector's.
    executable = circuits.from_qpy(maps_store.ledger.run_circuit(run.id).qpy)
    rows = circuits.circuit_rows(data["parameters"].reshape(-1, p), executable)
    assert np.allclose(outcome_probabilities(executable, rows).reshape(ideal.shape), ideal, atol=1e-9)
    # Its counts: multinomial draws from those probabilities.
    assert_within_shot_noise(data["counts"], ideal, 10**6)


@pytest.mark.parametrize("name", list(MAPS))
def test_aer_counts_of_each_map_match_statevector_within_shot_noise(maps_store, tmp_path, name):
    shots = 20_000
    run = runs.submit(maps_store, feature_set_id=feature_set_id(name), backend_name="aer_simulator", split="test", limit=3, shots=shots, seed=5).run
    data = exported(maps_store, run.id, tmp_path)
    assert_within_shot_noise(data["counts"], ideal_probabilities(str(data["template"]), data["parameters"]), shots)


@pytest.mark.parametrize("name", ["zz", "file"])
def test_a_device_with_a_non_trivial_layout_undoes_it(maps_store, tmp_path, name):
    """fake_fez places the map on physical qubits far from 0..Q-1. The
    compiled circuit, cut down to the run's own qubits, has Statevector's
    exact distribution; the emulation's noisy counts are close to it, and
    closer than to the same distribution with its qubits reversed (what a
    layout read backwards would give)."""
    from qhw import circuits
    from qhw.backends.statevector import outcome_probabilities

    shots = 8_000
    run = runs.submit(maps_store, feature_set_id=feature_set_id(name), backend_name="fake_fez", split="test", limit=2, shots=shots, seed=7).run
    record = maps_store.catalogue.feature_set(run.feature_set_id)
    q = record.num_qubits
    assert run.num_qubits == q and len(run.layout) == q and tuple(run.layout) != tuple(range(q))
    snapshot = maps_store.ledger.device_snapshot(run.id)[0]
    assert sorted(qubit.qubit for qubit in snapshot.qubits) == sorted(run.layout)  # the calibration of the qubits used
    data = exported(maps_store, run.id, tmp_path)
    ideal = ideal_probabilities(str(data["template"]), data["parameters"])
    compiled = circuits.from_qpy(maps_store.ledger.run_circuit(run.id).qpy)
    alone = circuits.copy_circuit(compiled, 0, compact=True)
    rows = circuits.circuit_rows(data["parameters"].reshape(-1, record.num_parameters), alone)
    assert np.allclose(outcome_probabilities(alone, rows).reshape(ideal.shape), ideal, atol=1e-9)
    frequencies = data["counts"] / shots
    reversed_ideal = ideal.reshape(*ideal.shape[:2], *[2] * q).transpose(0, 1, *range(q + 1, 1, -1)).reshape(ideal.shape)
    distance = 0.5 * np.abs(frequencies - ideal).sum(axis=-1)
    assert distance.max() < 0.2, distance
    assert (distance < 0.5 * np.abs(frequencies - reversed_ideal).sum(axis=-1)).all()


# --- packing, mitigation, adaptive rounds and the classifier, with another map -------------------


def test_a_chain_map_packs_and_each_copy_reads_its_own_sample(maps_store, tmp_path):
    """zz (linear entanglement) is a chain: packed three to an execution on
    the statevector backend, every sample's counts are its own distribution."""
    shots = 200_000
    result = runs.submit(maps_store, feature_set_id=feature_set_id("zz"), backend_name="statevector", split="test", limit=5, shots=shots, pack=3, seed=1)
    assert result.run.copies == 3 and len(result.run.layout) == 12
    data = exported(maps_store, result.run.id, tmp_path)
    assert_within_shot_noise(data["counts"], ideal_probabilities(str(data["template"]), data["parameters"]), shots)


def test_a_packed_device_run_of_a_four_qubit_map_reads_each_copy_as_its_own_sample(maps_store, tmp_path):
    """zz on 4 qubits, three copies an execution on fake_fez: every copy's
    compiled circuit, cut down to its own qubits, has its own sample's exact
    distribution, and each sample's noisy counts are closer to its own ideal
    than to the next sample's (what a copy read as its neighbour would give)."""
    from qhw import circuits
    from qhw.backends.statevector import outcome_probabilities

    shots = 4_000
    run = runs.submit(maps_store, feature_set_id=feature_set_id("zz"), backend_name="fake_fez", split="test", limit=6, shots=shots, pack=3, seed=2).run
    assert run.copies == 3 and len(run.layout) == 12 and len(set(run.layout)) == 12
    data = exported(maps_store, run.id, tmp_path)
    ideal = ideal_probabilities(str(data["template"]), data["parameters"])  # (6 samples, 2 circuits, 16)
    compiled = circuits.from_qpy(maps_store.ledger.run_circuit(run.id).qpy)
    logical = data["parameters"].reshape(-1, 4)  # execution e = sample e // 2, circuit e % 2, as copy e % 3
    for copy in range(3):
        alone = circuits.copy_circuit(compiled, copy, compact=True)
        columns = circuits.copy_columns(compiled, alone)
        values = circuits.packed_rows(logical, 3, compiled)[:, columns]
        assert np.allclose(outcome_probabilities(alone, values), ideal.reshape(-1, 16)[copy::3], atol=1e-9), copy
    frequencies = data["counts"] / shots
    own = 0.5 * np.abs(frequencies - ideal).sum(axis=-1)
    neighbour = 0.5 * np.abs(frequencies - np.roll(ideal, 1, axis=0)).sum(axis=-1)
    assert own.max() < 0.25 and (own < neighbour).all(), (own, neighbour)


def test_a_map_that_is_not_a_chain_is_not_packed(maps_store, tmp_path):
    ring = tmp_path / "ring.qasm"
    ring.write_text('OPENQASM 3.0;\ninclude "stdgates.inc";\ninput float alpha;\ninput float beta;\nqubit[3] q;\n'
                    "ry(alpha) q[0]; ry(beta) q[1]; cz q[0], q[2]; cx q[1], q[2];\n")
    chosen = feature_maps.resolve(str(ring))
    assert not feature_maps.is_chain(chosen.template)
    assert feature_maps.is_chain(feature_maps.resolve("zz", qubits=5).template)
    from qhw.backend import get_backend
    from qhw.planning import plan_packing

    backend = get_backend("fake_fez")
    profile = backend.profile()
    with pytest.raises(ConfigError, match="^pack 2: the feature map has a gate between qubits that are not neighbours"):
        plan_packing(backend, profile, 2, 1, template=chosen.template)
    auto = plan_packing(backend, profile, None, 1, template=chosen.template)
    assert auto.copies == 1 and "not neighbours" in auto.notes[0]
    assert plan_packing(backend, profile, None, 1, template=feature_maps.resolve("zz", qubits=4).template).copies > 1


def test_readout_mitigation_adaptive_rounds_and_the_classifier_take_the_map_s_width(maps_store):
    from qhw import mitigation, training

    fs = feature_set_id("zz")  # 4 qubits, two circuits a sample: 2 x 16 outcomes
    mitigated = runs.submit(maps_store, feature_set_id=fs, backend_name="fake_manila", split="test", limit=4, shots=512, mitigate="readout", seed=2).run
    calibration = maps_store.results.calibration(mitigated.id)
    assert {state for _, state in calibration} == {0, 15}  # all qubits 0, all qubits 1 of a 4-qubit map
    assert all(counts.shape == (16,) for counts in calibration.values())
    corrected = mitigation.mitigated_counts(maps_store, mitigated)
    assert corrected.frequencies().shape == (4, 2, 16)
    assert not np.allclose(corrected.frequencies(), maps_store.results.run_counts(mitigated.id).frequencies())

    adaptive = runs.submit(maps_store, feature_set_id=fs, backend_name="statevector", split="test", shots=256, adaptive=True, seed=4).run
    adaptive = maps_store.ledger.run(adaptive.id)
    assert adaptive.rounds_done
    shots = maps_store.results.run_counts(adaptive.id).shots_each
    settings = adaptive.adaptive
    assert shots.min() >= settings.first_shots and shots.max() <= 256

    run = runs.submit(maps_store, feature_set_id=fs, backend_name="statevector", split="all", shots=128, seed=0).run
    trained = training.train_hybrid(maps_store, run_id=run.id, epochs=1)
    model = training.load_model(maps_store.artifacts, trained.model)
    assert model.input_shape[-1] == 2 * 2**4


def test_the_observables_readout_feeds_each_parameter_s_pauli_expectation_and_travels_with_the_model(maps_store):
    """The readout is a fixed first layer inside the saved model: reloaded, it turns a
    sample's frequencies into Qiskit's sampled <Z_S> of the template's chosen masks,
    and the model still evaluates on any run of its feature set."""
    from qiskit.result import sampled_expectation_value

    from qhw import training
    from tests.conftest import recomputed_accuracy
    from tests.test_readout import pauli_label

    fs = feature_set_id("zz")  # 4 qubits, 4 parameters, two circuits a sample
    record = maps_store.catalogue.feature_set(fs)
    run = runs.submit(maps_store, feature_set_id=fs, backend_name="statevector", split="all", shots=256, seed=0).run
    trained = training.train_hybrid(maps_store, run_id=run.id, epochs=2, readout="observables")
    assert trained.readout == "observables"
    model = training.load_model(maps_store.artifacts, trained.model)  # from disk
    assert model.input_shape[-1] == 2 * 2**4
    layer = model.get_layer("readout")
    assert not layer.trainable and not layer.use_bias

    masks = feature_maps.sensitive_observables(feature_maps.template_of(record), record.angle_range)
    stored = maps_store.results.run_counts(run.id)
    x = training.outcome_features(maps_store, run).x[:3]
    read = np.asarray(layer(x.astype(np.float32)))
    expected = [
        [
            sampled_expectation_value({format(o, "04b"): int(c) for o, c in enumerate(stored.counts[s, k]) if c}, pauli_label(mask, 4))
            for k in range(2)
            for mask in masks
        ]
        for s in range(3)
    ]
    assert np.allclose(read, expected, atol=1e-5)

    other = runs.submit(maps_store, feature_set_id=fs, backend_name="aer_simulator", split="test", shots=256, seed=5).run
    evaluation = training.evaluate_on_run(maps_store, model_id=trained.model.id, run_id=other.id)
    assert evaluation.accuracy == pytest.approx(recomputed_accuracy(maps_store, trained.model.id, other.id))


def test_compare_trains_every_hybrid_with_the_readout_it_was_given(maps_store, monkeypatch):
    from qhw import compare, training

    fs = feature_set_id("angle")
    sim = runs.submit(maps_store, feature_set_id=fs, backend_name="statevector", split="all", shots=128, seed=0).run
    device = runs.submit(maps_store, feature_set_id=fs, backend_name="aer_simulator", split="all", shots=128, seed=1).run
    widths = []
    real_fit = training.fit_classifier

    def spy(kind, x_train, y_train, **options):
        if kind == "hybrid":
            matrix = options.get("readout_matrix")
            widths.append(None if matrix is None else matrix.shape)
        return real_fit(kind, x_train, y_train, **options)

    monkeypatch.setattr(training, "fit_classifier", spy)
    result = compare.compare(maps_store, simulator_run_id=sim.id, hardware_run_id=device.id, epochs=1, readout="observables")
    assert widths and set(widths) == {(2**3, 3)}  # the simulator's and the device's hybrids: 8 probabilities -> 3 observables
    assert any("--readout observables" in note for note in result.notes)
    widths.clear()
    plain = compare.compare(maps_store, simulator_run_id=sim.id, hardware_run_id=device.id, epochs=1)
    assert widths and set(widths) == {None}
    assert not any("--readout" in note for note in plain.notes)


# --- the command line -----------------------------------------------------------------------------


def test_features_list_and_runs_show_name_the_map(maps_store, maps_home):
    run = runs.submit(maps_store, feature_set_id=feature_set_id("file"), backend_name="statevector", split="test", limit=2, shots=64).run
    db = ["--db", f"sqlite:///{maps_home.parent}/maps.db"]
    listed = json.loads(CliRunner().invoke(main, [*db, "features", "list", "--json"]).stdout)
    by_id = {row["feature_set"]: row for row in listed}
    assert [(by_id[i]["feature_map"], by_id[i]["qubits"], by_id[i]["parameters"], by_id[i]["circuits_per_sample"]) for i in (1, 2, 3, 4)] == [
        ("zz", 4, 4, 2), ("angle", 3, 3, 1), ("reupload", 4, 4, 1), ("file:user_map.qasm", 6, 3, 2)
    ]
    assert by_id[2]["angle_range"] == [0.0, round(math.pi, 6)]
    shown = json.loads(CliRunner().invoke(main, [*db, "runs", "show", str(run.id), "--json"]).stdout)
    assert shown["feature_map"] == {"name": "file:user_map.qasm", "qubits": 6, "parameters": 3, "circuits_per_sample": 2}
    text = CliRunner().invoke(main, [*db, "runs", "show", str(run.id)]).stdout
    assert "file:user_map.qasm: 6 qubits, 3 parameters, 2 circuits a sample" in text


def test_train_readout_on_the_command_line(maps_store, maps_home):
    run = runs.submit(maps_store, feature_set_id=feature_set_id("angle"), backend_name="statevector", split="all", shots=64).run
    db = ["--db", f"sqlite:///{maps_home.parent}/maps.db"]
    models_before = len(list((maps_home / "models").glob("*"))) if (maps_home / "models").exists() else 0
    refused = CliRunner().invoke(main, [*db, "train", "--classical", "--readout", "observables"])
    assert refused.exit_code == 2 and "--readout is the hybrid's" in refused.stderr
    assert (len(list((maps_home / "models").glob("*"))) if (maps_home / "models").exists() else 0) == models_before
    trained = CliRunner().invoke(main, [*db, "train", "--run", str(run.id), "--epochs", "1", "--readout", "observables", "--json"])
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["readout"] == "observables"
    default = json.loads(CliRunner().invoke(main, [*db, "train", "--run", str(run.id), "--epochs", "1", "--json"]).stdout)
    assert default["readout"] == "probabilities"


def test_features_build_takes_a_map_qubits_reps_and_range(home, tmp_path):
    result = CliRunner().invoke(main, [
        "features", "build", "--limit-train", "40", "--limit-test", "10", "--epochs", "1",
        "--feature-map", "reupload", "--qubits", "3", "--reps", "3", "--angle-range", "-pi/4:pi/4", "--components", "9", "--json",
    ])
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout)
    assert (built["feature_map"], built["qubits"], built["parameters"], built["circuits_per_sample"], built["components"]) == ("reupload", 3, 3, 3, 9)
    assert built["angle_range"] == [round(-math.pi / 4, 6), round(math.pi / 4, 6)]
    store = Store(f"sqlite:///{home}/qhw.db")
    try:
        record = store.catalogue.feature_set(built["feature_set"])
        assert record.reps == 3
        # Three layers of Ry, Rz on each of 3 qubits and CZ on 2 pairs, then the measurements.
        names = [instruction.operation.name for instruction in feature_maps.template_of(record).data]
        assert names.count("ry") == names.count("rz") == 9 and names.count("cz") == 6 and names.count("measure") == 3
        from qhw.store.arrays import load_arrays

        angles = load_arrays(store.artifacts, record).angles_train
        assert np.isclose(angles.min(), -math.pi / 4) and np.isclose(angles.max(), math.pi / 4)
    finally:
        store.close()


def test_a_qpy_file_is_read_with_qiskit_s_parameter_order(tmp_path):
    from qiskit import QuantumCircuit, qpy
    from qiskit.circuit import Parameter, ParameterVector

    x = ParameterVector("x", 2)
    alpha = Parameter("alpha")
    circuit = QuantumCircuit(3)
    circuit.ry(x[1], 0)
    circuit.rx(alpha, 1)
    circuit.ry(x[0], 2)
    circuit.cx(0, 1)
    path = tmp_path / "mine.qpy"
    with path.open("wb") as handle:
        qpy.dump(circuit, handle)
    chosen = feature_maps.resolve(str(path))
    assert (chosen.name, chosen.num_qubits, chosen.num_parameters) == ("file:mine.qpy", 3, 3)
    # Qiskit orders alpha, x[0], x[1]: theta[0] is alpha, theta[1] x[0], theta[2] x[1].
    gates = {
        inst.operation.name + str(chosen.template.find_bit(inst.qubits[0]).index): inst.operation.params
        for inst in chosen.template.data if inst.operation.params
    }
    assert str(gates["ry0"][0]) == "theta[2]" and str(gates["rx1"][0]) == "theta[0]" and str(gates["ry2"][0]) == "theta[1]"
    assert [inst.operation.name for inst in chosen.template.data][-3:] == ["measure"] * 3


def _ring(template, theta, width: int, reps: int | None) -> None:
    """A test map: Rx on each qubit, then CZ around a ring (its last pair is no neighbour)."""
    for i in range(width):
        template.rx(theta[i], i)
    for i in range(width):
        template.cz(i, (i + 1) % width)


@pytest.fixture
def ring_map():
    """A new built-in map, added as a feature map is added: one registry entry."""
    entry = feature_maps.register(feature_maps.BuiltIn("ring", _ring, (0.0, math.pi), chain=False, help="Rx and a CZ ring (a test map)"))
    yield entry
    del feature_maps.REGISTRY["ring"]


def test_a_new_built_in_map_is_one_registry_entry(ring_map, home):
    shown = " ".join(CliRunner().invoke(main, ["features", "build", "--help"]).stdout.split())  # as wrapped, unwrapped
    assert "ring: Rx and a CZ ring (a test map)" in shown
    result = CliRunner().invoke(main, [
        "features", "build", "--limit-train", "40", "--limit-test", "10", "--epochs", "1", "--feature-map", "ring", "--qubits", "3", "--json",
    ])
    assert result.exit_code == 0, result.output
    built = json.loads(result.stdout)
    assert (built["feature_map"], built["qubits"], built["parameters"], built["angle_range"]) == ("ring", 3, 3, [0.0, round(math.pi, 6)])
    store = Store(f"sqlite:///{home}/qhw.db")
    try:
        names = [instruction.operation.name for instruction in feature_maps.template_of(store.catalogue.feature_set(built["feature_set"])).data]
    finally:
        store.close()
    assert names == ["rx"] * 3 + ["cz"] * 3 + ["measure"] * 3
    with pytest.raises(ConfigError, match="^reps applies to the zz and reupload feature maps, not ring"):
        feature_maps.resolve("ring", reps=2)
    with pytest.raises(ConfigError, match="already registered"):
        feature_maps.register(ring_map)


def test_each_built_in_declares_the_chain_shape_its_circuit_has():
    for name, entry in feature_maps.REGISTRY.items():
        for width in (2, 5, 7):
            assert feature_maps.is_chain(feature_maps.resolve(name, qubits=width).template) is entry.chain, (name, width)
    assert feature_maps.resolve("paper").template.name == "qhw_feature_map"  # the paper's map, the same circuit as before maps had a choice


def test_the_paper_map_measures_angle_encoding_with_its_outcomes_relabelled():
    """What docs/explanation/science.md rests on: on the ranges each map scales
    a component to, the paper's distribution is angle encoding's with every bit
    flipped and then relabelled by the CNOT cascade (x -> x0, x0^x1, ...), so
    its four CNOTs give the classifier nothing angle encoding does not."""
    from qiskit.quantum_info import Statevector

    paper, angle = feature_maps.resolve("paper"), feature_maps.resolve("angle")

    def relabelled(x: int) -> int:
        bits = [(x >> i) & 1 for i in range(5)]
        for i in range(4):
            bits[i + 1] ^= bits[i]
        return sum(bit << i for i, bit in enumerate(bits))

    order = [relabelled(x ^ 0b11111) for x in range(32)]

    def probabilities(chosen, scaled):
        low, high = chosen.angle_range
        circuit = chosen.template.remove_final_measurements(inplace=False)
        return Statevector(circuit.assign_parameters(low + scaled * (high - low))).probabilities()

    for scaled in np.random.default_rng(0).random((10, 5)):  # components min-max scaled to [0, 1]
        expected = np.zeros(32)
        expected[order] = probabilities(angle, scaled)
        np.testing.assert_allclose(probabilities(paper, scaled), expected, atol=1e-12)
        assert not np.allclose(probabilities(paper, scaled), probabilities(angle, scaled))  # a relabelling, not the same vector
