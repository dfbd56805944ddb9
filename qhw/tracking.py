"""The ledger's feature sets, runs, models and comparisons in MLflow (`qhw mlflow log`).

Each qhw object becomes one MLflow run, found again by its tags (``qhw.kind``,
``qhw.<kind>``, ``qhw.ledger``): logging again updates it (metrics that
changed, tags, artifacts) and never makes a second. MLflow has no unique
constraint on tags, so two processes that both find nothing would both
create one; the ledger's ``tracker_claims`` row serialises that
find-or-create (a claim lapses after CLAIM_LEASE, should its process die).

What reaches MLflow is built here from the ledger's records, field by field:
no URL with its password, no token, no key (the ledger's URL is tagged with
its password removed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from qhw.errors import QhwError, TrackerError
from qhw.jobstates import UNFINISHED_STATES
from qhw.records import FeatureSetRecord, ModelRecord, ReportRecord, RunRecord
from qhw.store import Store

log = logging.getLogger("qhw.tracking")

INSTALL_HINT = "MLflow is not installed: pip install 'qhw[mlflow]' (the client, mlflow-skinny), or pip install mlflow"
KIND_TAG = "qhw.kind"
LEDGER_TAG = "qhw.ledger"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests a run under this one
#: How long a claim on creating one MLflow run holds (a killed process's lapses then),
#: and how long another process waits for it before saying so.
CLAIM_LEASE = timedelta(seconds=60)
CLAIM_WAIT_SECONDS = 90.0
#: MLflow takes at most this many metrics, params and tags in one log_batch.
BATCH_METRICS, BATCH_PARAMS, BATCH_TAGS = 1000, 100, 100
#: Query parameters of a database URL that may carry a secret (libpq's and drivers' names).
SECRET_WORDS = ("password", "passwd", "secret", "token", "key", "credential")


@dataclass(frozen=True)
class Tracker:
    """An MLflow client on one experiment."""

    client: Any  # mlflow.MlflowClient (MLflow loads lazily; it is an optional extra)
    uri: str
    experiment_id: str
    experiment_name: str
    ledger: str  # the ledger's URL, its password removed: every run's qhw.ledger tag
    holder: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")

    @property
    def shown_uri(self) -> str:
        return _shown(self.uri)


@dataclass(frozen=True)
class Logged:
    """One qhw object as it stands in MLflow after logging."""

    kind: str  # feature_set | run | model | comparison
    qhw_id: str  # its id in the ledger ("7" or, for a comparison, "report 3, run 5")
    mlflow_run_id: str
    created: bool  # a new MLflow run (False: the one found by its tags, updated)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "qhw": self.qhw_id, "mlflow_run_id": self.mlflow_run_id, "created": self.created,
                "notes": list(self.notes)}


@dataclass
class _Entry:
    """What one MLflow run of a qhw object holds."""

    kind: str
    key: dict[str, str]  # the tags that find it (besides kind and ledger)
    name: str
    start: datetime
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    steps: dict[str, tuple[float, ...]] = field(default_factory=dict)  # a curve: one value a step
    tags: dict[str, str] = field(default_factory=dict)
    # Writes its artifacts into a scratch folder when it is logged: (file or folder, artifact path) each.
    artifacts: Callable[[Path], list[tuple[Path, str]]] | None = None
    finished: bool = True
    end: datetime | None = None  # when it finished (None: when it was made)
    parent: str | None = None  # the MLflow run it nests under
    notes: list[str] = field(default_factory=list)


# --- opening the tracker -----------------------------------------------------------------


def ledger_url(url: Any) -> str:
    """The ledger's URL as a tag may carry it: its password removed, and any
    query parameter whose name says it holds a secret."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "(a database URL qhw could not read)"
    query = {name: value for name, value in parsed.query.items() if not any(word in name.lower() for word in SECRET_WORDS)}
    # URL.set(password=None) keeps the password (None means "unchanged" there); a URL is a named tuple.
    return parsed._replace(password=None).set(query=query).render_as_string(hide_password=False)


def default_experiment(store: Store) -> str:
    """The experiment a ledger logs to unless told: named after the ledger."""
    return f"qhw {ledger_url(store.engine.url)}"


def open_tracker(store: Store, *, tracking_uri: str | None = None, experiment: str | None = None) -> Tracker:
    """An MLflow client on ``experiment`` (made if new) at ``tracking_uri``:
    by default MLflow's own (MLFLOW_TRACKING_URI, else its default), and the
    experiment MLFLOW_EXPERIMENT_NAME names, else one named after the ledger.

    Raises:
        TrackerError: MLflow is not installed, the server does not answer,
            or the experiment is deleted.
    """
    try:
        import mlflow
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
    except ImportError as err:
        raise TrackerError(INSTALL_HINT) from err
    uri = tracking_uri or mlflow.get_tracking_uri()
    _check_answers(uri)
    client = MlflowClient(tracking_uri=uri)
    name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or default_experiment(store)
    with _mlflow_errors(uri):
        found = client.get_experiment_by_name(name)
        if found is None:
            try:
                experiment_id = client.create_experiment(name, artifact_location=_beside_database(uri))
            except MlflowException as err:  # another process made it first
                if "RESOURCE_ALREADY_EXISTS" not in str(getattr(err, "error_code", "")) and "already exists" not in str(err):
                    raise
                found = client.get_experiment_by_name(name)
                if found is None:
                    raise
                experiment_id = found.experiment_id
        else:
            if found.lifecycle_stage == "deleted":
                raise TrackerError(f"MLflow experiment {name!r} at {_shown(uri)} is deleted: restore it in MLflow, or name another with --experiment")
            experiment_id = found.experiment_id
    return Tracker(client=client, uri=uri, experiment_id=experiment_id, experiment_name=name, ledger=ledger_url(store.engine.url))


def _beside_database(uri: str) -> str | None:
    """Where a new experiment of a local ``sqlite:`` tracking URI keeps its
    artifacts: ``mlartifacts/`` beside the database file. MLflow's own choice
    there is ``./mlruns`` under whatever folder the command ran in, which
    scatters one experiment's files over every folder qhw was run from.
    None (MLflow decides) for a server, whose artifacts are its own affair,
    and for a folder, which holds its artifacts already."""
    if not uri.startswith("sqlite:///") or uri == "sqlite:///:memory:":
        return None
    database = Path(uri.removeprefix("sqlite:///").split("?", 1)[0])
    return (database.resolve().parent / "mlartifacts").as_uri()


def _check_answers(uri: str) -> None:
    """A tracking server that does not answer, said in a line within seconds
    (MLflow's client would retry for minutes before giving up)."""
    if not uri.startswith(("http://", "https://")):
        return
    import requests

    try:
        requests.get(uri.rstrip("/") + "/health", timeout=10)
    except requests.RequestException as err:
        raise TrackerError(f"the MLflow tracking server at {_shown(uri)} does not answer: {type(err).__name__}") from err


def _shown(uri: str) -> str:
    """A tracking URI for a message: any password in it hidden."""
    from qhw.store import masked_url

    return masked_url(uri) if "://" in uri and "@" in uri else uri


@contextmanager
def _mlflow_errors(uri: str) -> Iterator[None]:
    """MLflow's refusals as one line (its exceptions carry the server's whole answer)."""
    try:
        yield
    except QhwError:
        raise
    except Exception as err:
        from mlflow.exceptions import MlflowException

        if not isinstance(err, MlflowException | OSError):
            raise
        message = str(getattr(err, "message", err)).strip().splitlines()
        raise TrackerError(f"MLflow at {_shown(uri)}: {message[0] if message else type(err).__name__}") from err


# --- what to log -------------------------------------------------------------------------


def log_objects(
    store: Store,
    tracker: Tracker,
    *,
    runs: Iterable[int] = (),
    models: Iterable[int] = (),
    reports: Iterable[int] = (),
    everything: bool = False,
    on_logged: Callable[[Logged], None] | None = None,
) -> list[Logged]:
    """Log these runs, models and comparison reports (or with ``everything``,
    every feature set, run, model and report of the ledger), each with what
    it nests under. Returns each object logged, in order.

    Raises:
        NotFoundError: an id the ledger does not have (nothing logged).
        TrackerError: MLflow refused.
    """
    chosen_runs = [store.ledger.run(run_id) for run_id in runs]  # unknown ids refused before anything is logged
    chosen_models = [store.catalogue.model(model_id) for model_id in models]
    chosen_reports = [store.catalogue.report(report_id) for report_id in reports]
    if everything:
        chosen_runs, chosen_models, chosen_reports = store.ledger.runs(), store.catalogue.models(), store.catalogue.reports()
    logger = _Logger(store, tracker, on_logged)
    if everything:
        for feature_set in store.catalogue.feature_sets():
            logger.feature_set(feature_set)
    for run in chosen_runs:
        logger.run(run)
    for model in chosen_models:
        logger.model(model)
    for report in chosen_reports:
        logger.report(report)
    return logger.logged


class _Logger:
    """Logs objects once each in one call, parents before what nests under them."""

    def __init__(self, store: Store, tracker: Tracker, on_logged: Callable[[Logged], None] | None) -> None:
        self.store, self.tracker, self.on_logged = store, tracker, on_logged
        self.logged: list[Logged] = []
        self._done: dict[tuple[str, str], str] = {}

    def _log(self, entry: _Entry) -> str:
        done_key = _identity(entry.kind, entry.key)
        if done_key in self._done:
            return self._done[done_key]
        with tempfile.TemporaryDirectory(prefix="qhw-mlflow-") as scratch, _mlflow_errors(self.tracker.uri):
            files = entry.artifacts(Path(scratch)) if entry.artifacts is not None else []
            logged = _write(self.store, self.tracker, entry, files)
        self._done[done_key] = logged.mlflow_run_id
        self.logged.append(logged)
        if self.on_logged is not None:
            self.on_logged(logged)
        return logged.mlflow_run_id

    def _known(self, kind: str, key: Mapping[str, str]) -> str | None:
        """The MLflow run of an object this call has logged already (its parent's, again)."""
        return self._done.get(_identity(kind, key))

    def feature_set(self, feature_set: FeatureSetRecord) -> str:
        if known := self._known("feature_set", {"qhw.feature_set": str(feature_set.id)}):
            return known
        low, high = feature_set.angle_range
        entry = _Entry(
            kind="feature_set",
            key={"qhw.feature_set": str(feature_set.id)},
            name=f"feature set {feature_set.id}",
            start=feature_set.created_at,
            params=_present({
                "dataset": feature_set.dataset, "dataset_fingerprint": feature_set.dataset_fingerprint, "seed": feature_set.seed,
                "components": feature_set.components, "latent_dim": feature_set.latent_dim, "autoencoder_epochs": feature_set.epochs,
                "train_samples": feature_set.n_train, "test_samples": feature_set.n_test, "feature_map": feature_set.feature_map,
                "qubits": feature_set.num_qubits, "map_parameters": feature_set.num_parameters, "reps": feature_set.reps,
                "angle_range": f"{low:g}:{high:g}", "circuits_per_sample": feature_set.circuits_per_sample,
            }),
            metrics={"reconstruction_mse": feature_set.reconstruction_mse},
        )
        return self._log(entry)

    def run(self, run: RunRecord) -> str:
        from qhw.compare import summarize

        if known := self._known("run", {"qhw.run": str(run.id)}):
            return known
        summary = summarize(self.store, run)
        feature_set = self.store.catalogue.feature_set(run.feature_set_id)
        jobs = self.store.ledger.jobs(run.id)
        seconds = [job.quantum_seconds for job in jobs if job.quantum_seconds is not None]
        adaptive = {} if run.adaptive is None else {f"adaptive.{name}": value for name, value in vars(run.adaptive).items()}
        quality = summary.quality or {}
        entry = _Entry(
            kind="run",
            key={"qhw.run": str(run.id)},
            name=f"run {run.id} {run.backend}",
            start=run.created_at,
            params=_present({
                "backend": run.backend, "provider": run.provider, "device": run.device_label, "kind": run.device_kind,
                "engine": run.engine, "split": run.split, "shots": run.shots, "copies": run.copies, "reuse": run.reuse,
                "rep_delay": run.rep_delay, **adaptive, "mitigation": run.mitigation, "device_mitigation": summary.device_mitigation,
                "feature_map": feature_set.feature_map, "qubits": run.num_qubits, "components": feature_set.components,
                "circuits_per_sample": run.circuits_per_sample, "planned_samples": run.n_samples, "seed": run.seed,
                "noise": summary.noise, "quality": run.quality, "quality_floor": run.quality_floor,
                "quality_reserve": run.quality_reserve if run.quality == "auto" else None,
            }),
            metrics=_numbers({
                "samples": summary.samples, "circuits": summary.samples * run.circuits_per_sample,
                "qpu_seconds": sum(seconds) if seconds else None, "cost_estimated_usd": summary.estimated_cost_usd,
                "cost_actual_usd": summary.actual_cost_usd, "mean_fidelity": quality.get("mean_fidelity") if quality.get("circuits") else None,
                "usage": summary.usage if summary.usage_unit and summary.usage_unit != "QPU s" else None,
            }),
            tags={"qhw.feature_set": str(run.feature_set_id), "qhw.backend": run.backend},
            finished=not any(job.state in UNFINISHED_STATES for job in jobs),
            end=max((job.updated_at for job in jobs), default=None),  # its last job's last move
        )
        if summary.usage_unit and summary.usage_unit != "QPU s":
            entry.tags["qhw.usage_unit"] = summary.usage_unit

        def artifacts(scratch: Path) -> list[tuple[Path, str]]:
            found: list[tuple[Path, str]] = []
            if summary.samples:
                from qhw.export import export_results

                path = scratch / f"run-{run.id}.npz"
                export_results(self.store, run.id, path)
                found.append((path, "results"))
            if summary.calibration is not None:
                path = scratch / f"run-{run.id}-calibration.json"
                path.write_text(json.dumps(summary.calibration, indent=2))
                found.append((path, "calibration"))
            return found

        entry.artifacts = artifacts
        return self._log(entry)

    def model(self, model: ModelRecord) -> str:
        parent = self.run(self.store.ledger.run(model.run_id)) if model.run_id is not None else self.feature_set(
            self.store.catalogue.feature_set(model.feature_set_id)
        )
        own = next((e for e in self.store.catalogue.evaluations(model.id) if e.run_id == model.run_id), None)
        entry = _Entry(
            kind="model",
            key={"qhw.model": str(model.id)},
            name=f"model {model.id} {model.kind}",
            start=model.created_at,
            params=_present({
                "kind": model.kind, "readout": model.readout, "epochs": model.epochs, "epochs_run": model.epochs_run,
                "seed": model.seed, "train_samples": model.train_samples, "test_samples": None if own is None else own.test_samples,
                "trained_on": f"run {model.run_id}" if model.run_id is not None else f"feature set {model.feature_set_id} (latent)",
            }),
            metrics=_numbers({
                "test_accuracy": None if own is None else own.accuracy,
                "test_accuracy_low": None if own is None else own.low,
                "test_accuracy_high": None if own is None else own.high,
            }),
            steps=dict(model.history or ()),
            tags={"qhw.feature_set": str(model.feature_set_id), **({"qhw.run": str(model.run_id)} if model.run_id is not None else {})},
            parent=parent,
        )
        if model.history is None:
            entry.notes.append("no training curve: trained before qhw kept one")
        if own is not None and own.low is None:
            entry.notes.append("no 95 % interval: evaluated before qhw kept one")

        def artifacts(scratch: Path) -> list[tuple[Path, str]]:
            path = self.store.artifacts.local_file(model.weights, f"model {model.id}'s weights", suffix=".keras")
            named = scratch / f"model-{model.id}.keras"
            named.write_bytes(path.read_bytes())
            return [(named, "model")]

        entry.artifacts = artifacts
        return self._log(entry)

    def report(self, report: ReportRecord) -> list[str]:
        from qhw.report import DATA, fetch_report

        with tempfile.TemporaryDirectory(prefix="qhw-report-") as folder:
            index = fetch_report(self.store, report, Path(folder) / "report")
            data = json.loads((index.parent / DATA).read_text())
            comparisons = data.get("comparisons", [data])
            logged = []
            for comparison in comparisons:
                entry = self._comparison_entry(report, comparison)
                entry.artifacts = lambda scratch, folder=index.parent: [(folder, "report")]
                logged.append(self._log(entry))
        return logged

    def _comparison_entry(self, report: ReportRecord, comparison: Mapping[str, Any]) -> _Entry:
        sim, hw = comparison["simulator"], comparison["hardware"]
        metrics: dict[str, float | None] = {"shared_samples": comparison.get("shared_samples")}
        for figure in comparison.get("accuracies", []):
            for part in ("accuracy", "low", "high"):
                metrics[f"accuracies.{figure['case']}.{part}"] = figure.get(part)
        agreement = comparison.get("agreement", {})
        for name in ("fidelity", "total_variation"):
            for part in ("mean", "median"):
                metrics[f"agreement.{name}.{part}"] = (agreement.get(name) or {}).get(part)
        quality = hw.get("quality") or {}
        if quality.get("circuits"):
            metrics["hardware.quality.mean_fidelity"] = quality.get("mean_fidelity")
        return _Entry(
            kind="comparison",
            key={"qhw.comparison": str(report.id), "qhw.hardware_run": str(hw["run"])},
            name=f"compare run {sim['run']} vs run {hw['run']}",
            start=report.created_at,
            params=_present({
                "simulator_run": sim["run"], "simulator_backend": sim["backend"], "hardware_run": hw["run"],
                "hardware_backend": hw["backend"], "hardware_kind": hw.get("device_kind"), "hardware_device": hw.get("device"),
                "noise": hw.get("noise"), "report": report.id,
            }),
            metrics=_numbers(metrics),
            tags={"qhw.simulator_run": str(sim["run"])},
        )


def _present(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params that have a value (MLflow keeps each param once; None is no value)."""
    return {name: value for name, value in params.items() if value is not None}


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Metrics that are known: None (unknown) and NaN are left out, never logged as 0."""
    return {name: float(value) for name, value in metrics.items() if value is not None and value == value}


# --- writing to MLflow ---------------------------------------------------------------------


def _identity(kind: str, key: Mapping[str, str]) -> tuple[str, str]:
    """One object of the ledger, as a dictionary key: its kind and its id tags."""
    return kind, json.dumps(dict(key), sort_keys=True)


def _tags(tracker: Tracker, entry: _Entry) -> dict[str, str]:
    """Every tag of the object's MLflow run: those that find it, its own, and its parent."""
    return {KIND_TAG: entry.kind, LEDGER_TAG: tracker.ledger, **entry.key, **entry.tags, **({PARENT_TAG: entry.parent} if entry.parent else {})}


def _claim_key(tracker: Tracker, entry: _Entry) -> str:
    identity = json.dumps([tracker.uri, tracker.experiment_id, tracker.ledger, entry.kind, entry.key], sort_keys=True)
    return hashlib.sha256(identity.encode()).hexdigest()


def _find(tracker: Tracker, entry: _Entry):
    """The MLflow run of this object, found by its tags (the oldest, were there two)."""
    conditions = {KIND_TAG: entry.kind, LEDGER_TAG: tracker.ledger, **entry.key}
    query = " AND ".join(f"tags.`{name}` = '{_quoted(value)}'" for name, value in conditions.items())
    found = tracker.client.search_runs([tracker.experiment_id], filter_string=query, order_by=["attributes.start_time ASC"], max_results=2)
    if len(found) > 1:
        log.warning("%s %s has %d MLflow runs; updating the oldest", entry.kind, entry.key, len(found))
    return found[0] if found else None


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _find_or_create(store: Store, tracker: Tracker, entry: _Entry) -> tuple[Any, bool]:
    """The object's MLflow run, and whether it was made now: found by its
    tags, else made under the ledger's claim on it (one process at a time)."""
    found = _find(tracker, entry)
    if found is not None:
        return found, False
    key = _claim_key(tracker, entry)
    deadline = time.monotonic() + CLAIM_WAIT_SECONDS
    while not store.catalogue.take_claim(key, tracker.holder, CLAIM_LEASE):
        time.sleep(0.2)
        found = _find(tracker, entry)
        if found is not None:
            return found, False
        if time.monotonic() > deadline:
            raise TrackerError(f"another qhw process has been creating the MLflow run of {entry.name} for {CLAIM_WAIT_SECONDS:.0f} s")
    try:
        found = _find(tracker, entry)  # made by the claim's last holder
        if found is not None:
            return found, False
        created = tracker.client.create_run(tracker.experiment_id, start_time=_millis(entry.start), tags=_tags(tracker, entry), run_name=entry.name)
        return created, True
    finally:
        store.catalogue.drop_claim(key, tracker.holder)


def _write(store: Store, tracker: Tracker, entry: _Entry, files: list[tuple[Path, str]]) -> Logged:
    """Bring the object's MLflow run up to ``entry``: params it lacks, metrics
    that changed (a new value at step 0), curves it lacks, every tag, every
    artifact (the same path again replaces it), and its status."""
    from mlflow.entities import Metric, Param, RunTag

    run, created = _find_or_create(store, tracker, entry)
    run_id = run.info.run_id
    have = run.data
    notes = list(entry.notes)
    params = []
    for name, value in entry.params.items():
        text = str(value)
        if name not in have.params:
            params.append(Param(name, text))
        elif have.params[name] != text:  # MLflow never changes a param; say so rather than fail
            notes.append(f"param {name} is {have.params[name]!r} in MLflow and {text!r} in the ledger; MLflow keeps its first value")
    now = _millis(datetime.now().astimezone())
    metrics = [Metric(name, value, now, 0) for name, value in entry.metrics.items() if have.metrics.get(name) != value]
    start = _millis(entry.start)
    for name, values in entry.steps.items():
        if name not in have.metrics:  # a curve is logged once: it never changes
            metrics += [Metric(name, float(value), start + step, step) for step, value in enumerate(values)]
    changed_tags = [RunTag(name, value) for name, value in _tags(tracker, entry).items() if have.tags.get(name) != value]
    for chunk in _chunks(params, BATCH_PARAMS):
        tracker.client.log_batch(run_id, params=chunk)
    for chunk in _chunks(metrics, BATCH_METRICS):
        tracker.client.log_batch(run_id, metrics=chunk)
    for chunk in _chunks(changed_tags, BATCH_TAGS):
        tracker.client.log_batch(run_id, tags=chunk)
    for path, artifact_path in files:
        if path.is_dir():
            tracker.client.log_artifacts(run_id, str(path), artifact_path)
        else:
            tracker.client.log_artifact(run_id, str(path), artifact_path)
    status = "FINISHED" if entry.finished else "RUNNING"
    if run.info.status != status:
        if entry.finished:
            # MLflow writes the run's web address to stdout as it ends it: onto stderr, so --json stays JSON.
            with redirect_stdout(sys.stderr):
                tracker.client.set_terminated(run_id, status, end_time=_millis(entry.end or entry.start))
        else:
            tracker.client.update_run(run_id, status=status)
    qhw_id = ", ".join(f"{name.removeprefix('qhw.').replace('_', ' ')} {value}" for name, value in entry.key.items())
    return Logged(kind=entry.kind, qhw_id=qhw_id, mlflow_run_id=run_id, created=created, notes=tuple(notes))


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _millis(moment: datetime) -> int:
    """Milliseconds since the epoch, as MLflow times things (a naive time from SQLite is UTC, as qhw wrote it)."""
    return int((moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp() * 1000)
