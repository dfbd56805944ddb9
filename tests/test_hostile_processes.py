"""Hostile input that used to hang, abort or crash qhw, tried on the real `qhw` process.

Each case runs `qhw` as a process of its own (a hang or a Rust abort would take
a test process with it) and asserts: the exit code (2 for a malformed option,
1 otherwise), exactly one line on stderr, no traceback, and the database and
home exactly as they were. A case that used to hang (or to abort after 90 s
and more) runs under a timeout of HANG_TIMEOUT seconds: that catches the hang,
it measures no speed (the refusals take about a second; benchmarks time things).
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import qhw_env, run_qhw, snapshot, start_qhw

#: Long enough for a loaded CI machine to start Python and Qiskit; far shorter
#: than the hangs (for ever) and aborts (90 s and more) these cases met.
HANG_TIMEOUT = 60

HEADER = 'OPENQASM 3.0;\ninclude "stdgates.inc";\ninput float a;\n'
VALID = HEADER + "qubit[2] q;\nry(a) q[0];\ncx q[0], q[1];\n"


def nested_gates(depth: int) -> str:
    """Each gate calls the one below twice: 2**depth ry gates once expanded."""
    lines = [HEADER, "gate g0(t) q { ry(t) q; }"]
    lines += [f"gate g{i}(t) q {{ g{i - 1}(t) q; g{i - 1}(t) q; }}" for i in range(1, depth + 1)]
    return "\n".join(lines) + f"\nqubit[2] q;\ng{depth}(a) q[0];\ncx q[0], q[1];\n"


def truncated_qpy() -> bytes:
    import io

    from qiskit import QuantumCircuit, qpy
    from qiskit.circuit import Parameter

    circuit = QuantumCircuit(2)
    circuit.ry(Parameter("a"), 0)
    circuit.cx(0, 1)
    buffer = io.BytesIO()
    qpy.dump(circuit, buffer)
    return buffer.getvalue()[:-10]


def map_file(content: Callable[[], str | bytes] | str, name: str = "map.qasm") -> Callable[[Path], str]:
    def setup(folder: Path) -> str:
        data = content() if callable(content) else content
        path = folder / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    return setup


def fifo(folder: Path) -> str:
    path = folder / "map.qasm"
    os.mkfifo(path)
    return str(path)


@dataclass(frozen=True)
class Case:
    args: str  # {map}: what the setup returned
    message: str
    setup: Callable[[Path], str] | None = None
    exit_code: int = 1


BUILD = "features build --limit-train 60 --limit-test 20 --epochs 1 --feature-map {map}"
CASES = {
    # --- feature-map files, read safely -------------------------------------------------------
    "map a FIFO": Case(BUILD, "map.qasm is not a regular file (a FIFO, a device or a socket)", fifo),
    "map /dev/zero": Case(BUILD, "--feature-map: /dev/zero is not a regular file", lambda folder: "/dev/zero"),
    "map followed by 50 MB of comments": Case(
        BUILD, "MiB; qhw reads such files up to 1.0 MiB", map_file(lambda: VALID + "// a comment, over and over\n" * 1_900_000)
    ),
    "map of 50 MB of gates": Case(BUILD, "MiB; qhw reads such files up to 1.0 MiB", map_file(lambda: VALID + "ry(a) q[1];\n" * 4_400_000)),
    "map of 5,000 gates under the size bound": Case(
        BUILD, "map.qasm: 5,006 statements; a feature map has at most 4,096 gates", map_file(lambda: VALID + "ry(a) q[1];\n" * 5_000)
    ),
    "map of gates nested 22 deep": Case(
        BUILD, "map.qasm: its gates expand to more than 4,096; a feature map has at most 4,096 gates", map_file(lambda: nested_gates(22))
    ),
    "map with a gate raised to a huge power": Case(
        BUILD, "its gates expand to more than 4,096", map_file(HEADER + "qubit[2] q;\npow(100000000) @ ry(a) q[0];\n")
    ),
    "map of 100 million qubits": Case(
        BUILD, "map.qasm: 100,000,000 qubits; a feature map has 2 to 12", map_file(HEADER + "qubit[100000000] q;\nry(a) q[0];\n")
    ),
    "map on physical qubit 100 million": Case(
        BUILD, "map.qasm: 100,000,001 qubits; a feature map has 2 to 12", map_file(HEADER + "ry(a) $100000000;\n")
    ),
    "map with 100 million bits": Case(
        BUILD, "map.qasm: 100,000,000 classical bits", map_file(HEADER + "qubit[2] q;\nbit[100000000] c;\nry(a) q[0];\n")
    ),
    "map a truncated QPY": Case(
        BUILD, "map.qpy: not a QPY file qhw can read (QpyError: binary parsing error: failed to fill whole buffer)",
        map_file(truncated_qpy, "map.qpy"),
    ),
    # --- options with bounds ----------------------------------------------------------------------
    "reps of ten million": Case(
        "features build --feature-map reupload --reps 10000000", "'--reps': 10000000 is not in the range 1<=x<=16", exit_code=2
    ),
    "angle range over zero": Case("features build --angle-range pi/0:1", "'pi/0' in 'pi/0:1' divides by zero", exit_code=2),
    "pack with an underscore": Case(
        "submit --backend statevector --split test --limit 10 --pack 1_0",
        "'--pack': must be auto or a whole number of copies from 1 to 1024, got 1_0", exit_code=2,
    ),
    "pack in Arabic-Indic digits": Case(
        "submit --backend statevector --split test --limit 10 --pack \u0663",
        "'--pack': must be auto or a whole number of copies from 1 to 1024, got \u0663", exit_code=2,
    ),
    # --- the observables readout of a map with more parameters than Z strings ---------------------
    "observables of 5 parameters on 2 qubits, train": Case(
        "train --run 2 --readout observables --epochs 1",
        "--readout observables reads one Pauli-Z string a parameter, but this feature map has 5 parameters and its 2 qubits only 3",
    ),
    "observables of 5 parameters on 2 qubits, compare": Case(
        "compare --sim 2 --hw 3 --readout observables --epochs 1", "its 2 qubits only 3 Z strings; use --readout probabilities"
    ),
}


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory, built_home) -> Path:
    """The small feature set (1) and a 2-qubit map of 5 parameters over its
    arrays (feature set 2); statevector runs: 1 (set 1, 10 test samples), 2
    and 3 (set 2), 4 (set 1, every sample); model 1, a hybrid trained on run 4."""
    import shutil

    from qhw import feature_maps, runs
    from qhw.store import Store

    home = tmp_path_factory.mktemp("hostile-processes") / "home"
    shutil.copytree(built_home, home)
    narrow = home.parent / "narrow.qasm"
    narrow.write_text(
        'OPENQASM 3.0;\ninclude "stdgates.inc";\ninput float a; input float b; input float c; input float d; input float e;\n'
        "qubit[2] q;\nry(a) q[0]; ry(b) q[1]; cx q[0], q[1]; rz(c) q[1]; ry(d) q[0]; cx q[1], q[0]; ry(e) q[1];\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QHW_HOME", str(home))
        store = Store(f"sqlite:///{home}/qhw.db")
        try:
            runs.submit(store, backend_name="statevector", split="test", limit=10, shots=16)
            first = store.catalogue.feature_set(1)
            fields = {name: getattr(first, name) for name in (
                "dataset", "dataset_fingerprint", "seed", "components", "latent_dim", "epochs", "n_train", "n_test", "reconstruction_mse",
                "artifacts")}
            store.catalogue.add_feature_set(**fields, feature_map=feature_maps.resolve(str(narrow)))
            for _ in range(2):
                runs.submit(store, backend_name="statevector", feature_set_id=2, split="all", limit=20, shots=64)
            # Run 4 of feature set 1, and model 1, a hybrid trained on it: what adaptive runs are decided by.
            from qhw import training

            runs.submit(store, backend_name="statevector", feature_set_id=1, split="all", shots=64)
            training.train_hybrid(store, run_id=4, epochs=1)
        finally:
            store.close()
    return home


@pytest.fixture
def home_copy(hostile_home, tmp_path) -> Path:
    import shutil

    path = tmp_path / "home"
    shutil.copytree(hostile_home, path)
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_on_the_real_qhw_is_one_line_and_changes_nothing(home_copy, tmp_path, name):
    case = CASES[name]
    where = case.setup(tmp_path) if case.setup else ""
    before = snapshot(home_copy)
    result = run_qhw(qhw_env(home_copy), *case.args.format(map=where).split(), timeout=HANG_TIMEOUT)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == case.exit_code, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr[-2000:]
    assert case.message in lines[0], lines[0]
    assert "Traceback" not in result.stderr and "\x1b" not in lines[0] and "\\n" not in lines[0] and "Backtrace" not in lines[0]
    assert snapshot(home_copy) == before


def test_more_copies_than_circuits_runs_one_copy_a_circuit_and_says_so(home_copy):
    """--pack 1024 on 5 samples simulated 1,019 empty copies for minutes: now
    5 copies, one execution, and a note; with auto on a device, likewise."""
    result = run_qhw(qhw_env(home_copy), "submit", "--backend", "statevector", "--features", "1", "--split", "test", "--limit", "5",
                     "--pack", "1024", "--json", timeout=HANG_TIMEOUT)
    assert result.returncode == 0, result.stderr
    import json

    document = json.loads(result.stdout)
    assert (document["samples"], document["copies"], document["executions"]) == (5, 5, 1)
    assert "--pack 1024: the run has 5 circuit(s) to run, so 5 copies an execution at most" in result.stderr


def test_a_dense_device_document_is_packed_without_hanging(home_copy, tmp_path):
    """A 32-qubit device with every pair coupled but one (an ion trap with a
    broken coupler): the chain search was factorial there and hung."""
    from device_documents import garnet_like

    document = tmp_path / "dense.json"
    edges = [pair for pair in itertools.combinations(range(1, 33), 2) if pair != (3, 17)]
    document.write_text(garnet_like(32, edges=edges).json())
    result = run_qhw(
        qhw_env(home_copy), "submit", "--backend", f"braket_emulator:{document}", "--features", "1", "--split", "test", "--limit", "4",
        "--shots", "10", "--pack", "auto", "--json", timeout=HANG_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    import json

    assert json.loads(result.stdout)["copies"] == 4  # the 4 circuits, one copy each, on a device with room for 6
    assert "--pack auto: the run has 4 circuits to run, so 4 copies an execution" in result.stderr


def test_collect_names_an_adaptive_run_whose_model_is_gone_once_and_finishes_the_others(home_copy, monkeypatch):
    """Every `collect` used to exit 1 at such a run, and `collect --wait` stopped there."""
    import json

    from qhw import runs
    from qhw.store import Store
    from qhw.worker import RunWorker

    monkeypatch.setenv("QHW_HOME", str(home_copy))
    store = Store(f"sqlite:///{home_copy}/qhw.db")
    try:
        # Run 5: adaptive, its first round collected and the next not started (as a provider's rounds wait for collect).
        with monkeypatch.context() as patch:
            patch.setattr(runs, "drive_rounds", lambda store, worker, tally, progress, **_: tally)
            adaptive = runs.submit(store, backend_name="statevector", feature_set_id=1, split="test", limit=20, shots=256,
                                   adaptive=True, model_id=1).run
        # Run 6: cut off before its job ran.
        with monkeypatch.context() as patch:
            patch.setattr(RunWorker, "_run_here", lambda self, job: (_ for _ in ()).throw(KeyboardInterrupt()))
            with pytest.raises(KeyboardInterrupt):
                runs.submit(store, backend_name="aer_simulator", feature_set_id=1, split="test", limit=20, shots=64)
        weights = store.artifacts.local_file(store.catalogue.model(1).weights, "model 1's weights")
    finally:
        store.close()
    weights.unlink()
    result = run_qhw(qhw_env(home_copy), "collect", "--wait", "--interval", "0.1", "--timeout", "120", "--json", timeout=HANG_TIMEOUT)
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("qhw: ")]
    assert len(said) == 1 and f"run {adaptive.id} cannot start its next round here" in said[0] and "model 1" in said[0], result.stderr
    assert json.loads(result.stdout)["pending_jobs"] == 0
    store = Store(f"sqlite:///{home_copy}/qhw.db")
    try:
        assert store.results.count_samples(6) == 20  # the other run was collected
        assert not store.ledger.run(adaptive.id).rounds_done  # and the broken one waits, its round 0 kept
        assert store.results.count_samples(adaptive.id) == 20
    finally:
        store.close()


def _process_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, start time) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended while listed
        table[int(entry.name)] = (int(fields[1]), fields[0], fields[19])
    return table


def _tree(root: int) -> dict[int, str]:
    """The processes below ``root`` (pid -> start time, which tells a reused pid apart)."""
    table = _process_table()
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _, started) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = started
                frontier.append(pid)
    return found


def _alive(processes: dict[int, str]) -> list[int]:
    table = _process_table()
    return [pid for pid, started in processes.items() if pid in table and table[pid][2] == started and table[pid][1] != "Z"]


@pytest.mark.slow
@pytest.mark.parametrize("engine", [(), ("--engine", "aer", "--reuse", "4")], ids=["density", "aer, reused"])
def test_a_killed_qhw_leaves_no_process_of_its_tree_running(home_copy, engine):
    """SIGKILL of a `qhw submit` with local workers left its forkserver, its
    resource tracker and its workers (about 370 MB each) alive for ever; then,
    workers busy in Aer (which holds the interpreter for a whole job, so no
    thread of theirs ran) lived until their jobs ended, minutes later."""
    process = start_qhw(qhw_env(home_copy), "submit", "--backend", "fake_manila", "--features", "1", "--split", "all",
                        "--shots", "20000", "--workers", "2", *engine)
    try:
        deadline = time.monotonic() + 180
        tree: dict[int, str] = {}
        # The resource tracker and the forkserver, then the two workers forked from the forkserver.
        while len(tree) < 4 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            tree = _tree(process.pid)
        assert process.poll() is None and len(tree) >= 4, f"the workers never started: {tree}, {process.poll()}"
        if engine:
            time.sleep(3)  # the workers deep in their Aer jobs
            tree = _tree(process.pid)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
        # Not communicate(): survivors would hold the pipes open, and it would wait for them for ever.
        process.stdout.close()
        process.stderr.close()
    deadline = time.monotonic() + 30
    while _alive(tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(tree), f"still running after the kill: {_alive(tree)}"


def _isolated_qubit_document(folder: Path) -> Path:
    """A 6-qubit line whose qubit 6 lost its coupler: qiskit-braket-provider warns of it."""
    from device_documents import garnet_like

    path = folder / "device.json"
    path.write_text(garnet_like(6, edges=[(1, 2), (2, 3), (3, 4), (4, 5)]).json())
    return path


@pytest.mark.parametrize("debug", [False, True])
def test_other_libraries_warnings_stay_off_the_terminal_unless_debugging(home_copy, tmp_path, debug):
    document = _isolated_qubit_document(tmp_path)
    env = qhw_env(home_copy, **({"QHW_DEBUG": "1"} if debug else {}))
    result = run_qhw(env, "submit", "--backend", f"braket_emulator:{document}", "--features", "1", "--split", "test", "--limit", "2",
                     "--shots", "10", "--json", timeout=HANG_TIMEOUT)
    assert result.returncode == 0, result.stderr
    shown = "Qubit 6 found in device properties but not in topology" in result.stderr
    assert shown == debug, result.stderr


@pytest.mark.parametrize("debug", [False, True])
def test_the_ibm_client_s_log_records_stay_off_the_terminal_unless_debugging(home_copy, tmp_path, debug):
    """qiskit-ibm-runtime logs "Using instance: ..., plan: open" at WARNING on every command of an account without an instance set."""
    from fake_ibm import FakeIBMCloud

    cloud = FakeIBMCloud(tmp_path / "ibm.cloud")
    env = qhw_env(home_copy, ibm=cloud.path, **({"QHW_DEBUG": "1"} if debug else {}))
    env.pop("QISKIT_IBM_INSTANCE")
    result = run_qhw(env, "submit", "--backend", "ibm_fez", "--features", "1", "--split", "test", "--limit", "2", "--shots", "10",
                     "--yes", "--json", timeout=HANG_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert ("Using instance: qhw-tests, plan: open" in result.stderr) == debug, result.stderr
