"""The qhw command line: parse, call one library function, print.

Heavy libraries (TensorFlow, Qiskit) load inside the commands that use them,
so `qhw --help` stays instant. Every QhwError becomes one line on stderr.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from qhw import feature_maps  # light: Qiskit loads inside its functions; the help lists its maps
from qhw.cli_options import (
    ANGLE_RANGE,
    EPOCHS,
    FIDELITY,
    ID,
    INTERVAL,
    LATENT,
    MAP_QUBITS,
    MAP_REPS,
    PACK,
    PACK_SPACING,
    POSITIVE,
    REP_DELAY,
    REUSE,
    SECONDS,
    SEED,
    SHARE,
    USD,
    WORKERS,
    LazyHelp,
)
from qhw.errors import ParameterError, QhwError
from qhw.jobstates import JobState

if TYPE_CHECKING:
    from qhw.store import Store
from qhw.records import PROBABILITIES, QUALITY_MODES, READOUTS, RUN_SPLITS  # no heavy imports: `qhw --help` stays instant

#: The exit status of a command ended by Ctrl-C (128 + SIGINT, as a shell reports it).
INTERRUPTED = 130


class _Group(click.Group):
    """The one exception boundary: every error becomes one line on stderr and
    a non-zero exit (1; 2 for a usage error; 130 for Ctrl-C), never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except ParameterError as err:  # a library's parameter, shown as the option that sets it
            from qhw.boundary import one_line
            from qhw.cli_options import option_for

            raise click.ClickException(one_line(err.worded(option_for))) from err
        except QhwError as err:
            from qhw.boundary import one_line

            raise click.ClickException(one_line(str(err))) from err
        except Exception as err:  # file systems, corrupted files, and the unexpected
            if os.environ.get("QHW_DEBUG"):
                raise
            from qhw.boundary import explain, one_line

            raise click.ClickException(one_line(explain(err))) from err

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.ClickException as err:
            # Click would add its usage text and a hint: one line says it all.
            click.echo(f"Error: {err.format_message()}", err=True)
            sys.exit(err.exit_code)
        except click.Abort:
            click.echo(
                "Error: interrupted; what was stored stays stored, and `qhw collect` finishes unfinished jobs", err=True
            )
            sys.exit(INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)


def run() -> None:
    """The ``qhw`` program (its console script): the command line, ending at
    once after a Ctrl-C. What was stored is committed and the claims given
    back by then; a simulation still going on in a thread of this process
    (Aer's, in native code) would otherwise hold the interpreter's exit,
    which waits for such threads, until it ended (minutes)."""
    try:
        main(prog_name="qhw")
    except SystemExit as ended:
        if ended.code == INTERRUPTED:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(INTERRUPTED)
        raise


class _App:
    """Per-invocation state: the database URL and the lazily opened store."""

    def __init__(self, db_url: str | None, artifacts_url: str | None) -> None:
        self.db_url = db_url
        self.artifacts_url = artifacts_url
        self._store: Store | None = None

    def store(self, *, check_schema: bool = True) -> Store:
        if self._store is None:
            from qhw import config
            from qhw.store import Store

            self._store = Store(config.database_url(self.db_url), artifacts=self.artifacts_url, check_schema=check_schema)
        return self._store


pass_app = click.make_pass_decorator(_App)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
mlflow_option = click.option(
    "--mlflow", "to_mlflow", is_flag=True,
    help="Also log what this makes to MLflow (MLFLOW_TRACKING_URI; the experiment as `qhw mlflow log` chooses it).",
)


def parallel_options(command):
    """--workers and --scheduler: where a local simulator's jobs run."""
    command = click.option("--scheduler", help="Run local simulations on this Dask cluster (tcp://HOST:PORT; or QHW_DASK_SCHEDULER).")(command)
    return click.option("--workers", type=WORKERS, help="Local processes for local simulations (default: every core).")(command)


def _progress():
    from qhw.progress import RichProgress

    return RichProgress()


def _emit(data: dict[str, Any] | list[Any], as_json: bool, title: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    rows = data if isinstance(data, list) else [data]
    table = Table(title=escape(title) if title else None)
    columns = list(rows[0].keys()) if rows else []
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(escape(_cell(row[c])) for c in columns))
    console = Console()
    if not console.is_terminal:
        # Piped into grep or a file: whole ids and names on one line beat a fit to 80 columns.
        console.width = 200
    console.print(table)


def _emit_collected(result, as_json: bool) -> None:
    _emit(
        {
            "samples": result.samples,
            "pending_jobs": result.pending_jobs,
            "failed_jobs": result.failed_jobs,
            "jobs_waiting_on_errors": result.waiting_on_errors,
            "jobs_awaiting_approval": result.awaiting_approval,
            "jobs_usage_pending": result.usage_pending,
            "failed_executions": result.failed_executions,
            "rounds_started": result.rounds_started,
        },
        as_json,
    )
    if result.waiting_on_errors:
        click.echo(
            f"{result.waiting_on_errors} job(s) are waiting on provider errors (see `qhw jobs`); "
            "they keep their state and the next `qhw collect` asks again",
            err=True,
        )
    if result.awaiting_approval:
        click.echo(
            f"{result.awaiting_approval} job(s) on a paid backend are not at the provider and were left pending: "
            "`qhw collect --yes` submits them",
            err=True,
        )
    if result.failed_executions:
        click.echo(
            f"{result.failed_executions} execution(s) failed at the provider inside jobs that otherwise ran: "
            "`qhw runs show ID` lists them, `qhw retry --run ID` runs them again",
            err=True,
        )
    if result.usage_pending:
        click.echo(
            f"{result.usage_pending} finished job(s) have no final usage from their provider yet: their cost stays unknown; "
            "`qhw poll` or `qhw runs show` asks again",
            err=True,
        )


def _paid_approver(label: str, yes: bool):
    """Asks before a paid submission: --yes, or the prompt on a terminal; never without one."""

    def approve(estimate) -> bool:
        shown = estimate if estimate is not None else "unknown (no price for this device)"
        click.echo(f"Estimated cost on {label}: {shown}", err=True)
        if yes:
            return True
        if not click.get_text_stream("stdin").isatty():
            return False
        return click.confirm("Submit and pay?", default=False, err=True)

    return approve


def _resubmission_approver(yes: bool):
    def approve(run, jobs, estimate) -> bool:
        click.echo(
            f"run {run.id} ({run.backend}): {len(jobs)} pending job(s) must be submitted (again); "
            "each was looked up at the provider first",
            err=True,
        )
        return _paid_approver(run.backend, yes)(estimate)

    return approve


def _fail_on_failed_jobs(ctx: click.Context, result) -> None:
    """A submission whose jobs failed exits non-zero, naming them."""
    failed = result.failed_jobs
    if failed:
        detail = "; ".join(f"job {job.id}: {job.error}" for job in failed)
        click.echo(f"Error: {len(failed)} of {len(result.jobs)} job(s) of run {result.run.id} failed: {detail}", err=True)
        ctx.exit(1)
    if result.tally.waiting_on_errors:
        click.echo(
            f"{len(result.tally.waiting_on_errors)} job(s) of run {result.run.id} met provider errors and are pending; "
            "`qhw collect` looks them up at the provider before sending anything again",
            err=True,
        )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


@click.group(cls=_Group)
@click.option("--db", "db_url", envvar="QHW_DB_URL", help="SQLAlchemy URL of the tracking database (default: SQLite in QHW_HOME).")
@click.option(
    "--artifacts", "artifacts_url", metavar="URL",
    help=(
        "Where feature sets, models and device documents live, by content: any fsspec URL (s3://bucket/prefix, "
        "file:///shared/qhw); default QHW_ARTIFACTS, else the home's artifacts folder."
    ),
)
@click.version_option(package_name="qhw")
@click.pass_context
def main(ctx: click.Context, db_url: str | None, artifacts_url: str | None) -> None:
    """Run a hybrid quantum-classical classifier's quantum stage on simulators and hardware."""
    from qhw.boundary import configure_output

    # The ledger and workers say what they skipped or retried on stderr; other libraries stay quiet.
    configure_output(debug=bool(os.environ.get("QHW_DEBUG")))
    ctx.obj = _App(db_url, artifacts_url)


# --- features ---------------------------------------------------------------------


@main.group(cls=_Group)
def features() -> None:
    """Build and list feature sets (autoencoder + PCA -> rotation angles)."""


@features.command("build")
@click.option("--dataset", default="mnist-5k", show_default=True, help="mnist-5k, mnist (Keras cache), an IDX folder or an .npz file.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the split, subsets and training.")
@click.option(
    "--feature-map", "feature_map", default="paper", show_default=True, metavar="NAME|FILE",
    cls=LazyHelp, help_from=feature_maps.help_text,
)
@click.option("--qubits", type=MAP_QUBITS, help="Qubits of a built-in map (2 to 12; default 5). A file's are its own.")
@click.option("--reps", type=MAP_REPS, cls=LazyHelp, help_from=feature_maps.reps_help)
@click.option("--angle-range", type=ANGLE_RANGE, help="Range the components are scaled to, LOW:HIGH in radians (default: the map's own; 0:pi for a file).")
@click.option("--components", type=POSITIVE, help="PCA components: a multiple of the map's parameters, one circuit for each (default: one circuit).")
@click.option("--latent-dim", default=64, show_default=True, type=LATENT, help="Autoencoder latent size.")
@click.option("--epochs", default=30, show_default=True, type=EPOCHS, help="Autoencoder training epochs.")
@click.option("--limit-train", type=POSITIVE, help="Keep a seeded stratified subset of this many train images.")
@click.option("--limit-test", type=POSITIVE, help="Keep a seeded stratified subset of this many test images.")
@json_option
@pass_app
def features_build(
    app: _App, dataset, seed, feature_map, qubits, reps, angle_range, components, latent_dim, epochs, limit_train, limit_test, as_json
) -> None:
    """Train the autoencoder, fit PCA and scale the components to the feature map's angles."""
    from qhw import feature_maps
    from qhw.features import build_features

    chosen = feature_maps.resolve(feature_map, qubits=qubits, reps=reps, angle_range=angle_range)
    record = build_features(
        app.store(),
        dataset=dataset,
        seed=seed,
        components=components,
        latent_dim=latent_dim,
        epochs=epochs,
        limit_train=limit_train,
        limit_test=limit_test,
        progress=_progress(),
        feature_map=chosen,
    )
    _emit(
        {
            "feature_set": record.id,
            "dataset": record.dataset,
            **_map_fields(record),
            "components": record.components,
            "n_train": record.n_train,
            "n_test": record.n_test,
            "reconstruction_mse": record.reconstruction_mse,
        },
        as_json,
    )


@features.command("list")
@json_option
@pass_app
def features_list(app: _App, as_json) -> None:
    """List the registered feature sets."""
    rows = [
        {
            "feature_set": r.id,
            "created": r.created_at.strftime("%Y-%m-%d %H:%M"),
            "dataset": r.dataset,
            **_map_fields(r),
            "components": r.components,
            "n_train": r.n_train,
            "n_test": r.n_test,
            "seed": r.seed,
            "reconstruction_mse": r.reconstruction_mse,
        }
        for r in app.store().catalogue.feature_sets()
    ]
    _emit(rows, as_json, title="feature sets")


def _map_fields(record) -> dict:
    """What `features build`, `features list` and `runs show` say of a feature set's map."""
    return {
        "feature_map": record.feature_map,
        "qubits": record.num_qubits,
        "parameters": record.num_parameters,
        "circuits_per_sample": record.circuits_per_sample,
        "angle_range": [round(value, 6) for value in record.angle_range],
    }


# --- backends, submit, jobs, collect ----------------------------------------------------


@main.command()
@json_option
def backends(as_json) -> None:
    """List the backends qhw can run on."""
    from qhw.backend import catalogue

    rows = [
        {
            "name": b.name,
            "provider": b.provider,
            "kind": b.kind,
            "qubits": b.qubits or None,
            "credentials": {None: "not needed", True: "configured", False: "missing"}[b.credentials_configured],
            "costs_money": b.is_paid,
        }
        for b in catalogue()
    ]
    _emit(rows, as_json, title="backends")


@main.command()
@click.option("--backend", "backend_name", required=True, help="A name from `qhw backends`.")
@click.option("--features", "feature_set_id", type=ID, help="Feature set id (default: the newest).")
@click.option("--split", type=click.Choice(RUN_SPLITS), default="all", show_default=True, help="Which samples to run.")
@click.option("--shots", default=1024, show_default=True, type=POSITIVE, help="Shots per circuit.")
@click.option("--limit", type=POSITIVE, help="A seeded stratified subset of this many samples per split.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of the subset, transpiler and simulators.")
@click.option("--max-cost", type=USD, help="Refuse a paid submission whose estimate exceeds this many USD.")
@click.option("--yes", is_flag=True, help="Submit to a paid backend without asking for confirmation.")
@click.option(
    "--mitigate", metavar="ITEMS", multiple=True,
    help=(
        "Comma-separated (or the option again): readout (also run the readout-calibration circuits, for `qhw compare`); "
        "on IBM devices, the sampler's own twirling (measurements), twirling-gates (gates too), dd or dd=XX|XpXm|XY4 "
        "(dynamical decoupling)."
    ),
)
@click.option(
    "--pack", default="1", show_default=True, type=PACK, metavar="auto|N",
    help="Copies of the feature map side by side on a device's qubits, each with its own sample (auto: as many as fit).",
)
@click.option(
    "--pack-spacing", type=PACK_SPACING, default=1, show_default=True,
    help="1 keeps an idle qubit between packed copies (against crosstalk); 0 allows neighbours.",
)
@click.option(
    "--reuse", default="1", show_default=True, type=REUSE, metavar="auto|K",
    help="Samples each copy's qubits run one after another in a shot, measured and reset between (auto: as the device's timing and errors make worth it).",
)
@click.option("--rep-delay", "rep_delay", type=REP_DELAY, help="Seconds between shots on an IBM device, within its rep_delay range (default: the device's).")
@click.option(
    "--adaptive", is_flag=True,
    help="Measure in rounds, each sample only until its class is settled; --shots is the most a sample gets.",
)
@click.option("--model", "model_id", type=ID, help="With --adaptive: the hybrid model whose predictions settle samples.")
@click.option(
    "--engine", type=click.Choice(["density", "aer", "braket"]),
    help=(
        "How an emulated device computes the run: density (exact noisy probabilities, then seeded shots; the default), "
        "aer (fake_*: Runtime's local mode, shot by shot) or braket (braket_emulator:: Braket's LocalEmulator)."
    ),
)
@click.option(
    "--noise", metavar="SPEC",
    help=(
        "Make an emulated device (fake_*, braket_emulator:) harsher than its calibration: comma-separated key=value items "
        "(scale, readout, reset, measure-crosstalk, crosstalk, prep, bad-qubit=Q:P, drift, seed) or the preset "
        "realistic, e.g. realistic,reset=0.02."
    ),
)
@click.option(
    "--quality", type=click.Choice(QUALITY_MODES), default="off", show_default=True,
    help=(
        "auto: a copy or position whose circuits fall behind their exact answers is left out of the jobs not yet sent, "
        "and what it ran is measured again on the others, within --quality-reserve; off: only measure (runs show)."
    ),
)
@click.option("--quality-floor", type=FIDELITY, metavar="F", help="Flag a copy, position or job whose mean fidelity is below F, in place of the rule.")
@click.option(
    "--quality-reserve", type=SHARE, default=0.1, show_default=True, metavar="R",
    help="With --quality auto: the share of the run's device time repairs may add (in the estimate and the cost guard).",
)
@parallel_options
@json_option
@pass_app
@click.pass_context
def submit(
    ctx, app: _App, backend_name, feature_set_id, split, shots, limit, seed, max_cost, yes, mitigate, pack, pack_spacing,
    reuse, rep_delay, adaptive, model_id, engine, noise, quality, quality_floor, quality_reserve, workers, scheduler, as_json,
) -> None:
    """Submit the feature map's circuits: one a sample, or one for each of its parameters' worth of components."""
    from qhw.runs import submit as submit_run

    result = submit_run(
        app.store(),
        backend_name=backend_name,
        feature_set_id=feature_set_id,
        split=split,
        shots=shots,
        limit=limit,
        seed=seed,
        max_cost=max_cost,
        approve=_paid_approver(backend_name, yes),
        mitigate=list(mitigate) or None,
        pack=pack,
        pack_spacing=pack_spacing,
        reuse=reuse,
        rep_delay=rep_delay,
        adaptive=adaptive,
        model_id=model_id,
        engine=engine,
        noise=noise,
        quality=quality,
        quality_floor=quality_floor,
        quality_reserve=quality_reserve,
        workers=workers,
        scheduler=scheduler,
        progress=_progress(),
    )
    for note in result.notes:
        click.echo(note, err=True)
    _emit(
        {
            "run": result.run.id,
            "backend": result.run.backend,
            "jobs": len(result.jobs),
            "samples": result.samples,
            "copies": result.run.copies,
            "reuse": result.run.reuse,
            "executions": result.executions,
            "engine": result.run.engine,
            "noise": None if result.run.noise is None else result.run.noise.text(),
            **({"round": result.run.round, "rounds_done": result.run.rounds_done} if result.run.adaptive else {}),
            **({"quality": result.run.quality, "repairs": result.run.repairs} if result.run.quality == "auto" else {}),
        },
        as_json,
    )
    _fail_on_failed_jobs(ctx, result)


@main.command()
@click.option("--run", "run_id", type=ID, help="The run whose failed jobs to submit again (default: the newest).")
@click.option("--max-cost", type=USD, help="Refuse when the estimate of the retried jobs exceeds this many USD.")
@click.option("--yes", is_flag=True, help="Submit to a paid backend without asking for confirmation.")
@parallel_options
@json_option
@pass_app
@click.pass_context
def retry(ctx, app: _App, run_id, max_cost, yes, workers, scheduler, as_json) -> None:
    """Submit a run's failed jobs afresh (with the same cost guard as submit)."""
    from qhw.runs import retry_run

    store = app.store()
    run = store.ledger.run(run_id)
    failed_before = [job.id for job in store.ledger.jobs(run.id, states=[JobState.FAILED])]
    result = retry_run(
        store, run.id, max_cost=max_cost, approve=_paid_approver(run.backend, yes), workers=workers, scheduler=scheduler, progress=_progress()
    )
    _emit({"run": result.run.id, "retried_jobs": failed_before, "samples": store.results.count_samples(run.id)}, as_json)
    _fail_on_failed_jobs(ctx, result)


@main.group("runs", cls=_Group)
def runs_group() -> None:
    """List runs and show one: device, calibration, progress and cost."""


@runs_group.command("list")
@json_option
@pass_app
def runs_list(app: _App, as_json) -> None:
    """One line per run: device, progress, jobs by state, estimated and actual cost."""
    from qhw.overview import run_overviews

    overviews = run_overviews(app.store())
    if as_json:
        _emit([o.to_dict() for o in overviews], True)
        return
    rows = [
        {
            "run": o.run,
            "backend": o.backend,
            "kind": o.device_kind,
            "created": o.created.strftime("%Y-%m-%d %H:%M"),
            "split": o.split,
            "shots": o.shots,
            "samples": f"{o.samples} of {o.n_samples}",
            "jobs": ", ".join(f"{count} {state}" for state, count in o.jobs_by_state.items()),
            "estimated": o.cost.estimate_text,
            "actual": o.cost.actual_text,
            "usage": o.usage_text,
        }
        for o in overviews
    ]
    _emit(rows, False, title="runs")


def _print_quality(quality) -> None:
    """A run's circuits against their exact answers: the run, then by copy and position (where it has several), flagged first."""
    if quality is None or not quality.circuits:
        return
    flagged = quality.flagged
    said = ", ".join(f"{kind} {g.key} ({g.mean_fidelity:.4f})" for kind, g in flagged) or "none"
    rule = f"below the floor {quality.floor:g}" if quality.floor is not None else "flagged"
    click.echo(f"quality: mean fidelity to the exact answers {quality.mean_fidelity:.4f} over {quality.circuits:,} circuits; {rule}: {said}")
    if quality.mode == "auto" or quality.log:
        repaired = f"{quality.repaired:,} circuit(s) measured again" if quality.repaired else "nothing measured again"
        left = f"slot(s) {', '.join(map(str, quality.excluded_slots))} left out" if quality.excluded_slots else "no slot left out"
        click.echo(f"--quality {quality.mode}: {left}; {repaired}")
        for line in quality.log:
            click.echo(f"  {line}")
    for name, groups in (("copy", quality.copies), ("position", quality.positions)):
        if len(groups) > 1:
            rows = [{name: g.key, "mean fidelity": f"{g.mean_fidelity:.4f}", "circuits": g.circuits, "flagged": "yes" if g.flagged else ""} for g in groups]
            _emit(rows, False, title=f"quality by {name}")


def _drift_text(factors: dict[int, float]) -> str:
    """A run's drift factors in one line: their range, and each job's when few."""
    values = list(factors.values())
    span = f"{min(values):.3f} to {max(values):.3f} over {len(values)} job(s)"
    return span if len(values) > 8 else span + ": " + ", ".join(f"job {job} x{factor:.3f}" for job, factor in sorted(factors.items()))


@runs_group.command("show")
@click.argument("run_id", type=ID)
@click.option(
    "--properties-out", type=click.Path(dir_okay=False, path_type=Path),
    help="Write the device properties document stored with the run (Braket) to this .json file, for braket_emulator:FILE.",
)
@json_option
@pass_app
def runs_show(app: _App, run_id, properties_out, as_json) -> None:
    """Everything stored about one run, its device's calibration at run time included."""
    from qhw.overview import export_device_properties, run_details
    from qhw.runs import settle_usage

    store = app.store()
    store.ledger.run(run_id)  # an unknown run is refused before any provider is asked
    settle_usage(store, run_id)  # usage a provider had not finalised may be final now
    details = run_details(store, run_id)
    if properties_out is not None:
        click.echo(f"device properties: {export_device_properties(store, run_id, properties_out)}", err=True)
    if as_json:
        _emit(details.to_dict(), True)
        return
    o = details.overview
    facts = [
        ("backend", o.backend), ("kind", o.device_kind), ("device", o.device), ("created", o.created.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("feature set", details.feature_set), ("feature map", details.feature_map_text), ("seed", details.seed), ("split", o.split), ("shots", o.shots),
        ("samples", f"{o.samples} of {o.n_samples} collected"), ("jobs", ", ".join(f"{n} {state}" for state, n in o.jobs_by_state.items())),
        ("layout (physical qubits)", ", ".join(map(str, details.layout))), ("transpiled depth", details.depth),
        ("two-qubit gates", details.two_qubit_gates), ("mitigation", ", ".join(filter(None, [details.mitigation, details.device_mitigation])) or "none"),
        ("copies, samples a copy a shot", f"{o.copies}, {o.reuse} ({o.executions:,} executions)"),
        ("rep_delay", "the device's default" if details.rep_delay is None else f"{details.rep_delay * 1e6:g} us"),
        *([("engine", details.engine + (f" ({details.engine_note})" if details.engine_note else ""))] if details.engine else []),
        *([("noise added", details.noise)] if details.noise else []),
        *([("drift factors", _drift_text(details.noise_factors))] if details.noise_factors else []),
        ("estimated cost" + (" (worst case)" if details.adaptive else ""), o.cost.estimate_text), ("actual cost", o.cost.actual_text),
        ("usage reported", o.usage_text or ("none (not billed)" if o.cost.free else "none yet")),
    ]
    if details.adaptive is not None:
        a = details.adaptive
        state = "ended" if a.rounds_done else "going on (`qhw collect` starts the next)"
        facts += [
            ("adaptive", f"{a.rule}; {a.first_shots} shots first, doubling to {a.max_shots}"),
            ("rounds", f"round {a.round + 1} of at most {a.rounds}; {state}"),
            ("shots used", f"{a.shots_used:,} of {a.worst_case_shots:,} at worst ({a.shots_used / a.worst_case_shots:.0%})"),
            ("samples by shots", ", ".join(f"{n} at {shots}" for shots, n in sorted(a.samples_by_shots.items()))),
        ]
    _emit([{"run": run_id, "what": name, "value": value} for name, value in facts], False, title=f"run {run_id}")
    _print_quality(details.quality)
    calibration = details.calibration
    if calibration is None:
        click.echo("calibration: none (an ideal simulator)")
    else:
        age = "" if details.calibration_age is None else f", {details.calibration_age.total_seconds() / 3600:.1f} h before the run"
        stamp = calibration.calibrated_at.isoformat() if calibration.calibrated_at else "an unknown time"
        _emit(
            [
                {"qubit": q.qubit, "T1 (us)": q.t1_us, "T2 (us)": q.t2_us, "readout error": q.readout_error, "1q gate error": q.gate_error}
                for q in calibration.qubits
            ],
            False,
            title=f"calibration of {calibration.device}, taken {stamp}{age}",
        )
        _emit([{"qubits": "-".join(map(str, p.qubits)), "gate": p.gate, "error": p.error} for p in calibration.pairs], False, title="two-qubit gates")
    for job, state, error in details.job_errors:
        click.echo(f"job {job} ({state}): {error}")
    if details.failed_executions:
        _emit(
            [
                {"job": f.job, "execution": f.execution, "sample": f.sample or f"calibration state {f.execution}",
                 "circuit": "" if f.circuit is None else f.circuit, "reason": f.reason, "retried by job": f.retry_job or ""}
                for f in details.failed_executions
            ],
            False,
            title=f"{len(details.failed_executions)} execution(s) failed at the provider (`qhw retry --run {run_id}` runs them again)",
        )
    if details.prices:
        sources = "; ".join(f"{price} from {source}" for price, source in details.prices)
        click.echo(f"prices: {sources}; the others from qhw's price table")


@main.command()
@click.option("--run", "run_id", type=ID, help="Only this run's jobs.")
@click.option("--state", "states", multiple=True, type=click.Choice([state.value for state in JobState]), help="Only jobs in this state (repeatable).")
@json_option
@pass_app
def jobs(app: _App, run_id, states, as_json) -> None:
    """List jobs with their provider ids, states and errors."""
    store = app.store()
    backend_of = {run.id: run.backend for run in store.ledger.runs()}
    failed_executions = store.ledger.failed_execution_counts(run_id)
    rows = [
        {
            "job": j.id,
            "run": j.run_id,
            "backend": backend_of[j.run_id],
            "purpose": j.purpose,
            "provider_job_id": j.provider_job_id,
            "state": j.state.value,
            "executions": j.executions,
            "attempt": j.attempt,
            "updated": j.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            "quantum_seconds": j.quantum_seconds,
            "usage_value": j.usage_value,
            "usage_unit": j.usage_unit,
            "usage_pending": j.usage_pending,
            "failed_executions": failed_executions.get(j.id, 0),
            "errors_in_a_row": j.error_count,
            "error": j.error,
        }
        for j in store.ledger.jobs(run_id, states=[JobState(s) for s in states] or None)
    ]
    _emit(rows, as_json, title="jobs")


@main.command()
@click.option("--run", "run_id", type=ID, help="Only this run (default: every run with unfinished jobs).")
@click.option("--wait", is_flag=True, help="Keep polling until no job is unfinished.")
@click.option("--interval", default=5.0, show_default=True, type=INTERVAL, help="Seconds between polls with --wait.")
@click.option("--timeout", type=SECONDS, help="Give up waiting after this many seconds.")
@click.option("--yes", is_flag=True, help="Submit again, without asking, paid jobs that the provider does not have.")
@parallel_options
@json_option
@pass_app
def collect(app: _App, run_id, wait, interval, timeout, yes, workers, scheduler, as_json) -> None:
    """Poll unfinished jobs and store their shot results (safe to repeat, and to run several at once)."""
    from qhw.runs import collect as collect_runs

    result = collect_runs(
        app.store(), run_id=run_id, wait=wait, interval=interval, timeout=timeout,
        approve=_resubmission_approver(yes), workers=workers, scheduler=scheduler, progress=_progress(),
    )
    _emit_collected(result, as_json)


@main.command()
@click.option("--run", "run_id", type=ID, help="Only this run (default: every run with unfinished jobs).")
@click.option("--yes", is_flag=True, help="Submit again, without asking, paid jobs that the provider does not have.")
@json_option
@pass_app
def poll(app: _App, run_id, yes, as_json) -> None:
    """Ask the providers once for every unfinished job's state; store what has finished."""
    from qhw.runs import collect as collect_runs

    _emit_collected(
        collect_runs(app.store(), run_id=run_id, wait=False, approve=_resubmission_approver(yes), progress=_progress()), as_json
    )


@main.command()
@click.option("--run", "run_id", type=ID, help="The run whose unfinished jobs to cancel (default: the newest).")
@json_option
@pass_app
def cancel(app: _App, run_id, as_json) -> None:
    """Ask the provider to cancel a run's unfinished jobs; its answer decides each job's state."""
    from qhw.runs import cancel_run

    store = app.store()
    outcomes = cancel_run(store, run_id)
    states = {job.id: job.state.value for job in store.ledger.jobs(store.ledger.run(run_id).id)}
    if as_json:
        _emit(
            {
                "cancelled_jobs": [o.job for o in outcomes if states.get(o.job) == "cancelled"],
                "outcomes": [{"job": o.job, "state": states.get(o.job), "outcome": o.outcome} for o in outcomes],
            },
            True,
        )
        return
    _emit([{"job": o.job, "state": states.get(o.job), "outcome": o.outcome} for o in outcomes], False, title="cancel")


@main.command()
@click.option("--run", "run_id", type=ID, help="Run whose outcomes to export (default: the newest).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The .npz file to write.")
@pass_app
def results(app: _App, run_id, out) -> None:
    """Export a run's counts, labels and splits to an .npz file."""
    from qhw.export import export_results

    store = app.store()
    export = export_results(store, run_id, out)
    click.echo(str(export.path))
    _repair_note(store, export.run_id)
    if export.samples < export.run_samples:
        pending = f"; {export.unfinished_jobs} job(s) unfinished: `qhw collect` brings in the rest" if export.unfinished_jobs else ""
        click.echo(f"note: {export.samples} of the run's {export.run_samples} samples are complete and were written{pending}", err=True)


# --- training and demo ------------------------------------------------------------


@main.command()
@click.option("--run", "run_id", type=ID, help="Train the hybrid classifier on this run (default: the newest).")
@click.option("--features", "feature_set_id", type=ID, help="With --classical: the feature set (default: the newest).")
@click.option("--classical", is_flag=True, help="Train the baseline on the autoencoder latent instead.")
@click.option("--epochs", default=60, show_default=True, type=EPOCHS, help="Classifier training epochs.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Training seed.")
@click.option(
    "--readout",
    type=click.Choice(READOUTS),
    help="How the hybrid reads each circuit: all its outcome probabilities (default), or the Pauli-Z "
    "expectation that moves most with each parameter, chosen from the feature map alone.",
)
@mlflow_option
@json_option
@pass_app
def train(app: _App, run_id, feature_set_id, classical, epochs, seed, readout, to_mlflow, as_json) -> None:
    """Train the classifier on a run's outcome distributions (or on the latent)."""
    from qhw import training

    if classical and run_id is not None:
        raise click.UsageError("--classical trains on a feature set; use --features, not --run")
    if feature_set_id is not None and not classical:
        raise click.UsageError("--features goes with --classical; the hybrid classifier trains on a --run")
    if classical and readout is not None:
        raise click.UsageError("--readout is the hybrid's; the classical baseline reads the latent")
    tracker = _tracker(app.store()) if to_mlflow else None  # before the minutes of training: is MLflow there?
    if classical:
        result = training.train_classical(app.store(), feature_set_id=feature_set_id, epochs=epochs, seed=seed, progress=_progress())
    else:
        result = training.train_hybrid(
            app.store(), run_id=run_id, epochs=epochs, seed=seed, readout=readout or PROBABILITIES, progress=_progress()
        )
    _emit(
        {
            "model": result.model.id,
            "accuracy": result.accuracy,
            "kind": result.kind,
            "readout": result.readout,
            "train_samples": result.train_samples,
            "test_samples": result.test_samples,
            "epochs_run": result.model.epochs_run,
            "interval": [result.evaluation.low, result.evaluation.high],
            **({"repaired": app.store().results.repaired(result.model.run_id)} if result.model.run_id is not None else {}),
        },
        as_json,
    )
    if result.model.run_id is not None and not as_json:
        _repair_note(app.store(), result.model.run_id)
    if tracker is not None:
        _log_to_mlflow(app.store(), tracker, models=[result.model.id])


def _tracker(store):
    from qhw.tracking import open_tracker

    return open_tracker(store)


def _log_to_mlflow(store, tracker, **chosen) -> None:
    """--mlflow: what the command made, logged to MLFLOW_TRACKING_URI's experiment; a line each, on stderr."""
    from qhw.tracking import log_objects

    for logged in log_objects(store, tracker, **chosen):
        _say_logged(tracker, logged, err=True)


def _say_logged(tracker, logged, *, err: bool = False) -> None:
    verb = "new" if logged.created else "updated"
    click.echo(f"mlflow: {logged.qhw_id} -> run {logged.mlflow_run_id} ({verb}) in experiment {tracker.experiment_name!r}", err=err)
    for note in logged.notes:
        click.echo(f"note: {logged.qhw_id}: {note}", err=True)


def _repair_note(store, run_id: int) -> None:
    """What a run's counts owe to --quality auto's repairs, on stderr (nothing when none)."""
    from qhw.repair import repaired_summary

    summary = repaired_summary(store, store.ledger.run(run_id))
    if summary:
        click.echo(f"note: {summary}; the repairs' counts are the ones read", err=True)


@main.command()
@click.option("--shots", default=1024, show_default=True, type=POSITIVE, help="Shots per circuit.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of everything.")
@click.option("--hardware", default="fake_manila", show_default=True, help="The device (or emulation) for the test samples.")
@click.option("--limit-train", type=POSITIVE, help="Use a stratified subset of the 4,000 train images.")
@click.option("--limit-test", type=POSITIVE, help="Use a stratified subset of the 1,000 test images.")
@click.option("--autoencoder-epochs", default=30, show_default=True, type=EPOCHS, help="Autoencoder epochs.")
@click.option("--epochs", default=60, show_default=True, type=EPOCHS, help="Classifier epochs.")
@json_option
@pass_app
def demo(app: _App, shots, seed, hardware, limit_train, limit_test, autoencoder_epochs, epochs, as_json) -> None:
    """The whole pipeline on the embedded MNIST subset, locally, with a comparison table."""
    from qhw.demo import run_demo

    result = run_demo(
        app.store(),
        seed=seed,
        shots=shots,
        hardware=hardware,
        limit_train=limit_train,
        limit_test=limit_test,
        autoencoder_epochs=autoencoder_epochs,
        classifier_epochs=epochs,
        progress=_progress(),
    )
    if as_json:
        _emit(
            {
                "classical_accuracy": result.classical.accuracy,
                "hybrid_accuracy": result.hybrid.accuracy,
                "hybrid_on_hardware_accuracy": result.hybrid_on_hardware.accuracy,
                "feature_set": result.feature_set.id,
                "simulator_run": result.simulator_run.id,
                "hardware_run": result.hardware_run.id,
                "comparison": result.comparison.to_dict(),
                "report": str(result.report),
            },
            True,
        )
        return
    hardware_label = f"{result.hardware_run.backend} ({result.comparison.hardware.device}, run {result.hardware_run.id})"
    rows = [
        {"classifier": "classical (64-d latent)", "trained on": f"feature set {result.feature_set.id}", "tested on": "latent",
         "test samples": result.classical.test_samples, "accuracy": result.classical.accuracy},
        {"classifier": "hybrid (5 qubits)", "trained on": f"run {result.simulator_run.id} ({result.simulator_run.backend})",
         "tested on": result.simulator_run.backend, "test samples": result.hybrid.test_samples, "accuracy": result.hybrid.accuracy},
        {"classifier": "hybrid (5 qubits)", "trained on": f"run {result.simulator_run.id} ({result.simulator_run.backend})",
         "tested on": hardware_label, "test samples": result.hybrid_on_hardware.test_samples, "accuracy": result.hybrid_on_hardware.accuracy},
    ]
    _emit(rows, False, title="qhw demo: accuracy on MNIST test images")
    _print_comparison(result.comparison)
    click.echo(f"report: {result.report}")


@main.command("compare")
@click.option("--sim", "simulator_run", required=True, type=ID, help="The simulator run (needs train samples).")
@click.option("--hw", "hardware_runs", required=True, multiple=True, type=ID, help="A device (or emulation) run to compare with it; repeat for several.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Report folder (default: under QHW_HOME/reports/).")
@click.option("--epochs", default=60, show_default=True, type=EPOCHS, help="Classifier training epochs.")
@click.option("--seed", default=0, show_default=True, type=SEED, help="Seed of training, bootstrap and subsampling.")
@click.option(
    "--readout", default=PROBABILITIES, show_default=True, type=click.Choice(READOUTS),
    help="How the hybrid classifiers read each circuit (see `qhw train --help`).",
)
@mlflow_option
@json_option
@pass_app
def compare_command(app: _App, simulator_run, hardware_runs, out, epochs, seed, readout, to_mlflow, as_json) -> None:
    """Accuracy, agreement, cost and accuracy against shots of a simulator run and device runs."""
    from qhw.compare import compare_devices
    from qhw.report import check_report_dir, keep_report

    check_report_dir(out)
    app.store().artifacts.check_reachable()  # before the minutes of training
    tracker = _tracker(app.store()) if to_mlflow else None
    result = compare_devices(
        app.store(),
        simulator_run_id=simulator_run,
        hardware_run_ids=list(hardware_runs),
        epochs=epochs,
        seed=seed,
        readout=readout,
        progress=_progress(),
    )
    single = len(hardware_runs) == 1
    index, stored = keep_report(app.store(), result.comparisons[0] if single else result, out, hardware_runs=list(hardware_runs))
    if tracker is not None:  # the comparison, and the models its figures come from
        models = sorted({use.model for comparison in result.comparisons for use in comparison.models})
        _log_to_mlflow(app.store(), tracker, models=models, reports=[stored.id])
    if as_json:
        data = result.comparisons[0].to_dict() if single else result.to_dict()
        _emit({**data, "report": str(index), "report_id": stored.id}, True)
        return
    if not single:
        _emit(
            [
                {
                    "run": r.run,
                    "backend": r.backend,
                    "kind": r.device_kind,
                    **({"noise added": r.noise} if any(row.noise for row in result.leaderboard) else {}),
                    "transfer accuracy": r.transfer_accuracy,
                    "95% interval": f"[{r.low:.3f}, {r.high:.3f}]",
                    "mitigated": r.mitigated_accuracy,
                    "fidelity": r.mean_fidelity,
                    "est. USD/1k samples": r.estimated_cost_per_1000_usd,
                    "actual USD/1k samples": "unknown" if r.actual_cost_per_1000_usd is None else r.actual_cost_per_1000_usd,
                    "calibration age (h)": r.calibration_age_hours,
                }
                for r in result.leaderboard
            ],
            False,
            title=f"leaderboard: run {simulator_run} against {len(hardware_runs)} device runs",
        )
    for comparison in result.comparisons:
        _print_comparison(comparison)
    click.echo(f"kept as report {stored.id} in the artifact store (`qhw reports get {stored.id}` on any machine of the team)")
    click.echo(f"report: {index}")


def _print_comparison(comparison) -> None:
    sim, hw = comparison.simulator, comparison.hardware
    for note in comparison.notes:
        click.echo(f"note: {note}", err=True)
    calibrated = "no calibration (ideal)" if hw.calibrated_at is None else f"calibrated {hw.calibrated_at}, {hw.calibration_age_hours:.1f} h before the run"
    from qhw.pricing import usd

    estimate = "free" if hw.actual_cost == "free" else usd(hw.estimated_cost_usd)
    noise = f", with --noise {hw.noise}" if hw.noise else ""
    click.echo(f"run {hw.run}: {hw.device}{noise}; {calibrated}; cost: estimated {estimate}, actual {hw.actual_cost}")
    if hw.quality and hw.quality["circuits"]:
        q = hw.quality
        marks = [f"{kind} {g[kind]} ({g['mean_fidelity']:.4f})" for kinds, kind in (("copies", "copy"), ("positions", "position"), ("jobs", "job"))
                 for g in q[kinds] if g["flagged"]]
        flagged = ", ".join(marks) or "none"
        click.echo(f"run {hw.run}: mean fidelity to the exact answers {q['mean_fidelity']:.4f} over {q['circuits']:,} circuits; flagged: {flagged}")
        if q.get("repaired"):
            click.echo(f"run {hw.run}: {q['repaired']:,} circuit(s) measured again by --quality auto; read from their repairs ({'; '.join(q['log'])})")
    if comparison.models:
        used = ", ".join(f"{m.case} model {m.model} ({'trained before' if m.trained == 'before' else 'trained now, and stored'})" for m in comparison.models)
        click.echo(f"classifiers: {used}")
    _emit(
        [
            {"case": a.case, "what": a.description, "accuracy": a.accuracy, "95% interval": f"[{a.low:.3f}, {a.high:.3f}]", "test samples": a.test_samples}
            for a in comparison.accuracies
        ],
        False,
        title=f"run {sim.run} {sim.backend} [{sim.device}] vs run {hw.run} {hw.backend} [{hw.device}]",
    )
    g = comparison.agreement
    _emit(
        [
            {"per sample": name, "mean": s.mean, "median": s.median, "p5": s.p5, "p95": s.p95}
            for name, s in (("Hellinger fidelity", g.fidelity), ("total variation", g.total_variation))
        ],
        False,
        title=f"agreement on {comparison.shared_samples} shared samples",
    )
    if len(g.fidelity_by_copy) > 1:  # a packed run: one bad chain of qubits shows here
        _emit(
            [
                {"copy": copy, "mean fidelity": g.fidelity_by_copy[copy].mean, "mean total variation": g.total_variation_by_copy[copy].mean,
                 "circuits": g.fidelity_by_copy[copy].n}
                for copy in sorted(g.fidelity_by_copy)
            ],
            False,
            title=f"agreement by copy of run {hw.run}",
        )
    if len(g.fidelity_by_position) > 1:  # a reused run: a position whose reset errs shows here
        _emit(
            [
                {"position": position, "mean fidelity": g.fidelity_by_position[position].mean,
                 "mean total variation": g.total_variation_by_position[position].mean, "circuits": g.fidelity_by_position[position].n}
                for position in sorted(g.fidelity_by_position)
            ],
            False,
            title=f"agreement by position in a shot of run {hw.run}",
        )
    _emit(
        [
            {"shots": p.shots, "accuracy": p.accuracy, "95% interval": f"[{p.low:.3f}, {p.high:.3f}]", "est. cost (USD)": p.cost_usd}
            for p in comparison.shots_curve
        ],
        False,
        title=f"transfer accuracy against shots on {hw.backend}",
    )
    if comparison.adaptive is not None:
        a = comparison.adaptive
        click.echo(
            f"adaptive run {hw.run} ({a.rule}): {a.shots_used:,} shots against {a.uniform_shots:,} for every sample at "
            f"{hw.shots} ({a.share:.0%}); transfer accuracy {a.transfer_accuracy:.3f} [{a.low:.3f}, {a.high:.3f}]"
        )
        _emit(
            [{"shots a sample": shots, "test samples": n} for shots, n in sorted(a.samples_by_shots.items())],
            False,
            title=f"shots a sample of run {hw.run}",
        )


@main.command()
@click.option("--backend", "backend_name", default="ibm_fez", show_default=True, help="A paid backend of the account to ask (any of its devices).")
@json_option
def account(backend_name, as_json) -> None:
    """The plan's usage this period and what is left of it (IBM Quantum's instance)."""
    from qhw.backend import get_backend, is_remote

    backend = get_backend(backend_name)
    if not backend.is_paid or not is_remote(backend):
        raise click.UsageError(f"{backend_name} is free: name a device of the account (e.g. ibm_fez)")
    backend.check_credentials()
    allowance = backend.allowance()
    if allowance is None:
        raise QhwError(f"{backend.provider} gives no plan allowance for this account (no limit, or a service that does not say)")
    # Figures that do not add up are shown as unknown (null), never believed; the provider's own flag as it says.
    _emit(
        {"backend": backend_name, "plan": allowance.plan, "consumed": allowance.consumed, "limit": allowance.limit,
         "remaining": allowance.remaining if as_json or allowance.remaining is not None else "unknown", "unit": allowance.unit,
         "limit_reached": allowance.limit_reached},
        as_json,
        title=f"{backend.provider} plan usage",
    )
    if allowance.doubt:
        click.echo(f"note: what is left is unknown: {allowance.doubt}", err=True)
    if allowance.limit_reached:
        click.echo(f"note: {backend.provider} says the instance has reached its usage limit: jobs will not run until time is made available", err=True)


# --- artifacts ---------------------------------------------------------------------


@main.group(cls=_Group)
def artifacts() -> None:
    """The artifact store (--artifacts / QHW_ARTIFACTS): feature sets' files and models, by content."""


@artifacts.command("push")
@json_option
@pass_app
def artifacts_push(app: _App, as_json) -> None:
    """Copy this home's feature sets and models into the artifact store and point their rows at it (idempotent)."""
    from qhw.store.catalogue import push_artifacts

    store = app.store()
    target = store.artifacts
    target.check_reachable()
    report = push_artifacts(store.catalogue, target)
    data = {"store": target.shown, "feature_sets": report.feature_sets, "models": report.models, "objects_copied": report.objects,
            "skipped": list(report.skipped)}
    if as_json:
        _emit(data, True)
    else:
        click.echo(
            f"{target.shown}: {report.feature_sets} feature set(s) and {report.models} model(s) moved in, {report.objects} object(s) copied"
        )
    for reason in report.skipped:
        click.echo(f"skipped: {reason}", err=True)


@artifacts.command("check")
@click.option("--clean", is_flag=True, help="Also remove temporary objects of writes that were cut off (untouched for an hour).")
@json_option
@pass_app
def artifacts_check(app: _App, clean, as_json) -> None:
    """List objects no row names (left by a command killed between an object and its row), rows whose objects are
    missing or damaged, and temporary objects of writes (a push killed while copying leaves one)."""
    from qhw.store.catalogue import check_artifacts

    store = app.store()
    report = check_artifacts(store.catalogue, store.artifacts, clean=clean)
    target = store.artifacts
    if as_json:
        _emit(
            {"store": target.shown, "unreferenced": list(report.unreferenced), "missing": list(report.missing),
             "damaged": list(report.damaged), "partial": list(report.partial), "stale_partial": list(report.stale),
             "removed": list(report.removed)},
            True,
        )
        return
    click.echo(
        f"{target.shown}: {len(report.unreferenced)} object(s) no row names, {len(report.missing)} row(s) missing their object, "
        f"{len(report.damaged)} damaged, {len(report.partial)} temporary object(s) ({len(report.stale)} left by writes cut off)"
    )
    for digest in report.unreferenced:
        click.echo(f"unreferenced: sha256:{digest}")
    for line in report.missing:
        click.echo(f"missing: {line}")
    for line in report.damaged:
        click.echo(f"damaged: {line}")
    for path in report.partial:
        click.echo(f"{'stale partial' if path in report.stale else 'partial'}: {path}")
    for path in report.removed:
        click.echo(f"removed: {path}")
    if report.stale and not clean:
        click.echo("`qhw artifacts check --clean` removes the stale temporary objects", err=True)


# --- reports -----------------------------------------------------------------------


@main.group(cls=_Group)
def reports() -> None:
    """Comparison reports, kept in the artifact store for the whole team."""


@reports.command("list")
@json_option
@pass_app
def reports_list(app: _App, as_json) -> None:
    """Every comparison report, with the runs it compares."""
    _emit(
        [
            {"report": r.id, "created": r.created_at, "simulator_run": r.simulator_run, "hardware_runs": list(r.hardware_runs), "object": r.artifacts}
            for r in app.store().catalogue.reports()
        ],
        as_json,
        title="reports",
    )


@reports.command("get")
@click.argument("report_id", type=ID)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Folder to write it to (default: under QHW_HOME/reports/).")
@pass_app
def reports_get(app: _App, report_id, out) -> None:
    """Fetch a report from the artifact store (checked) into a folder, and print its index."""
    from qhw.report import fetch_report

    store = app.store()
    click.echo(fetch_report(store, store.catalogue.report(report_id), out))


# --- MLflow ------------------------------------------------------------------------


@main.group("mlflow", cls=_Group)
def mlflow_group() -> None:
    """The ledger's runs, models and comparisons in MLflow, the experiment tracker (pip install 'qhw[mlflow]')."""


@mlflow_group.command("log")
@click.option("--run", "run_ids", multiple=True, type=ID, help="A run to log (repeatable).")
@click.option("--model", "model_ids", multiple=True, type=ID, help="A trained model to log, nested under its run (repeatable).")
@click.option("--report", "report_ids", multiple=True, type=ID, help="A comparison to log, by its report id (`qhw reports list`; repeatable).")
@click.option("--all", "everything", is_flag=True, help="Every feature set, run, model and comparison of the ledger.")
@click.option("--tracking-uri", help="The MLflow tracking URI (default: MLFLOW_TRACKING_URI, else MLflow's own default).")
@click.option(
    "--experiment",
    help="The MLflow experiment (default: MLFLOW_EXPERIMENT_NAME, else one named after this ledger: 'qhw <its URL>').",
)
@json_option
@pass_app
def mlflow_log(app: _App, run_ids, model_ids, report_ids, everything, tracking_uri, experiment, as_json) -> None:
    """Log to MLflow, one MLflow run for each qhw object, found again by its tags:
    logging again updates it and never makes a second."""
    from qhw.tracking import log_objects, open_tracker

    if not (run_ids or model_ids or report_ids or everything):
        raise click.UsageError("name what to log: --run, --model, --report, or --all")
    if everything and (run_ids or model_ids or report_ids):
        raise click.UsageError("--all logs everything; leave out --run, --model and --report")
    store = app.store()
    for run_id in run_ids:  # unknown ids refused before MLflow is asked anything
        store.ledger.run(run_id)
    for model_id in model_ids:
        store.catalogue.model(model_id)
    for report_id in report_ids:
        store.catalogue.report(report_id)
    tracker = open_tracker(store, tracking_uri=tracking_uri, experiment=experiment)
    if not as_json:
        click.echo(f"logging to MLflow experiment {tracker.experiment_name!r} (id {tracker.experiment_id}) at {tracker.shown_uri}", err=True)
    logged = log_objects(
        store, tracker, runs=run_ids, models=model_ids, reports=report_ids, everything=everything,
        on_logged=None if as_json else lambda item: _say_logged(tracker, item),
    )
    if as_json:
        _emit({"tracking_uri": tracker.shown_uri, "experiment": tracker.experiment_name, "experiment_id": tracker.experiment_id,
               "logged": [item.to_dict() for item in logged]}, True)


# --- database ----------------------------------------------------------------------


@main.group(cls=_Group)
def db() -> None:
    """Manage the tracking database schema."""


@db.command()
@pass_app
def upgrade(app: _App) -> None:
    """Upgrade the database schema to this qhw's version."""
    before, after = app.store(check_schema=False).upgrade()
    click.echo(f"database at {after} (was {before or 'empty'})")


@db.command()
@pass_app
def current(app: _App) -> None:
    """Print the database's schema revision and this qhw's."""
    from qhw import schema

    revision = app.store(check_schema=False).database.revision()
    click.echo(f"database: {revision or 'empty'}; qhw: {schema.head_revision()}")
