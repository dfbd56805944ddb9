"""The command line, through CliRunner against real databases and simulators."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from qhw.cli import main
from qhw.store import Store

from conftest import recomputed_accuracy


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def ok_json(*args: str):
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


@pytest.mark.parametrize("path, command", list(_commands(main)), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_and_option_has_help(path, command):
    assert command.help and command.help.strip()
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{' '.join(path)} {param.opts[0]} has no help"
    result = run(*path, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def _parameters_named_by_errors() -> set[str]:
    """Every parameter a library error names (ParameterError's first argument
    and ParameterError.ref's, and what the checks that raise it are given)."""
    import ast

    from qhw.checks import check_seed

    where = {"ParameterError": 0, "ref": 0, "check_positive": 1, "check_seed": 1, "_auto_or_count": 1, "stratified_subset": 3}
    found = {check_seed.__defaults__[0]}
    for folder in ("qhw", "backends"):
        for path in (Path(__file__).resolve().parent.parent / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                at = where.get(name)
                if at is not None and len(node.args) > at and isinstance(node.args[at], ast.Constant):
                    found.add(node.args[at].value)
                found |= {kw.value.value for kw in node.keywords if kw.arg == "parameter" and isinstance(kw.value, ast.Constant)}
    return found


def test_every_parameter_a_library_error_names_is_an_option_of_the_command_line():
    from qhw.cli_options import option_for

    options = {opt for _, command in _commands(main) for param in command.params for opt in getattr(param, "opts", ())}
    options |= {opt for param in main.params for opt in getattr(param, "opts", ())}
    named = _parameters_named_by_errors()
    assert {"pack_spacing", "latent_dim", "components", "hardware_run_ids", "model_id", "limit_train"} <= named
    assert {parameter: option_for(parameter) for parameter in named if option_for(parameter) not in options} == {}


def test_a_library_error_names_the_parameter_and_the_command_line_its_option(store):
    from qhw.errors import ParameterError
    from qhw.features import build_features

    with pytest.raises(ParameterError, match=r"^latent_dim \(3\) must be at least components \(5\)$") as raised:
        build_features(store, latent_dim=3, components=5)
    assert raised.value.parameter == "latent_dim"
    result = run("features", "build", "--latent-dim", "3", "--components", "5")
    assert (result.exit_code, result.stderr) == (1, "Error: --latent-dim (3) must be at least --components (5)\n")


def test_help_does_not_load_heavy_libraries():
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom qhw.cli import main\n"
        "assert CliRunner().invoke(main, ['--help']).exit_code == 0\n"
        "print([m for m in ('tensorflow', 'keras', 'qiskit', 'qiskit_aer', 'braket', 'sklearn') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_walk_through_from_the_issue(home):
    built = ok_json("features", "build", "--dataset", "mnist-5k", "--seed", "0", "--limit-train", "200", "--limit-test", "50", "--epochs", "2")
    assert set(built) == {
        "feature_set", "dataset", "feature_map", "qubits", "parameters", "circuits_per_sample", "angle_range",
        "components", "n_train", "n_test", "reconstruction_mse",
    }
    assert (built["feature_set"], built["n_train"], built["n_test"], built["components"]) == (1, 200, 50, 5)
    # The paper's map by default, scaled to [-pi/2, pi/2] as before maps had a choice.
    assert (built["feature_map"], built["qubits"], built["parameters"], built["circuits_per_sample"]) == ("paper", 5, 5, 1)
    assert built["angle_range"] == [round(-math.pi / 2, 6), round(math.pi / 2, 6)]

    classical = ok_json("train", "--features", "1", "--classical", "--epochs", "2")
    assert classical["kind"] == "classical" and {"accuracy", "train_samples", "test_samples"} <= set(classical)

    sim = ok_json("submit", "--backend", "aer_simulator", "--features", "1", "--split", "all", "--shots", "1024")
    assert sim == {"run": 1, "backend": "aer_simulator", "jobs": 1, "samples": 250, "copies": 1, "reuse": 1, "executions": 250, "engine": None, "noise": None}
    hw = ok_json("submit", "--backend", "fake_manila", "--features", "1", "--split", "test")
    assert hw == {"run": 2, "backend": "fake_manila", "jobs": 1, "samples": 50, "copies": 1, "reuse": 1, "executions": 50, "engine": "density", "noise": None}

    jobs = ok_json("jobs")
    assert [(j["run"], j["backend"], j["state"]) for j in jobs] == [(1, "aer_simulator", "collected"), (2, "fake_manila", "collected")]
    assert all(j["provider_job_id"] for j in jobs)
    assert "fake_manila" in run("jobs").stdout

    collected = ok_json("collect", "--wait")
    assert collected == {
        "samples": 300, "pending_jobs": 0, "failed_jobs": 0, "jobs_waiting_on_errors": 0, "jobs_awaiting_approval": 0,
        "jobs_usage_pending": 0, "failed_executions": 0, "rounds_started": 0,
    }

    hybrid = ok_json("train", "--run", "1", "--epochs", "2")
    assert hybrid["kind"] == "hybrid" and (hybrid["train_samples"], hybrid["test_samples"]) == (200, 50)
    store = Store(f"sqlite:///{home}/qhw.db")
    assert hybrid["accuracy"] == pytest.approx(recomputed_accuracy(store, hybrid["model"], 1))  # its own run's test samples
    store.close()

    listed = ok_json("features", "list")
    assert [f["feature_set"] for f in listed] == [1]
    names = {b["name"] for b in ok_json("backends")}
    assert {"aer_simulator", "fake_manila", "fake_brisbane"} <= names

    out = home / "run2.npz"
    assert run("results", "--run", "2", "--out", str(out)).exit_code == 0 and out.is_file()


def test_defaults_take_the_newest_feature_set_and_run(home):
    ok_json("features", "build", "--limit-train", "60", "--limit-test", "20", "--epochs", "1")
    assert ok_json("submit", "--backend", "aer_simulator", "--shots", "32")["samples"] == 80
    assert ok_json("train", "--epochs", "1")["train_samples"] == 60


def test_commands_before_any_data_name_the_command_to_run(home):
    result = run("submit", "--backend", "aer_simulator")
    assert result.exit_code == 1 and "run `qhw features build` first" in result.stderr
    result = run("train")
    assert result.exit_code == 1 and "run `qhw submit --backend aer_simulator` first" in result.stderr


def test_an_unreachable_database_is_one_line(tmp_path, home):
    result = run("--db", f"sqlite:///{tmp_path}/no/such/folder/qhw.db", "jobs")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: cannot open database sqlite:///{tmp_path}/no/such/folder/qhw.db: unable to open database file"
    ]
    result = run("--db", "postgresql://qhw:secret@127.0.0.1:1/qhw", "jobs")
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert "secret" not in result.stderr  # passwords are masked in messages


def test_db_upgrade_and_current(home):
    from qhw import schema

    head = schema.head_revision()
    assert run("db", "upgrade").stdout.strip() == f"database at {head} (was empty)"
    assert run("db", "current").stdout.strip() == f"database: {head}; qhw: {head}"


def test_demo_prints_three_accuracies(home):
    result = ok_json("demo", "--limit-train", "200", "--limit-test", "50", "--autoencoder-epochs", "2", "--epochs", "2", "--shots", "256")
    # Every key docs/reference/json.md promises for demo, and what each names.
    assert set(result) == {
        "classical_accuracy", "hybrid_accuracy", "hybrid_on_hardware_accuracy", "feature_set", "simulator_run", "hardware_run", "comparison", "report",
    }
    assert (result["feature_set"], result["simulator_run"], result["hardware_run"]) == (1, 1, 2)
    assert (result["comparison"]["simulator"]["run"], result["comparison"]["hardware"]["run"]) == (1, 2)
    assert result["comparison"]["hardware"]["backend"] == "fake_manila"
    report = Path(result["report"])
    assert report.is_file() and "fake_manila" in report.read_text()
    store = Store(f"sqlite:///{home}/qhw.db")
    models = {store.catalogue.model(e.model_id) for e in store.catalogue.evaluations()}
    (hybrid,) = [model for model in models if model.kind == "hybrid"]
    assert result["hybrid_accuracy"] == pytest.approx(recomputed_accuracy(store, hybrid.id, 1))
    assert result["hybrid_on_hardware_accuracy"] == pytest.approx(recomputed_accuracy(store, hybrid.id, 2))
    store.close()
    assert 0.0 <= result["classical_accuracy"] <= 1.0
    jobs = ok_json("jobs")
    assert {j["backend"] for j in jobs} == {"aer_simulator", "fake_manila"}
    assert all(j["state"] == "collected" for j in jobs)
    table = run("demo", "--limit-train", "100", "--limit-test", "30", "--autoencoder-epochs", "1", "--epochs", "1", "--shots", "64")
    assert table.exit_code == 0 and "fake_manila" in table.stdout and "classical" in table.stdout


def test_an_unexpected_error_is_one_line_and_qhw_debug_shows_its_traceback(home, monkeypatch):
    import qhw.overview

    def broken(store):
        raise RuntimeError("an invariant broke")

    monkeypatch.setattr(qhw.overview, "run_overviews", broken)
    plain = run("runs", "list")
    assert plain.exit_code == 1 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().splitlines() == [
        "Error: unexpected RuntimeError: an invariant broke (a bug in qhw? QHW_DEBUG=1 shows where it happened)"
    ]
    debugged = CliRunner().invoke(main, ["runs", "list"], env={"QHW_DEBUG": "1"})
    assert isinstance(debugged.exception, RuntimeError) and str(debugged.exception) == "an invariant broke"


def test_backends_lists_the_readme_columns_with_each_backend_s_own_figures(tmp_path):
    """`qhw backends`: name, provider, kind, qubits, credentials and whether it
    costs money; the qubits read from each library's own device, the
    credentials from the environment (absent, then present)."""
    from braket.devices import LocalSimulator
    from qiskit_ibm_runtime.fake_provider import FakeFez, FakeManilaV2

    no_credentials = {name: None for name in (
        "QISKIT_IBM_TOKEN", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_CHANNEL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN", "AWS_PROFILE")}
    no_credentials.update(HOME=str(tmp_path), AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    result = CliRunner().invoke(main, ["backends", "--json"], env=no_credentials)
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert all(set(row) == {"name", "provider", "kind", "qubits", "credentials", "costs_money"} for row in rows.values())
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.fake_provider import FakeProviderForBackendV2

    fakes = {device.name: device.num_qubits for device in FakeProviderForBackendV2().backends() if device.num_qubits >= 2}
    assert {name: row["qubits"] for name, row in rows.items() if name.startswith("fake_")} == fakes
    expected = {
        "aer_simulator": ("aer", "simulator", AerSimulator().num_qubits, "not needed", False),
        "statevector": ("numpy", "simulator", 20, "not needed", False),
        "fake_manila": ("ibm", "emulation", FakeManilaV2().num_qubits, "not needed", False),
        "ibm_fez": ("ibm", "hardware", FakeFez().num_qubits, "missing", True),
        "braket_local": ("braket", "simulator", LocalSimulator("braket_sv").properties.paradigm.qubitCount, "not needed", False),
        "braket_dm": ("braket", "simulator", LocalSimulator("braket_dm").properties.paradigm.qubitCount, "not needed", False),
        "braket_sv1": ("braket", "managed simulator", 34, "missing", True),
        "ionq_forte": ("braket", "hardware", 36, "missing", True),
    }
    for name, (provider, kind, qubits, credentials, paid) in expected.items():
        row = rows[name]
        assert (row["provider"], row["kind"], row["qubits"], row["credentials"], row["costs_money"]) == (provider, kind, qubits, credentials, paid), name
    with_credentials = {**no_credentials, "QISKIT_IBM_TOKEN": "t", "QISKIT_IBM_INSTANCE": "i", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"}
    rows = {row["name"]: row for row in json.loads(CliRunner().invoke(main, ["backends", "--json"], env=with_credentials).stdout)}
    shown = (rows["ibm_fez"]["credentials"], rows["braket_sv1"]["credentials"], rows["aer_simulator"]["credentials"])
    assert shown == ("configured", "configured", "not needed")
    table = CliRunner().invoke(main, ["backends"], env=no_credentials).stdout
    assert all(column in table for column in ("name", "provider", "kind", "qubits", "credentials", "costs_money"))


def test_backends_lists_what_the_adapters_are_without_importing_a_provider_sdk():
    """`qhw backends` reads each provider module's catalogue, which imports no
    provider SDK (building IBM's fake provider alone took seconds): the rows
    are what the adapters themselves are, backend by backend."""
    import subprocess
    import sys

    from qhw.backend import catalogue, get_backend

    for entry in catalogue():
        backend = get_backend(entry.name)
        assert (entry.provider, entry.kind, entry.is_paid) == (backend.provider, backend.kind, backend.is_paid), entry.name
        assert entry.qubits == (backend.num_qubits or None), entry.name
        assert entry.credentials_configured == backend.credentials_configured, entry.name
    code = (
        "import sys\nfrom qhw.cli import main\n"
        "try:\n    main(['backends', '--json'])\nexcept SystemExit:\n    pass\n"
        "print('IMPORTED', sorted({m.split('.')[0] for m in sys.modules}"
        " & {'qiskit_ibm_runtime', 'braket', 'qiskit_aer', 'qiskit_braket_provider', 'tensorflow'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "IMPORTED []", done.stdout[-500:]


@pytest.mark.parametrize(
    "saved",
    [None, "not json", {}, {"default-ibm-quantum-platform": {"channel": "ibm_quantum_platform", "token": "t", "instance": "crn:x"}},
     {"default-ibm-quantum": {"channel": "ibm_quantum", "token": "t"}}],
)
def test_a_saved_ibm_account_is_read_as_qiskit_ibm_runtime_reads_it(tmp_path, monkeypatch, saved):
    from qiskit_ibm_runtime import QiskitRuntimeService

    import qhw.backends.ibm as ibm_adapter

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    accounts = tmp_path / ".qiskit" / "qiskit-ibm.json"
    if saved is not None:
        accounts.parent.mkdir()
        accounts.write_text(saved if isinstance(saved, str) else json.dumps(saved))
    ours = ibm_adapter.credentials_configured()
    try:
        # (The SDK fixed its default file when it was imported, under the real HOME: it is named here.)
        expected = bool(QiskitRuntimeService.saved_accounts(filename=str(accounts)))
    except Exception:  # an unreadable file: "not configured", as qhw always read it
        expected = False
    assert ours is expected
