"""Hostile input and hostile conditions, through the real command line.

Every case asserts: a non-zero exit, exactly one readable line on stderr
("Error: ..." naming what is wrong), no traceback, and the database and the
home folder exactly as they were. The home holds a feature set, a run of test
samples only (1), a run of both splits (2), a run whose submission was
cut off before any job ran (3), and a run of 10 test samples on an emulated
Braket device, which keeps the device's properties document (4).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from qhw.cli import main

from conftest import qhw_env, run_qhw, snapshot
from device_documents import write_garnet_like

# --- the home every case starts from -----------------------------------------------------------


@pytest.fixture(scope="module")
def base_home(tmp_path_factory) -> Path:
    from qhw import runs
    from qhw.features import build_features
    from qhw.store import Store
    from qhw.worker import RunWorker

    path = tmp_path_factory.mktemp("hostile") / "home"
    path.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QHW_HOME", str(path))
        patch.delenv("QHW_DB_URL", raising=False)
        store = Store(f"sqlite:///{path}/qhw.db")
        build_features(store, limit_train=60, limit_test=20, epochs=1)
        runs.submit(store, backend_name="aer_simulator", split="test", shots=16)
        runs.submit(store, backend_name="aer_simulator", split="all", shots=16)

        def cut_off(self, job):
            raise KeyboardInterrupt

        patch.setattr(RunWorker, "_run_here", cut_off)
        with pytest.raises(KeyboardInterrupt):
            runs.submit(store, backend_name="aer_simulator", split="all", shots=16)
        patch.undo()
        patch.setenv("QHW_HOME", str(path))
        patch.delenv("QHW_DB_URL", raising=False)
        document = write_garnet_like(path.parent / "garnet.json")
        runs.submit(store, backend_name=f"braket_emulator:{document}", split="test", limit=10, shots=16)
        # Model 1 (hybrid, on run 2) and model 2 (classical): what adaptive runs are decided by, or not.
        from qhw import training

        training.train_hybrid(store, run_id=2, epochs=1)
        training.train_classical(store, epochs=1)
        store.close()
    return path


@pytest.fixture
def home(base_home, tmp_path, monkeypatch) -> Path:
    """A private copy of the base home (its database names its files relative to it)."""
    path = tmp_path / "home"
    shutil.copytree(base_home, path)
    monkeypatch.setenv("QHW_HOME", str(path))
    for name in ("QHW_DB_URL", "QHW_PRICES"):
        monkeypatch.delenv(name, raising=False)
    return path


# --- conditions a case can set up ----------------------------------------------------------------


def prices(text: str) -> Callable[[Path], dict]:
    def setup(home: Path) -> dict:
        (home / "prices.toml").write_text(text)
        return {}

    return setup


def dataset_npz(**changes) -> Callable[[Path], dict]:
    """An .npz dataset (valid unless ``changes`` say otherwise) at $DATA."""

    def setup(home: Path) -> dict:
        rng = np.random.default_rng(0)
        arrays = {
            "x_train": rng.integers(0, 256, (40, 28, 28)).astype(np.uint8),
            "y_train": np.arange(40) % 10,
            "x_test": rng.integers(0, 256, (10, 28, 28)).astype(np.uint8),
            "y_test": np.arange(10) % 10,
        }
        for key, change in changes.items():
            arrays[key] = change(arrays[key]) if callable(change) else change
        np.savez(home.parent / "data.npz", **{k: v for k, v in arrays.items() if v is not None})
        return {}

    return setup


MAP_HEADER = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'


def map_file(content: str | bytes | Callable[[], bytes], name: str = "map.qasm") -> Callable[[Path], dict]:
    """A feature-map file at {map} (or {qpy}) beside the home."""

    def setup(home: Path) -> dict:
        data = content() if callable(content) else content
        target = home.parent / name
        target.write_bytes(data if isinstance(data, bytes) else data.encode())
        return {}

    return setup


def qpy_of(build: Callable[[], object], truncate: int | None = None) -> Callable[[], bytes]:
    def dump() -> bytes:
        import io

        from qiskit import qpy

        buffer = io.BytesIO()
        qpy.dump(build(), buffer)
        return buffer.getvalue()[:truncate]

    return dump


def opaque_gate_circuit():
    from qiskit import QuantumCircuit
    from qiskit.circuit import Gate, Parameter

    circuit = QuantumCircuit(2)
    circuit.ry(Parameter("a"), 0)
    circuit.append(Gate("mystery", 1, []), [1])
    return circuit


def only_cz(document: dict) -> None:
    """A device whose only gate is CZ: no single-qubit rotation expresses the map's gates."""
    document["paradigm"]["nativeGateSet"] = ["cz"]
    for action in document["action"].values():
        action["supportedOperations"] = ["cz"]


def wide_feature_set(home: Path) -> dict:
    """Feature set 2: feature set 1's arrays (5 components) under a 6-qubit map of 5 parameters."""
    from qhw import feature_maps
    from qhw.store import Store

    path = home.parent / "wide.qasm"
    path.write_text(MAP_HEADER + "input float a; input float b; input float c; input float d; input float e;\nqubit[6] q;\n"
                    "ry(a) q[0]; ry(b) q[1]; ry(c) q[2]; ry(d) q[3]; ry(e) q[4]; cx q[4], q[5];\n")
    store = Store(f"sqlite:///{home}/qhw.db")
    try:
        first = store.catalogue.feature_set(1)
        fields = {name: getattr(first, name) for name in (
            "dataset", "dataset_fingerprint", "seed", "components", "latent_dim", "epochs", "n_train", "n_test", "reconstruction_mse", "artifacts")}
        store.catalogue.add_feature_set(**fields, feature_map=feature_maps.resolve(str(path)))
    finally:
        store.close()
    return {}


def stored_object(home: Path, table: str, column: str, name: str | None = None) -> Path:
    """The artifact store's object a row of id 1 names (``name``: that file of its manifest)."""
    import json
    import sqlite3

    with sqlite3.connect(home / "qhw.db") as connection:
        (reference,) = connection.execute(f"SELECT {column} FROM {table} WHERE id = 1").fetchone()
    digest = reference[len("sha256:"):]
    path = home / "artifacts" / "sha256" / digest[:2] / digest
    if name is not None:
        digest = json.loads(path.read_text())["files"][name]
        path = home / "artifacts" / "sha256" / digest[:2] / digest
    return path


def corrupt_object(name: str, data: bytes | None = None) -> Callable[[Path], dict]:
    """Feature set 1's file ``name`` in the store: one byte changed, or replaced by ``data``."""

    def setup(home: Path) -> dict:
        path = stored_object(home, "feature_sets", "artifact_dir", name)
        if data is None:
            content = bytearray(path.read_bytes())
            content[len(content) // 2] ^= 0xFF
            path.write_bytes(bytes(content))
        else:
            path.write_bytes(data)
        return {}

    return setup


#: A folder no process may create files in, root included, on any Linux (sysfs).
READ_ONLY_FOLDER = Path("/sys/kernel")


def immutable(relative: str) -> Callable[[Path], dict]:
    """Make a folder unwritable, even for root: chattr +i, or chmod where the
    filesystem has no immutable flag, or, where neither stops root's writes,
    the folder replaced by a link to a folder of sysfs. Undone after the case."""

    def setup(home: Path) -> dict:
        folder = home / relative
        folder.mkdir(parents=True, exist_ok=True)
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            folder.chmod(0o555)

        def undo() -> None:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
            if folder.is_symlink():
                folder.unlink()
                folder.mkdir()
            folder.chmod(0o755)

        if not _writable(folder):
            return {"_undo": undo}
        folder.chmod(0o755)
        shutil.rmtree(folder)
        folder.symlink_to(READ_ONLY_FOLDER, target_is_directory=True)
        assert not _writable(folder), f"{READ_ONLY_FOLDER} takes writes here: the case cannot be set up"
        return {"_undo": undo}

    return setup


def _writable(folder: Path) -> bool:
    try:
        (folder / ".probe").touch()
    except OSError:
        return False
    (folder / ".probe").unlink()
    return True


def database(kind: str) -> Callable[[Path], dict]:
    def setup(home: Path) -> dict:
        path = home.parent / "other.db"
        if kind == "text":
            path.write_text("just some notes, not a database\n")
        elif kind == "foreign":
            with sqlite3.connect(path) as connection:
                connection.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
                connection.execute("INSERT INTO customers (name) VALUES ('Ada')")
        elif kind == "newer":
            shutil.copy(home / "qhw.db", path)
            with sqlite3.connect(path) as connection:
                connection.execute("UPDATE alembic_version SET version_num = '0999'")
        # Another program's file is left as it was, byte for byte (its journal mode too).
        return {"--db": f"sqlite:///{path}", **({"_untouched": path} if kind in ("text", "foreign") else {})}

    return setup


def home_is(kind: str) -> Callable[[Path], dict]:
    def setup(home: Path) -> dict:
        if kind == "file":
            target = home.parent / "a-file"
            target.write_text("not a folder")
        else:  # a name over 255 bytes
            target = home.parent / ("h" * 300)
        return {"env": {"QHW_HOME": str(target)}}

    return setup


def device_document(change: Callable[[dict], object] | None = None, *, kind: str = "file", qubits: int = 6) -> Callable[[Path], dict]:
    """A Braket device properties document at $DEVICE (IQM-like, qubits 1-6),
    changed by ``change``; or, by ``kind``, a FIFO or a folder of that name."""

    def setup(home: Path) -> dict:
        from device_documents import garnet_like

        path = home.parent / "device.json"
        if kind == "fifo":
            os.mkfifo(path)
            return {}
        if kind == "folder":
            path.mkdir()
            return {}
        data = json.loads(garnet_like(qubits).json())
        if change is not None:
            change(data)
        path.write_text(json.dumps(data))
        return {}

    return setup


def paradigm(**changes) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        for key, value in changes.items():
            if value is None:
                data["paradigm"].pop(key, None)
            else:
                data["paradigm"][key] = value

    return change


def no_gates(data: dict) -> None:
    data["paradigm"]["nativeGateSet"] = []
    for action in data["action"].values():
        if "supportedOperations" in action:
            action["supportedOperations"] = []


def failed_job(run: int) -> Callable[[Path], dict]:
    """Mark the first job of a run failed, as a provider's failure leaves it."""

    def setup(home: Path) -> dict:
        with sqlite3.connect(home / "qhw.db") as connection:
            connection.execute(
                "UPDATE jobs SET state = 'failed', error = 'failed at the provider' "
                "WHERE id = (SELECT min(id) FROM jobs WHERE run_id = ?)", (run,)
            )
        return {}

    return setup


def tampered_engine(run: int) -> Callable[[Path], dict]:
    """A run whose stored engine is none its backend has (and a failed job to retry)."""

    def setup(home: Path) -> dict:
        failed_job(run)(home)
        with sqlite3.connect(home / "qhw.db") as connection:
            connection.execute("UPDATE runs SET engine = 'bogus' WHERE id = ?", (run,))
        return {}

    return setup


def tampered_noise(run: int, text: str) -> Callable[[Path], dict]:
    """A run whose stored --noise SPEC is not one."""

    def setup(home: Path) -> dict:
        with sqlite3.connect(home / "qhw.db") as connection:
            connection.execute("UPDATE runs SET noise = ? WHERE id = ?", (text, run))
        return {}

    return setup


def silent_port(home: Path) -> dict:
    """A TCP port that accepts connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return {"_undo": listener.close, "{port}": str(listener.getsockname()[1])}


def idle_dask_scheduler(home: Path) -> dict:
    """A real Dask scheduler, in a process of its own, without any worker."""
    address_file = home.parent / "scheduler.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(address_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        if address_file.exists() and address_file.stat().st_size:
            break
        time.sleep(0.1)

    def stop() -> None:
        process.kill()
        process.wait()

    return {"_undo": stop, "{port}": json.loads(address_file.read_text())["address"].rsplit(":", 1)[1]}


def full_disk(name: str) -> Callable[[Path], dict]:
    """A file name that leads to /dev/full: every write to it fails with ENOSPC."""

    def setup(home: Path) -> dict:
        (home.parent / name).symlink_to("/dev/full")
        return {}

    return setup


def truncated_database(home: Path) -> dict:
    """The home's database cut to half its size: pages its tables point to are gone.
    (Cutting a fixed 1,000 bytes off its end can land in free pages, which
    SQLite's integrity check rightly passes: how full the last page is
    depends on the schema.)"""
    path = home.parent / "damaged.db"
    data = (home / "qhw.db").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return {"--db": f"sqlite:///{path}"}


@dataclass(frozen=True)
class Case:
    args: str
    message: str
    setup: Callable[[Path], dict] | None = None


EMULATED = "submit --backend braket_emulator:{device} --split test --limit 10 --shots 10"
PRICED = "submit --backend ionq_forte --split test --limit 10 --shots 100 --max-cost 1000 --yes"
CASES = {
    # --- money: every number that reaches the cost guard --------------------------------------
    "max-cost nan": Case("submit --backend ionq_forte --split test --limit 10 --max-cost nan --yes", "'--max-cost': must be a finite number of USD"),
    "max-cost inf": Case("submit --backend ionq_forte --split test --limit 10 --max-cost inf --yes", "'--max-cost': must be a finite number of USD"),
    "max-cost negative": Case("submit --backend ionq_forte --split test --limit 10 --max-cost -1 --yes", "0 or more, got -1"),
    "max-cost not a number": Case("submit --backend ionq_forte --split test --limit 10 --max-cost cheap --yes", "'cheap' is not a number"),
    "retry max-cost nan": Case("retry --run 1 --max-cost nan --yes", "'--max-cost': must be a finite number"),
    "price negative": Case(PRICED, "braket_per_shot_usd.ionq_forte must be a finite number, zero or more, got -0.08", prices("[braket_per_shot_usd]\nionq_forte = -0.08\n")),
    "price nan": Case(PRICED, "braket_per_task_usd must be a finite number, zero or more, got nan", prices("braket_per_task_usd = nan\n")),
    "price infinite": Case(PRICED, "ibm_usd_per_qpu_second must be a finite number", prices("ibm_usd_per_qpu_second = inf\n")),
    "price wrong type": Case(PRICED, "braket_per_task_usd must be a number, got 'cheap'", prices('braket_per_task_usd = "cheap"\n')),
    "price a bool": Case(PRICED, "braket_per_task_usd must be a number, got True", prices("braket_per_task_usd = true\n")),
    "price misspelt device": Case(PRICED, "has no device 'ionq_forta' (did you mean 'ionq_forte'?)", prices("[braket_per_shot_usd]\nionq_forta = 0.01\n")),
    "price misspelt key": Case(PRICED, "unknown price 'braket_per_tsk_usd' (did you mean 'braket_per_task_usd'?)", prices("braket_per_tsk_usd = 0.3\n")),
    "price table not a table": Case(PRICED, "braket_per_shot_usd must be a table of device = price", prices("braket_per_shot_usd = 0.01\n")),
    "price file not toml": Case(PRICED, "not a readable TOML price file", prices("braket_per_task_usd = = 3\n")),
    "QHW_PRICES missing": Case(PRICED, "QHW_PRICES names", lambda home: {"env": {"QHW_PRICES": str(home / "none.toml")}}),
    # --- ranges at the edge ---------------------------------------------------------------------------
    "submit seed negative": Case("submit --backend aer_simulator --seed -1", "'--seed': -1 is not in the range 0<=x<=4294967295"),
    "submit seed too large": Case("submit --backend aer_simulator --seed 4294967296", "is not in the range 0<=x<=4294967295"),
    "features seed negative": Case("features build --seed -1", "'--seed': -1 is not in the range"),
    "train seed too large": Case("train --run 2 --seed 99999999999", "'--seed': 99999999999 is not in the range"),
    "compare seed negative": Case("compare --sim 2 --hw 1 --seed -3", "'--seed': -3 is not in the range"),
    "demo seed too large": Case("demo --seed 4294967296", "'--seed'"),
    "shots zero": Case("submit --backend aer_simulator --shots 0", "'--shots': 0 is not in the range x>=1"),
    "shots negative": Case("submit --backend aer_simulator --shots -5", "'--shots': -5 is not in the range x>=1"),
    "shots not a number": Case("submit --backend aer_simulator --shots abc", "'abc' is not a valid integer"),
    "shots a fraction": Case("submit --backend aer_simulator --shots 1.5", "'1.5' is not a valid integer"),
    "shots above the device": Case("submit --backend fake_manila --shots 100001", "--shots must be between 1 and 100000 on fake_manila"),
    "shots above the simulator": Case("submit --backend aer_simulator --shots 2000000", "--shots must be between 1 and 1000000"),
    "limit zero": Case("submit --backend aer_simulator --limit 0", "'--limit': 0 is not in the range x>=1"),
    "limit beyond the split": Case("submit --backend aer_simulator --limit 61", "--limit 61 exceeds the 60 train images"),
    "split unknown": Case("submit --backend aer_simulator --split validation", "'--split': 'validation' is not one of"),
    "mitigation unknown": Case("submit --backend aer_simulator --mitigate zne", "--mitigate has no item 'zne'"),
    "mitigation twirling on a fake device": Case("submit --backend fake_manila --mitigate readout,twirling", "--mitigate twirling is applied by an IBM device's sampler"),
    "mitigation decoupling on braket": Case("submit --backend braket_sv1 --mitigate dd=XY4 --yes", "--mitigate dd=XY4 is IBM's sampler's"),
    "quality unknown": Case("submit --backend aer_simulator --quality sometimes", "'--quality': 'sometimes' is not one of 'auto', 'off'"),
    "quality floor above one": Case("submit --backend aer_simulator --quality-floor 1.01", "must be between 0 and 1"),
    "quality floor not a number": Case("submit --backend aer_simulator --quality-floor nan", "must be a finite number"),
    "quality reserve beyond ten": Case("submit --backend aer_simulator --quality auto --quality-reserve 10.5", "must be between 0 and 10"),
    "features epochs zero": Case("features build --epochs 0", "'--epochs': 0 is not in the range 1<=x<=100000"),
    "features latent zero": Case("features build --latent-dim 0", "'--latent-dim': 0 is not in the range"),
    "features latent below components": Case("features build --latent-dim 3", "--latent-dim (3) must be at least --components (5)"),
    # --- feature maps: a built-in's options, a user's file ------------------------------------------
    "map unknown": Case("features build --feature-map zzz", "--feature-map must be one of paper, zz, angle, reupload or a .qasm or .qpy file, got 'zzz'"),
    "map file missing": Case("features build --feature-map {map}", "--feature-map: no file"),
    "map qubits 13": Case("features build --feature-map zz --qubits 13", "'--qubits': 13 is not in the range 2<=x<=12"),
    "map qubits 1": Case("features build --feature-map angle --qubits 1", "'--qubits': 1 is not in the range 2<=x<=12"),
    "map reps on paper": Case("features build --reps 3", "--reps applies to the zz and reupload feature maps, not paper"),
    "map angle range reversed": Case("features build --angle-range pi:0", "LOW must be below HIGH"),
    "map angle range word": Case("features build --angle-range 0:tau", "'tau' in '0:tau' is neither a number nor a multiple of pi"),
    "map components not a multiple": Case(
        "features build --feature-map zz --qubits 4 --components 6", "multiple of the 4 parameters of the zz feature map"
    ),
    "map file unsupported gate": Case(
        "features build --feature-map {map}", "map.qasm: line 4, column 25: gate 'ecr' is not defined",
        map_file(MAP_HEADER + "input float a;\nqubit[2] q; ry(a) q[0]; ecr q[0], q[1];\n"),
    ),
    "map qpy opaque gate": Case(
        "features build --feature-map {qpy}", "map.qpy: gate 'mystery' is not in the standard library and has no definition",
        map_file(qpy_of(opaque_gate_circuit), "map.qpy"),
    ),
    "map file reset": Case(
        "features build --feature-map {map}", "map.qasm: a reset (reset); a feature map is gates, then a measurement of every qubit",
        map_file(MAP_HEADER + "input float a;\nqubit[2] q; reset q[0]; ry(a) q[0]; cx q[0], q[1];\n"),
    ),
    "map file no parameters": Case(
        "features build --feature-map {map}", "map.qasm: no parameters; a feature map binds each sample's components to its parameters",
        map_file(MAP_HEADER + "qubit[2] q; h q[0]; cx q[0], q[1];\n"),
    ),
    "map file 13 qubits": Case(
        "features build --feature-map {map}", "map.qasm: 13 qubits; a feature map has 2 to 12",
        map_file(MAP_HEADER + "input float a;\nqubit[13] q; ry(a) q[0];\n"),
    ),
    "map file components not a multiple": Case(
        "features build --feature-map {map} --components 5", "multiple of the 2 parameters of the file:map.qasm feature map",
        map_file(MAP_HEADER + "input float a; input float b;\nqubit[2] q; ry(a) q[0]; ry(b) q[1]; cz q[0], q[1];\n"),
    ),
    "map file mid-circuit measurement": Case(
        "features build --feature-map {map}", "map.qasm: ry on qubit 0 after its measurement; only final measurements are allowed",
        map_file(MAP_HEADER + "input float a;\nqubit[2] q; bit[2] m; m[0] = measure q[0]; ry(a) q[0]; m[1] = measure q[1];\n"),
    ),
    "map file half measured": Case(
        "features build --feature-map {map}", "map.qasm: qubit(s) 1 never measured; measure every qubit, or none",
        map_file(MAP_HEADER + "input float a;\nqubit[2] q; bit[2] m; ry(a) q[0]; cx q[0], q[1]; m[0] = measure q[0];\n"),
    ),
    "map file unused input": Case(
        "features build --feature-map {map}", "map.qasm: input b is declared but no gate uses it",
        map_file(MAP_HEADER + "input float a; input float b;\nqubit[2] q; ry(a) q[0]; cx q[0], q[1];\n"),
    ),
    "map file syntax error": Case(
        "features build --feature-map {map}", "map.qasm: OpenQASM 3 syntax error at line 4, column 24 (near 'q')",
        map_file(MAP_HEADER + "input float a;\nqubit[2] q; ry(a) q[0] q[1];\n"),
    ),
    "map file qubits disagree": Case(
        "features build --feature-map {map} --qubits 3", "--qubits 3: map.qasm has 2 qubits",
        map_file(MAP_HEADER + "input float a;\nqubit[2] q; ry(a) q[0]; cx q[0], q[1];\n"),
    ),
    "map qpy not qpy": Case(
        "features build --feature-map {qpy}", "map.qpy: not a QPY file (it does not start with QPY's header)",
        map_file(b"\x89PNG\r\n\x1a\n not a circuit", "map.qpy"),
    ),
    "map qpy truncated": Case(
        "features build --feature-map {qpy}", "map.qpy: not a QPY file qhw can read",
        map_file(qpy_of(opaque_gate_circuit, truncate=40), "map.qpy"),
    ),
    "map binary not utf8": Case(
        "features build --feature-map {map}", "map.qasm: neither QPY nor OpenQASM 3 text (not UTF-8)",
        map_file(b"\xff\xfe\x00binary", "map.qasm"),
    ),
    "map gates the device cannot run": Case(
        EMULATED, "cannot run the feature map: Unable to translate the operations in the circuit", device_document(only_cz),
    ),
    "map wider than the device": Case(
        "submit --features 2 --backend fake_manila --split test --limit 2",
        "fake_manila has 5 qubits; the feature map of feature set 2 (file:wide.qasm) needs 6", wide_feature_set,
    ),
    "components not a multiple of 5": Case("features build --components 7", "multiple of the 5 parameters of the paper feature map"),
    "components zero": Case("features build --components 0", "'--components': 0 is not in the range"),
    "limit-train zero": Case("features build --limit-train 0", "'--limit-train': 0 is not in the range"),
    "limit-test beyond": Case("features build --limit-test 1001", "exceeds the 1000 test images"),
    "train epochs zero": Case("train --run 2 --epochs 0", "'--epochs': 0 is not in the range"),
    "compare epochs zero": Case("compare --sim 2 --hw 1 --epochs 0", "'--epochs': 0 is not in the range"),
    "collect interval nan": Case("collect --wait --interval nan", "'--interval': must be a finite number of seconds"),
    "collect interval negative": Case("collect --wait --interval -1", "'--interval': must be a finite number of seconds"),
    "collect timeout infinite": Case("collect --wait --timeout inf", "'--timeout': must be a finite number of seconds"),
    "job state unknown": Case("jobs --state exploded", "'--state': 'exploded' is not one of"),
    "run id zero": Case("jobs --run 0", "'--run': 0 is not in the range 1<=x<=2147483647"),
    # --- qhw demo validates everything before it builds anything -------------------------------------
    "demo shots zero": Case("demo --shots 0", "'--shots': 0 is not in the range"),
    "demo epochs zero": Case("demo --epochs 0", "'--epochs': 0 is not in the range"),
    "demo autoencoder epochs zero": Case("demo --autoencoder-epochs 0", "'--autoencoder-epochs': 0 is not in the range"),
    "demo paid hardware": Case("demo --hardware ibm_fez", "qhw demo runs on free backends only and ibm_fez costs money"),
    "demo unknown hardware": Case("demo --hardware nosuch", "unknown backend 'nosuch'"),
    "demo shots above the device": Case("demo --shots 200000", "--shots must be between 1 and 100000 on fake_manila"),
    "demo limit beyond the subset": Case("demo --limit-train 5000", "--limit-train 5000 exceeds the 4,000 images"),
    # --- names that do not exist ------------------------------------------------------------------------
    "unknown backend": Case("submit --backend quantinuum_h2", "unknown backend 'quantinuum_h2'; `qhw backends` lists them"),
    "unknown feature set": Case("submit --backend aer_simulator --features 99", "no feature set with id 99"),
    "unknown run to train": Case("train --run 99", "no run with id 99"),
    "unknown run to export": Case("results --run 99 --out x.npz", "no run with id 99"),
    "unknown run to collect": Case("collect --run 7", "no run with id 7"),
    "unknown run to cancel": Case("cancel --run 99", "no run with id 99"),
    "unknown run to compare": Case("compare --sim 2 --hw 99", "no run with id 99"),
    "compare a run with itself": Case("compare --sim 2 --hw 2", "--sim and --hw both name run 2"),
    "retry without failed jobs": Case("retry --run 2", "run 2 has no failed jobs or executions to retry"),
    "train with both": Case("train --classical --run 2", "--classical trains on a feature set"),
    # --- runs that are not ready -----------------------------------------------------------------------------
    "train on test samples only": Case("train --run 1", "run 1 has no collected train samples"),
    "train on nothing collected": Case("train --run 3", "run 3 has 0 of 80 samples collected and 1 job(s) still unfinished: run `qhw collect --wait` first"),
    "compare without train samples": Case("compare --sim 1 --hw 2", "run 1 has no collected train samples"),
    # --- datasets ---------------------------------------------------------------------------------------------
    "dataset missing": Case("features build --dataset /no/such/mnist", "unknown dataset '/no/such/mnist'"),
    "dataset nan pixels": Case("features build --dataset {data}", "pixel value(s) are NaN or infinite", dataset_npz(x_train=lambda x: np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x.astype(float)))),
    "dataset infinite pixels": Case("features build --dataset {data}", "NaN or infinite", dataset_npz(x_test=lambda x: np.full(x.shape, np.inf))),
    "dataset pixels out of range": Case("features build --dataset {data}", "pixel values must lie in [0, 255] (or [0, 1]), found [0, 300]", dataset_npz(x_train=lambda x: np.where(x > 250, 300, x.astype(np.int32)))),
    "dataset negative pixels": Case("features build --dataset {data}", "found [-1", dataset_npz(x_test=lambda x: x.astype(np.int16) - 1)),
    "dataset text pixels": Case("features build --dataset {data}", "pixel values must be numbers", dataset_npz(x_train=lambda x: x.astype(str))),
    "dataset one class": Case("features build --dataset {data}", "hold 1 class(es) (3); a classifier needs at least two", dataset_npz(y_train=lambda y: np.full_like(y, 3))),
    "dataset labels out of range": Case("features build --dataset {data}", "labels must be integers 0-9", dataset_npz(y_test=lambda y: y + 10)),
    "dataset missing arrays": Case("features build --dataset {data}", "missing arrays y_test", dataset_npz(y_test=None)),
    "dataset not an npz": Case("features build --dataset {data}", "not an .npz archive (it is not a zip file)", lambda home: (home.parent / "data.npz").write_text("nope") and {}),
    "dataset truncated idx": Case("features build --dataset {idx}", "truncated or oversized", lambda home: _idx_folder(home, truncate=True)),
    # --- files qhw wrote, and folders it writes to ------------------------------------------------------------
    # (The store checks each object's digest as it reads it: a changed byte, a cut, another file are all corrupt.)
    "feature arrays corrupted": Case("submit --backend aer_simulator --features 1", "feature set 1's files: arrays.npz: its object sha256:", corrupt_object("arrays.npz")),
    "feature arrays truncated": Case("train --classical", "arrays.npz: its object sha256:", corrupt_object("arrays.npz", b"PK\x03\x04")),
    "feature arrays missing": Case(
        "train --classical", "arrays.npz: its object sha256:",
        lambda home: stored_object(home, "feature_sets", "artifact_dir", "arrays.npz").unlink() or {},
    ),
    "models folder unwritable": Case("train --classical --epochs 1", "the models folder", immutable("models")),
    "features folder unwritable": Case("features build --limit-train 60 --limit-test 20 --epochs 1", "the feature-set folder", immutable("features")),
    "report folder unwritable": Case("compare --sim 2 --hw 1 --epochs 1 --out {home}/../locked", "is not writable", lambda home: immutable("../locked")(home)),
    "export folder unwritable": Case("results --run 2 --out {home}/../locked/run.npz", "is not writable", lambda home: immutable("../locked")(home)),
    "export to a folder": Case("results --run 2 --out {home}", "is a directory"),
    "export not npz": Case("results --run 2 --out x.txt", "--out must name an .npz file"),
    "export folder missing": Case("results --run 2 --out /no/such/folder/x.npz", "--out: folder /no/such/folder does not exist"),
    "home is a file": Case("jobs", "is a file, not a folder: point QHW_HOME at a folder", home_is("file")),
    "home name too long": Case("jobs", "cannot be used: File name too long", home_is("long")),
    # --- databases ---------------------------------------------------------------------------------------------------
    "db not a database": Case("jobs", "file is not a database", database("text")),
    "db current not a database": Case("db current", "file is not a database", database("text")),
    "db upgrade foreign": Case("db upgrade", "it is not a qhw database, and qhw will not write its tables into it", database("foreign")),
    "db foreign": Case("jobs", "not a qhw database", database("foreign")),
    "db upgrade newer": Case("db upgrade", "schema 0999, written by a newer qhw", database("newer")),
    "db newer": Case("jobs", "written by a newer qhw", database("newer")),
    "db url invalid": Case("jobs", "invalid database URL", lambda home: {"--db": "not a url"}),
    # --- names too long, and paid devices without credentials --------------------------------------------
    "export name too long": Case("results --run 2 --out {home}/../" + "r" * 300 + ".npz", "the name is too long for the file system"),
    "dataset name too long": Case("features build --dataset {home}/../" + "d" * 300 + ".npz", "the name is too long for the file system"),
    "ibm without credentials": Case("submit --backend ibm_fez --split test --limit 10 --shots 100 --yes", "no IBM Quantum credentials: save an IBM Quantum account", lambda home: {"env": NO_CREDENTIALS(home)}),
    "braket without credentials": Case("submit --backend iqm_garnet --split test --limit 10 --shots 100 --yes", "no AWS credentials: run `aws configure`", lambda home: {"env": NO_CREDENTIALS(home)}),
    # --- the IBM listing's grace period -----------------------------------------------------------------
    "ibm listing grace not a number": Case("submit --backend ibm_fez --split test --limit 10 --yes", "QHW_IBM_LISTING_GRACE_SECONDS must be a number of seconds, got 'abc'", lambda home: {"env": {"QHW_IBM_LISTING_GRACE_SECONDS": "abc"}}),
    "ibm listing grace negative": Case("submit --backend ibm_fez --split test --limit 10 --yes", "QHW_IBM_LISTING_GRACE_SECONDS must be between 0 and 86400 seconds, got '-5'", lambda home: {"env": {"QHW_IBM_LISTING_GRACE_SECONDS": "-5"}}),
    "ibm listing grace nan": Case("submit --backend ibm_fez --split test --limit 10 --yes", "got 'nan'", lambda home: {"env": {"QHW_IBM_LISTING_GRACE_SECONDS": "nan"}}),
    # --- ids beyond what a database holds (PostgreSQL's INTEGER: 2**31 - 1) ----------------------
    "runs show id 2**63": Case("runs show 9223372036854775808", "'RUN_ID': 9223372036854775808 is not in the range 1<=x<=2147483647"),
    "jobs run id 2**63": Case("jobs --run 9223372036854775808", "'--run': 9223372036854775808 is not in the range 1<=x<=2147483647"),
    "retry run id 2**63": Case("retry --run 9223372036854775808", "'--run': 9223372036854775808 is not in the range"),
    "cancel run id 2**63": Case("cancel --run 9223372036854775808", "'--run': 9223372036854775808 is not in the range"),
    "train run id 2**63": Case("train --run 9223372036854775808", "'--run': 9223372036854775808 is not in the range"),
    "compare hw id 2**63": Case("compare --sim 2 --hw 9223372036854775808", "'--hw': 9223372036854775808 is not in the range"),
    "compare sim id 2**31": Case("compare --sim 2147483648 --hw 1", "'--sim': 2147483648 is not in the range"),
    "collect run id 2**31": Case("collect --run 2147483648", "'--run': 2147483648 is not in the range"),
    "results run id 2**63": Case("results --run 9223372036854775808 --out x.npz", "'--run': 9223372036854775808 is not in the range"),
    "submit features id 2**63": Case("submit --backend aer_simulator --features 9223372036854775808", "'--features': 9223372036854775808 is not in the range"),
    "poll run id 2**63": Case("poll --run 9223372036854775808", "'--run': 9223372036854775808 is not in the range"),
    # --- sizes that no machine holds --------------------------------------------------------------
    "features epochs 2**63": Case("features build --epochs 9223372036854775808", "'--epochs': 9223372036854775808 is not in the range 1<=x<=100000"),
    "features latent beyond the pixels": Case("features build --latent-dim 100000", "'--latent-dim': 100000 is not in the range 1<=x<=784"),
    "train epochs 2**63": Case("train --run 2 --epochs 9223372036854775808", "'--epochs': 9223372036854775808 is not in the range"),
    "collect interval beyond a day": Case("collect --wait --interval 1e300", "'--interval': must be between 0 and 86400 seconds"),
    "workers beyond reason": Case("submit --backend aer_simulator --workers 100000", "'--workers': 100000 is not in the range 1<=x<=1024"),
    # --- settings from the environment, checked before anything is written ----------------------------
    "retry attempts negative": Case(PRICED, "QHW_RETRY_ATTEMPTS must be a whole number, 1 or more (at most 100), got '-1'", lambda home: {"env": {"QHW_RETRY_ATTEMPTS": "-1"}}),
    "retry attempts nan": Case(PRICED, "QHW_RETRY_ATTEMPTS must be a whole number, 1 or more (at most 100), got 'nan'", lambda home: {"env": {"QHW_RETRY_ATTEMPTS": "nan"}}),
    "retry attempts infinite": Case(PRICED, "QHW_RETRY_ATTEMPTS must be a whole number, 1 or more (at most 100), got 'inf'", lambda home: {"env": {"QHW_RETRY_ATTEMPTS": "inf"}}),
    "retry attempts a word": Case("collect", "QHW_RETRY_ATTEMPTS must be a whole number, 1 or more (at most 100), got 'abc'", lambda home: {"env": {"QHW_RETRY_ATTEMPTS": "abc"}}),
    "retry wait nan": Case(PRICED, "QHW_RETRY_INITIAL_WAIT must be a finite number of seconds, 0 or more (at most 3600), got 'nan'", lambda home: {"env": {"QHW_RETRY_INITIAL_WAIT": "nan"}}),
    "retry max wait infinite": Case("retry --run 2", "QHW_RETRY_MAX_WAIT must be a finite number of seconds, 0 or more (at most 3600), got 'inf'", lambda home: {"env": {"QHW_RETRY_MAX_WAIT": "inf"}}),
    "lease a word": Case("collect", "QHW_LEASE_SECONDS must be a number of seconds, got 'abc'", lambda home: {"env": {"QHW_LEASE_SECONDS": "abc"}}),
    "lease negative": Case("submit --backend aer_simulator --split test --limit 10", "QHW_LEASE_SECONDS must be between 10 and 604800 seconds, got '-5'", lambda home: {"env": {"QHW_LEASE_SECONDS": "-5"}}),
    "lease nan": Case("retry --run 2", "QHW_LEASE_SECONDS must be between 10 and 604800 seconds, got 'nan'", lambda home: {"env": {"QHW_LEASE_SECONDS": "nan"}}),
    "dask timeout zero": Case("collect", "QHW_DASK_TIMEOUT must be between 1 and 3600 seconds, got '0'", lambda home: {"env": {"QHW_DASK_TIMEOUT": "0"}}),
    # --- Dask clusters that cannot run a job: refused within a bounded time, nothing written -----------
    "scheduler garbage": Case("submit --backend aer_simulator --split test --limit 10 --scheduler garbage", "--scheduler must be tcp://HOST:PORT, got 'garbage'"),
    "scheduler another scheme": Case("collect --scheduler http://127.0.0.1:8786", "--scheduler must be tcp://HOST:PORT, got 'http://127.0.0.1:8786'"),
    "scheduler port out of range": Case("collect --scheduler tcp://127.0.0.1:99999", "--scheduler must be tcp://HOST:PORT"),
    "scheduler from the environment": Case("collect", "QHW_DASK_SCHEDULER must be tcp://HOST:PORT, got 'garbage'", lambda home: {"env": {"QHW_DASK_SCHEDULER": "garbage"}}),
    "scheduler garbage on retry": Case("retry --run 2 --scheduler inproc://x", "--scheduler must be tcp://HOST:PORT"),
    "scheduler unreachable on collect": Case("collect --scheduler tcp://127.0.0.1:1", "cannot reach the Dask scheduler at tcp://127.0.0.1:1"),
    "scheduler unreachable on retry": Case("retry --run 1 --scheduler tcp://127.0.0.1:1", "cannot reach the Dask scheduler at tcp://127.0.0.1:1", failed_job(1)),
    "scheduler that never answers": Case("submit --backend aer_simulator --split test --limit 10 --scheduler tcp://127.0.0.1:{port}", "did not answer within 2 s", lambda home: {**silent_port(home), "env": {"QHW_DASK_TIMEOUT": "2"}}),
    "scheduler without workers": Case("submit --backend aer_simulator --split test --limit 10 --scheduler tcp://127.0.0.1:{port}", "has no workers (waited 2 s", lambda home: {**idle_dask_scheduler(home), "env": {"QHW_DASK_TIMEOUT": "2"}}),
    "scheduler without workers on retry": Case("retry --run 1 --scheduler tcp://127.0.0.1:{port}", "has no workers", lambda home: {**failed_job(1)(home), **idle_dask_scheduler(home), "env": {"QHW_DASK_TIMEOUT": "2"}}),
    # --- device documents for braket_emulator: ------------------------------------------------------------
    "emulator connectivity names a missing qubit": Case(EMULATED, "connectivity names qubit 9, which is not one of its 6 qubits", device_document(lambda d: d["paradigm"]["connectivity"]["connectivityGraph"].update({"6": ["9"]}))),
    "emulator qubit count disagrees": Case(EMULATED, "qubitCount is 8, but it describes 6 qubits", device_document(paradigm(qubitCount=8))),
    "emulator qubit count zero": Case(EMULATED, "qubitCount is 0", device_document(paradigm(qubitCount=0))),
    "emulator qubit labels not numbers": Case(EMULATED, "qubit 'a' in its connectivity is not a number", device_document(lambda d: d["paradigm"]["connectivity"]["connectivityGraph"].update({"a": ["1"]}))),
    "emulator without connectivity": Case(EMULATED, "not a Braket device properties document", device_document(paradigm(connectivity=None))),
    "emulator connectivity empty": Case(EMULATED, "its connectivity has no pair of coupled qubits", device_document(paradigm(connectivity={"fullyConnected": False, "connectivityGraph": {}}))),
    "emulator empty gate set": Case(EMULATED, "names no native gates", device_document(no_gates)),
    "emulator fully connected with a graph": Case(EMULATED, "says fullyConnected and also gives a connectivityGraph", device_document(lambda d: d["paradigm"]["connectivity"].update({"fullyConnected": True}))),
    "emulator too few qubits": Case(EMULATED, "has 4 qubits; the feature map of feature set 1 (paper) needs 5", device_document(qubits=4)),
    "emulator a FIFO": Case(EMULATED, "is not a regular file", device_document(kind="fifo")),
    "emulator a folder": Case(EMULATED, "is not a regular file", device_document(kind="folder")),
    "emulator missing": Case(EMULATED, "no such file", None),
    # --- leftovers, and words that say what happened -----------------------------------------------------
    "compare on a run that is not ready": Case("compare --sim 1 --hw 2 --epochs 1", "run 1 has no collected train samples"),
    "export to a full disk": Case("results --run 2 --out {home}/../full.npz", "../full.npz: cannot be written: no space left on the device", full_disk("full.npz")),
    "properties to a full disk": Case("runs show 4 --properties-out {home}/../full.json", "../full.json: cannot be written: no space left on the device", full_disk("full.json")),
    "QHW_PRICES a folder": Case(PRICED, "which is a folder, not a price file", lambda home: {"env": {"QHW_PRICES": str(home)}}),
    "QHW_PRICES /dev/null": Case(PRICED, "QHW_PRICES names /dev/null, which is not a regular file", lambda home: {"env": {"QHW_PRICES": "/dev/null"}}),
    "prices.toml a folder": Case(PRICED, "prices.toml is a folder, not a price file", lambda home: (home / "prices.toml").mkdir() or {}),
    "price 400 digits": Case(PRICED, "braket_per_task_usd must be a finite number, zero or more, got 1" + "0" * 20, prices("braket_per_task_usd = 1" + "0" * 399 + "\n")),
    "dataset a text file as npz": Case("features build --dataset {data}", "not an .npz archive (it is not a zip file)", lambda home: (home.parent / "data.npz").write_text("x,y\n1,2\n") and {}),
    "feature arrays a text file": Case("train --classical", "is corrupt", corrupt_object("arrays.npz", b"x,y\n1,2\n")),
    "db current foreign": Case("db current", "not a qhw database", database("foreign")),
    "db upgrade damaged": Case("db upgrade", "is damaged (SQLite", truncated_database),
    "db current damaged": Case("db current", "is damaged", truncated_database),
    # --- packing: copies a device cannot hold, and what is no number of copies -----------------
    "pack 0": Case("submit --backend statevector --split test --limit 10 --pack 0", "'--pack': must be auto or a whole number of copies from 1 to 1024, got 0"),
    "pack -1": Case("submit --backend statevector --split test --limit 10 --pack -1", "'--pack': must be auto or a whole number of copies from 1 to 1024, got -1"),
    "pack a word": Case("submit --backend statevector --split test --limit 10 --pack all", "'--pack': must be auto or a whole number"),
    "pack 2**40": Case("submit --backend statevector --split test --limit 10 --pack 1099511627776", "from 1 to 1024"),
    "pack more than fit": Case("submit --backend fake_manila --split test --limit 10 --pack 2", "--pack 2: only 1 copies of 5 qubits fit on the device"),
    "pack with no chain": Case("submit --backend fake_lima --split test --limit 10 --pack 2", "the device has no 5 usable qubits coupled in a chain"),
    "pack on a device narrower than the template": Case("submit --backend fake_armonk --split test --limit 10 --pack 2", "fake_armonk has 1 qubit(s); a feature map needs at least 2"),
    "pack on a managed simulator": Case("submit --backend braket_sv1 --split test --limit 10 --pack 2 --yes", "--pack 2: braket_sv1 is a managed simulator"),
    # --- adaptive runs: a first round above --shots, and models that cannot decide ---------------
    "adaptive shots below the first round": Case("submit --backend statevector --split test --shots 16 --adaptive", "--adaptive: --shots 16 is below the first round's 32 shots a sample"),
    "model without adaptive": Case("submit --backend statevector --split test --model 1", "--model decides an adaptive run's rounds: give --adaptive too"),
    "adaptive model missing": Case("submit --backend statevector --split test --adaptive --model 99", "no model with id 99"),
    "adaptive model zero": Case("submit --backend statevector --split test --adaptive --model 0", "'--model': 0 is not in the range"),
    "adaptive model classical": Case("submit --backend statevector --split test --adaptive --model 2", "--model 2 is classical; an adaptive run needs a hybrid model"),
    "adaptive model weights gone": Case(
        "submit --backend statevector --split test --adaptive --model 1", "model 1's weights: its object sha256:",
        lambda home: stored_object(home, "models", "weights_path").unlink() or {},
    ),
    # --- numbers read one way: ASCII digits, no underscores (float() and int() take both) ----------------
    "rep-delay in Arabic-Indic digits": Case("submit --backend fake_fez --split test --limit 10 --rep-delay ٠.٠٠٠١", "'--rep-delay': '٠.٠٠٠١' is not a number"),
    "rep-delay with underscores": Case("submit --backend fake_fez --split test --limit 10 --rep-delay 1_0e-5", "'--rep-delay': '1_0e-5' is not a number"),
    "shots in Arabic-Indic digits": Case("submit --backend aer_simulator --shots ١٠٠", "'--shots': '١٠٠' is not a valid integer"),
    "seed with underscores": Case("submit --backend aer_simulator --seed 1_0", "'--seed': '1_0' is not a valid integer"),
    "max-cost with underscores": Case("submit --backend ionq_forte --split test --limit 10 --max-cost 1_000 --yes", "'--max-cost': '1_000' is not a number"),
    "pack-spacing in other digits": Case("submit --backend fake_fez --split test --limit 10 --pack 2 --pack-spacing ٠", "'--pack-spacing': '٠' is not a valid integer"),
    "angle range in other digits": Case("features build --angle-range 0:٣", "'٣' in '0:٣' is neither a number nor a multiple of pi"),
    "interval with underscores": Case("collect --wait --interval 1_0", "'--interval': '1_0' is not a number"),
    "retry attempts in other digits": Case("collect", "QHW_RETRY_ATTEMPTS must be a whole number, 1 or more (at most 100), got '٣'", lambda home: {"env": {"QHW_RETRY_ATTEMPTS": "٣"}}),
    "lease with underscores": Case("collect", "QHW_LEASE_SECONDS must be a number of seconds, got '3_00'", lambda home: {"env": {"QHW_LEASE_SECONDS": "3_00"}}),
    "store timeout in other digits": Case("collect", "QHW_ARTIFACTS_TIMEOUT must be a number of seconds, got '٦٠'", lambda home: {"env": {"QHW_ARTIFACTS_TIMEOUT": "٦٠"}}),
    # --- a run whose row was changed outside qhw ----------------------------------------------------------
    "retry a run whose engine is unknown": Case("retry --run 4", "run 4: its row names the engine 'bogus', which braket_emulator:sha256:", tampered_engine(4)),
    "pack-spacing 2": Case("submit --backend fake_fez --split test --limit 10 --pack 2 --pack-spacing 2", "'--pack-spacing': 2 is not in the range 0<=x<=1"),
    "runs show of a run whose noise is unreadable": Case("runs show 1", "a run's noise 'scale=lots' cannot be read (scale=lots is not a number)", tampered_noise(1, "scale=lots")),
    # --- --noise SPEC: one line before anything is written ------------------------------------------------
    "noise unknown key": Case("submit --backend fake_manila --split test --limit 10 --noise temperature=3", "--noise has no key 'temperature'"),
    "noise not a number": Case("submit --backend fake_manila --split test --limit 10 --noise scale=two", "--noise scale=two is not a number"),
    "noise out of range": Case("submit --backend fake_manila --split test --limit 10 --noise reset=1.5", "--noise reset=1.5 must be a probability from 0 to 1"),
    "noise not key=value": Case("submit --backend fake_manila --split test --limit 10 --noise harsh", "--noise item 'harsh' is not key=value"),
    "noise on a qubit the device lacks": Case("submit --backend fake_manila --split test --limit 10 --noise realistic,bad-qubit=5:0.1", "--noise bad-qubit=5: fake_manila has qubits 0 to 4"),
    "noise on a real device": Case("submit --backend ibm_fez --split test --limit 10 --noise scale=2 --yes", "--noise makes an emulated device (fake_*, braket_emulator:) harsher: ibm_fez is a real device"),
    "noise on a noiseless simulator": Case("submit --backend aer_simulator --split test --limit 10 --noise scale=2", "aer_simulator is a simulator with no device noise to add to"),
    "noise prep=auto on an emulated Braket device": Case(
        "submit --backend braket_emulator:{device} --split test --limit 10 --noise prep=auto",
        "--noise prep=auto reads an IBM device's rep_delay, and a Braket device has none: give prep=P", device_document(),
    ),
    "noise on a qubit an emulated Braket device lacks": Case(
        "submit --backend braket_emulator:{device} --split test --limit 10 --noise bad-qubit=0:0.1",
        "--noise bad-qubit=0: braket_emulator:", device_document(),
    ),
}


def NO_CREDENTIALS(home: Path) -> dict:
    """An environment without any IBM or AWS account (None unsets a variable)."""
    nowhere = str(home.parent / "nowhere")
    return {
        "HOME": nowhere, "QISKIT_IBM_TOKEN": None, "QISKIT_IBM_INSTANCE": None, "QISKIT_IBM_CHANNEL": None,
        "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None,
        "AWS_SHARED_CREDENTIALS_FILE": nowhere, "AWS_CONFIG_FILE": nowhere, "AWS_EC2_METADATA_DISABLED": "true",
    }


def _idx_folder(home: Path, truncate: bool) -> dict:
    folder = home.parent / "idx"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for stem, array in (
        ("train-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)),
        ("train-labels-idx1-ubyte", (np.arange(20) % 10).astype(np.uint8)),
        ("t10k-images-idx3-ubyte", rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)),
        ("t10k-labels-idx1-ubyte", (np.arange(10) % 10).astype(np.uint8)),
    ):
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
        data = header + array.tobytes()
        (folder / f"{stem}.gz").write_bytes(gzip.compress(data[:-100] if truncate and "images" in stem else data))
    return {}


#: How the option parser (click) words what it refuses; and the cases of options that cannot go together.
USAGE_SIGNS = ("Invalid value for '--", "No such option", "Missing option", "is not in the range", "Got unexpected extra argument")
USAGE_CASES = {"train with both"}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_gets_one_line_and_changes_nothing(home, name):
    case = CASES[name]
    extra = case.setup(home) if case.setup else {}
    undo = extra.pop("_undo", None)
    env = extra.pop("env", {})
    other = extra.pop("_untouched", None)
    db = ["--db", extra.pop("--db")] if "--db" in extra else []
    places = {"home": home, "data": home.parent / "data.npz", "map": home.parent / "map.qasm", "qpy": home.parent / "map.qpy", "idx": home.parent / "idx", "device": home.parent / "device.json"}
    args = case.args.format(**places, port=extra.pop("{port}", "")).split()
    before = snapshot(home)
    other_before = _digest(other) if other else None
    try:
        result = CliRunner().invoke(main, [*db, *args], env=env)
    finally:
        if undo is not None:
            undo()
    lines = result.stderr.strip().splitlines()
    # 2 for a malformed option (what the option parser refuses, and options that
    # cannot go together), 1 for the rest (docs/reference/errors.md).
    malformed = any(sign in result.stderr for sign in USAGE_SIGNS) or name in USAGE_CASES
    assert result.exit_code == (2 if malformed else 1), (result.exit_code, result.output)
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert case.message in lines[0], lines[0]
    assert "allow_pickle" not in lines[0]  # NumPy's advice to load untrusted data unsafely is never passed on
    assert snapshot(home) == before
    if other is not None:
        assert _digest(other) == other_before


def _digest(path: Path) -> str | None:
    return hashlib.sha1(path.read_bytes()).hexdigest() if path.is_file() else None


def test_there_are_at_least_sixty_cases():
    assert len(CASES) >= 60


def test_a_home_that_is_not_utf8_is_one_line(home, tmp_path):
    env = qhw_env(home)
    env["QHW_HOME"] = os.fsdecode(bytes(tmp_path / "caf") + b"\xe9")  # Latin-1 bytes, not UTF-8
    result = run_qhw(env, "jobs")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Error: QHW_HOME ({tmp_path}/caf\\udce9) is not a valid UTF-8 path; use a UTF-8 name"
    ]


def test_results_of_a_partly_collected_run_say_so(home, tmp_path):
    result = CliRunner().invoke(main, ["results", "--run", "3", "--out", str(tmp_path / "run3.npz")])
    assert result.exit_code == 0
    assert result.stderr.strip().splitlines()[-1] == (
        "note: 0 of the run's 80 samples are complete and were written; 1 job(s) unfinished: `qhw collect` brings in the rest"
    )
    with np.load(tmp_path / "run3.npz") as data:
        assert data["counts"].shape == (0, 1, 32)
        assert data["parameters"].shape == (0, 1, 5)
