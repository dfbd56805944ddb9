"""`qhw mlflow log` and `--mlflow`, against a real MLflow tracking server (the
one .ci/run starts, QHW_TEST_MLFLOW_URI, or else one started here) and a
local `sqlite:` tracking URI, read back through MLflow's own client."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from mlflow import MlflowClient
from sqlalchemy import text

from qhw import runs, training
from qhw.cli import main
from qhw.compare import compare
from qhw.export import export_results
from qhw.report import DATA, keep_report
from qhw.store import Store
from qhw.tracking import ledger_url

from conftest import FAKE_CREDENTIALS, qhw_env, start_qhw


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real MLflow tracking server: .ci/run's, or one started here the same
    way (SQLite backend store, a local folder for artifacts, served through it)."""
    url = os.environ.get("QHW_TEST_MLFLOW_URI")
    if url:
        yield url
        return
    folder = tmp_path_factory.mktemp("mlflow-server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},  # no job runner: qhw uses no GenAI jobs
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("mlflow server did not start")
    yield url
    os.killpg(server.pid, signal.SIGTERM)  # the server and the workers it started
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory, built_home):
    """A home whose ledger has what `qhw mlflow log` logs: the small feature
    set, a simulator run, an emulated device's run of the test split, the
    simulator run's hybrid model, and a comparison (which trains and stores the
    classical model) kept as report 1."""
    home = tmp_path_factory.mktemp("mlflow-ledger") / "home"
    home.mkdir()
    shutil.copy(built_home / "qhw.db", home / "qhw.db")
    shutil.copytree(built_home / "artifacts", home / "artifacts")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QHW_HOME", str(home))
        patch.delenv("QHW_DB_URL", raising=False)
        store = Store(f"sqlite:///{home}/qhw.db")
        simulator = runs.submit(store, backend_name="aer_simulator", split="all", shots=256).run
        device = runs.submit(store, backend_name="fake_manila", split="test", shots=256).run
        training.train_hybrid(store, run_id=simulator.id, epochs=4)
        comparison = compare(store, simulator_run_id=simulator.id, hardware_run_id=device.id, epochs=4)
        keep_report(store, comparison, home / "report", hardware_runs=[device.id])
        store.close()
    return home


@pytest.fixture
def ledger_store(ledger, monkeypatch):
    monkeypatch.setenv("QHW_HOME", str(ledger))
    monkeypatch.delenv("QHW_DB_URL", raising=False)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    store = Store(f"sqlite:///{ledger}/qhw.db")
    yield store
    store.close()


def qhw(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def logged_json(*args: str) -> dict:
    result = qhw("mlflow", "log", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def found(client: MlflowClient, experiment_id: str, kind: str, **key: str):
    """The MLflow runs of one qhw object, by its tags."""
    query = " AND ".join([f"tags.`qhw.kind` = '{kind}'", *(f"tags.`qhw.{name}` = '{value}'" for name, value in key.items())])
    return client.search_runs([experiment_id], filter_string=query)


def one(client: MlflowClient, experiment_id: str, kind: str, **key: str):
    matches = found(client, experiment_id, kind, **key)
    assert len(matches) == 1, f"{kind} {key}: {len(matches)} MLflow runs"
    return matches[0]


def download(client: MlflowClient, run_id: str, path: str, into: Path) -> Path:
    return Path(client.download_artifacts(run_id, path, str(into)))


# --- the whole ledger, against a real server -----------------------------------------------


def test_every_object_is_logged_to_a_tracking_server_and_reads_back(ledger_store, mlflow_server, tmp_path):
    store = ledger_store
    experiment = f"qhw-test-{uuid.uuid4().hex[:8]}"
    data = logged_json("--all", "--tracking-uri", mlflow_server, "--experiment", experiment)
    client = MlflowClient(mlflow_server)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    assert data["experiment_id"] == experiment_id and data["tracking_uri"] == mlflow_server
    simulator, device = store.ledger.runs()
    hybrid, classical = store.catalogue.models()
    assert [(item["kind"], item["qhw"], item["created"]) for item in data["logged"]] == [
        ("feature_set", "feature set 1", True), ("run", f"run {simulator.id}", True), ("run", f"run {device.id}", True),
        ("model", f"model {hybrid.id}", True), ("model", f"model {classical.id}", True),
        ("comparison", f"comparison 1, hardware run {device.id}", True),
    ]
    assert len(client.search_runs([experiment_id])) == 6

    # Each run: its params, metrics and tags as the ledger holds them.
    feature_set = one(client, experiment_id, "feature_set", feature_set="1")
    sim_run = one(client, experiment_id, "run", run=str(simulator.id))
    dev_run = one(client, experiment_id, "run", run=str(device.id))
    assert dev_run.data.tags["qhw.feature_set"] == "1" and dev_run.data.tags["qhw.ledger"] == f"sqlite:///{store.database.engine.url.database}"
    params = dev_run.data.params
    assert {name: params[name] for name in ("backend", "provider", "kind", "engine", "shots", "copies", "reuse", "feature_map", "qubits",
                                             "components", "seed", "quality")} == {
        "backend": "fake_manila", "provider": "ibm", "kind": "emulation", "engine": device.engine, "shots": "256", "copies": "1",
        "reuse": "1", "feature_map": "paper", "qubits": "5", "components": "5", "seed": "0", "quality": "off",
    }
    assert params["device"] == device.device_label and "rep_delay" not in params  # what the run does not have is not a param
    samples = store.results.count_samples(device.id)
    fidelities = store.results.fidelities(device.id)[0]
    assert dev_run.data.metrics == pytest.approx({
        "samples": samples, "circuits": samples * device.circuits_per_sample, "cost_actual_usd": 0.0, "mean_fidelity": float(np.mean(fidelities)),
    })
    assert sim_run.info.status == dev_run.info.status == "FINISHED"
    assert sim_run.info.start_time == int(simulator.created_at.timestamp() * 1000)
    last_move = max(job.updated_at for job in store.ledger.jobs(device.id))
    assert dev_run.info.end_time == int(last_move.timestamp() * 1000)  # the run's own end, not the logging's

    # Artifacts: the results as `qhw results` writes them, the calibration as the ledger keeps it.
    exported = export_results(store, device.id, tmp_path / "expected.npz")
    with np.load(download(client, dev_run.info.run_id, f"results/run-{device.id}.npz", tmp_path / "got")) as got, np.load(exported.path) as expected:
        assert sorted(got.files) == sorted(expected.files)
        for name in expected.files:
            assert np.array_equal(got[name], expected[name]), name
    calibration = json.loads(download(client, dev_run.info.run_id, f"calibration/run-{device.id}-calibration.json", tmp_path / "cal").read_text())
    assert calibration == json.loads(json.dumps(store.ledger.device_snapshot(device.id)[0].to_dict()))
    assert [a.path for a in client.list_artifacts(sim_run.info.run_id)] == ["results"]  # a simulator has no calibration

    # Models nest under their run (a classical one under its feature set's), with their curve and file.
    hybrid_run = one(client, experiment_id, "model", model=str(hybrid.id))
    classical_run = one(client, experiment_id, "model", model=str(classical.id))
    assert hybrid_run.data.tags["mlflow.parentRunId"] == sim_run.info.run_id
    assert classical_run.data.tags["mlflow.parentRunId"] == feature_set.info.run_id
    evaluation = store.catalogue.evaluations(hybrid.id)[0]
    assert hybrid_run.data.metrics["test_accuracy"] == pytest.approx(evaluation.accuracy)
    assert evaluation.low <= evaluation.accuracy <= evaluation.high and evaluation.low < evaluation.high
    assert (hybrid_run.data.metrics["test_accuracy_low"], hybrid_run.data.metrics["test_accuracy_high"]) == pytest.approx((evaluation.low, evaluation.high))
    assert hybrid_run.data.params["epochs_run"] == str(hybrid.epochs_run) and hybrid_run.data.params["readout"] == "probabilities"
    assert {name for name, _ in hybrid.history} >= {"loss", "accuracy"}
    for name, values in hybrid.history:
        history = client.get_metric_history(hybrid_run.info.run_id, name)
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(step, pytest.approx(v)) for step, v in enumerate(values)]
        assert len(values) == hybrid.epochs_run
    weights = download(client, hybrid_run.info.run_id, f"model/model-{hybrid.id}.keras", tmp_path / "model")
    assert weights.read_bytes() == store.artifacts.local_file(hybrid.weights, "weights").read_bytes()

    # The comparison: compare --json's figures under their JSON names, and the report.
    comparison_run = one(client, experiment_id, "comparison", comparison="1", hardware_run=str(device.id))
    report = json.loads(download(client, comparison_run.info.run_id, f"report/{DATA}", tmp_path / "report").read_text())
    metrics = comparison_run.data.metrics
    for figure in report["accuracies"]:
        for part in ("accuracy", "low", "high"):
            assert metrics[f"accuracies.{figure['case']}.{part}"] == pytest.approx(figure[part])
    assert {figure["case"] for figure in report["accuracies"]} >= {"simulator", "transfer", "classical"}
    assert metrics["agreement.fidelity.mean"] == pytest.approx(report["agreement"]["fidelity"]["mean"])
    assert metrics["agreement.total_variation.mean"] == pytest.approx(report["agreement"]["total_variation"]["mean"])
    assert "index.html" in {Path(a.path).name for a in client.list_artifacts(comparison_run.info.run_id, "report")}


def test_two_processes_logging_everything_at_once_leave_one_mlflow_run_each(ledger, mlflow_server):
    """Both find nothing and both would create: the ledger's claim lets one
    make each MLflow run (every lookup that finds nothing is slowed here, so
    the two always race through that window)."""
    experiment = f"qhw-race-{uuid.uuid4().hex[:8]}"
    env = qhw_env(ledger, QHW_TEST_SLOW_TRACKER_LOOKUP="0.5")
    args = ("mlflow", "log", "--all", "--tracking-uri", mlflow_server, "--experiment", experiment, "--json")

    processes = [start_qhw(env, *args) for _ in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    created = [item["created"] for stdout, _ in outputs for item in json.loads(stdout)["logged"]]
    assert sum(created) == 6 and len(created) == 12  # each object made once, by one of the two
    client = MlflowClient(mlflow_server)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    every = client.search_runs([experiment_id])
    keys = [tuple(sorted((k, v) for k, v in run.data.tags.items() if k.startswith("qhw.") and k != "qhw.ledger")) for run in every]
    assert len(every) == 6 and len(set(keys)) == 6
    store = Store(f"sqlite:///{ledger}/qhw.db")
    with store.transaction(write=False) as session:
        assert session.execute(text("SELECT COUNT(*) FROM tracker_claims")).scalar() == 0  # every claim let go
    store.close()


# --- a local tracking URI: updates, --mlflow, refusals ------------------------------------------


def test_logging_again_updates_what_is_there_and_never_duplicates(featured_store, ibm_cloud, tmp_path, monkeypatch):
    """An IBM run (the fake cloud behind the real Runtime client) logged while
    its job is out, then again once collected: the same MLflow run, now
    finished, with its samples, QPU seconds and actual cost; a third logging
    changes nothing."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "ibm")
    run = runs.submit(featured_store, backend_name="ibm_fez", split="test", limit=10, shots=100, approve=lambda estimate: True).run
    first = logged_json("--run", str(run.id))
    client = MlflowClient(uri)
    experiment_id = client.get_experiment_by_name("ibm").experiment_id
    before = one(client, experiment_id, "run", run=str(run.id))
    assert first["logged"][0]["created"] and before.info.status == "RUNNING"
    assert before.data.metrics["samples"] == 0 and before.data.metrics["cost_estimated_usd"] == pytest.approx(run.cost_estimate_usd)
    assert "qpu_seconds" not in before.data.metrics and "cost_actual_usd" not in before.data.metrics  # unknown, never 0
    assert [a.path for a in client.list_artifacts(before.info.run_id)] == ["calibration"]

    runs.collect(featured_store, wait=True, interval=0.01, timeout=60)
    second = logged_json("--run", str(run.id))
    after = one(client, experiment_id, "run", run=str(run.id))
    assert not second["logged"][0]["created"] and after.info.run_id == before.info.run_id and after.info.status == "FINISHED"
    jobs = featured_store.ledger.jobs(run.id)
    assert after.data.metrics["samples"] == 10 and after.data.metrics["circuits"] == 10
    assert after.data.metrics["qpu_seconds"] == pytest.approx(sum(job.quantum_seconds for job in jobs))
    assert after.data.metrics["cost_actual_usd"] == pytest.approx(sum(job.cost_usd for job in jobs)) and after.data.metrics["cost_actual_usd"] > 0
    assert after.data.params["device"] == run.device_label and after.data.params["kind"] == "hardware"
    assert {a.path for a in client.list_artifacts(after.info.run_id)} == {"calibration", "results"}
    assert [m.value for m in client.get_metric_history(after.info.run_id, "samples")] == [0, 10]

    logged_json("--run", str(run.id))
    assert [m.value for m in client.get_metric_history(after.info.run_id, "samples")] == [0, 10]  # unchanged: nothing new
    assert len(client.search_runs([experiment_id])) == 1
    # A local tracking URI keeps its artifacts beside its database, not in the folder qhw ran from.
    assert (tmp_path / "mlartifacts" / after.info.run_id / "artifacts" / "results" / f"run-{run.id}.npz").is_file()
    assert not (Path.cwd() / "mlruns").exists()


def test_train_and_compare_log_what_they_made_with_mlflow(ledger_store, tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    simulator, device = ledger_store.ledger.runs()
    models_before = len(ledger_store.catalogue.models())
    trained = qhw("train", "--run", str(simulator.id), "--epochs", "2", "--seed", "7", "--mlflow", "--json")
    assert trained.exit_code == 0, trained.output
    model_id = json.loads(trained.stdout)["model"]
    client = MlflowClient(uri)
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]
    assert experiment.name == f"qhw {ledger_url(ledger_store.engine.url)}"  # named after the ledger
    model_run = one(client, experiment.experiment_id, "model", model=str(model_id))
    parent = one(client, experiment.experiment_id, "run", run=str(simulator.id))
    assert model_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert f"model {model_id} -> run {model_run.info.run_id} (new)" in trained.stderr

    compared = qhw("compare", "--sim", str(simulator.id), "--hw", str(device.id), "--epochs", "2", "--seed", "7", "--mlflow",
                   "--out", str(tmp_path / "report"), "--json")
    assert compared.exit_code == 0, compared.output
    report_id = json.loads(compared.stdout)["report_id"]
    comparison_run = one(client, experiment.experiment_id, "comparison", comparison=str(report_id))
    assert comparison_run.data.metrics["accuracies.transfer.accuracy"] == pytest.approx(
        next(a["accuracy"] for a in json.loads(compared.stdout)["accuracies"] if a["case"] == "transfer")
    )
    # The comparison's models: the hybrid train just made (found, not made again) and the classical it trained.
    assert len(found(client, experiment.experiment_id, "model", model=str(model_id))) == 1
    assert len(found(client, experiment.experiment_id, "model")) == len(ledger_store.catalogue.models()) - models_before


def test_a_tracker_that_does_not_answer_stops_train_before_it_trains(ledger_store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    simulator = ledger_store.ledger.runs()[0]
    before = len(ledger_store.catalogue.models())
    result = qhw("train", "--run", str(simulator.id), "--epochs", "2", "--mlflow")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == ["Error: the MLflow tracking server at http://127.0.0.1:9 does not answer: ConnectionError"]
    assert len(ledger_store.catalogue.models()) == before


def test_bad_input_is_one_line_and_logs_nothing(ledger_store, tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    for args, message in [
        ((), "name what to log: --run, --model, --report, or --all"),
        (("--all", "--run", "1"), "--all logs everything; leave out --run, --model and --report"),
        (("--run", "99"), "no run with id 99"),
        (("--model", "99"), "no model with id 99"),
        (("--report", "99"), "no report with id 99"),
    ]:
        result = qhw("mlflow", "log", *args, "--tracking-uri", uri)
        assert result.exit_code != 0
        (line,) = result.stderr.strip().splitlines()
        assert message in line
    assert not (tmp_path / "mlflow.db").exists()  # MLflow was never asked


def test_without_mlflow_installed_it_says_how_to_install(ledger_store, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` raises ImportError, as where it is not installed
    result = qhw("mlflow", "log", "--all")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: MLflow is not installed: pip install 'qhw[mlflow]' (the client, mlflow-skinny), or pip install mlflow"
    ]


# --- credentials ------------------------------------------------------------------------------


def test_the_ledger_url_loses_its_password_and_secret_parameters():
    assert ledger_url("postgresql+psycopg://team:s3cret@db.lab:5432/qhw?sslmode=require&sslpassword=pw2&application_name=qhw") == (
        "postgresql+psycopg://team@db.lab:5432/qhw?application_name=qhw&sslmode=require"
    )
    assert ledger_url("sqlite:////home/me/.qhw/qhw.db") == "sqlite:////home/me/.qhw/qhw.db"


def test_no_credential_reaches_mlflow(featured_store, ibm_cloud, braket_cloud, tmp_path, monkeypatch):
    """With IBM's token and AWS's keys in the environment (the fake clouds
    take them), a paid IBM run, a Braket run, a model and a comparison logged:
    no param, tag, metric name or artifact holds any of them."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    secrets = [value for provider in FAKE_CREDENTIALS.values() for value in provider.values() if len(value) > 8]
    assert secrets and all(os.environ[name] == value for provider in FAKE_CREDENTIALS.values() for name, value in provider.items())
    ibm = runs.submit(featured_store, backend_name="ibm_fez", split="all", limit=10, shots=100, approve=lambda estimate: True).run
    braket = runs.submit(featured_store, backend_name="braket_sv1", split="test", limit=5, shots=100, approve=lambda estimate: True).run
    runs.collect(featured_store, wait=True, interval=0.01, timeout=60)
    training.train_hybrid(featured_store, run_id=ibm.id, epochs=2)
    comparison = compare(featured_store, simulator_run_id=ibm.id, hardware_run_id=braket.id, epochs=2)
    keep_report(featured_store, comparison, tmp_path / "report", hardware_runs=[braket.id])
    logged_json("--all", "--tracking-uri", uri, "--experiment", "secrets")
    client = MlflowClient(uri)
    every = client.search_runs([client.get_experiment_by_name("secrets").experiment_id])
    assert len(every) == 6  # feature set, two runs, two models, a comparison
    texts = []
    for run in every:
        texts += [*run.data.params.items(), *run.data.tags.items(), *run.data.metrics]
        folder = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "artifacts" / run.info.run_id)))
        files = [path for path in folder.rglob("*") if path.is_file()]
        assert files or run.data.tags["qhw.kind"] == "feature_set"
        texts += [path.read_bytes().decode("latin-1") for path in files]
    flat = json.dumps(texts)
    for secret in secrets:
        assert secret not in flat
    assert "fake-ibm-token" not in flat and "AKIA" not in flat


def test_a_claim_is_held_by_one_holder_until_it_lapses_or_is_dropped(store):
    """The ledger's claim on creating an MLflow run: refused to a second
    holder while held, taken over once its lease has lapsed (its process
    killed), and let go only by its holder."""
    from datetime import timedelta

    key = "a" * 64
    assert store.catalogue.take_claim(key, "one", timedelta(seconds=60))
    assert not store.catalogue.take_claim(key, "two", timedelta(seconds=60))
    store.catalogue.drop_claim(key, "two")  # not its claim: nothing happens
    assert not store.catalogue.take_claim(key, "two", timedelta(seconds=60))
    store.catalogue.drop_claim(key, "one")
    assert store.catalogue.take_claim(key, "two", timedelta(seconds=-1))  # taken, with a lease already lapsed
    assert store.catalogue.take_claim(key, "three", timedelta(seconds=60))  # so the next holder takes it over
    assert not store.catalogue.take_claim(key, "two", timedelta(seconds=60))
