"""Runs as a researcher asks about them: what ran where and when, on which
qubits at what calibration, how far along, and what it cost.

Everything here reads what the database stored at submit and collect time:
no adapter is built and no provider is asked, so a run can be described
without credentials, years later.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from qhw import config
from qhw.errors import ParameterError
from qhw.jobstates import FINAL_STATES, JobState
from qhw.pricing import usd
from qhw.quality import RunQuality, run_quality
from qhw.records import DEVICE_NAME_KEY, SPLIT_NAMES, CalibrationSnapshot, JobRecord, RunRecord
from qhw.store import Store

#: Device kinds that cost money, for runs from before qhw kept price tables.
PAID_KINDS = ("hardware", "managed simulator")


@dataclass(frozen=True)
class Cost:
    """A run's estimated and actual cost in USD.

    ``actual_usd`` is None when it cannot be known (a finished job that was
    not priced: no usage reported, no price for the device); it is never 0
    for lack of knowledge. Unfinished jobs are left out ("so far").
    """

    estimate_usd: float | None
    actual_usd: float | None
    priced_usd: float  # the sum of the finished jobs that were priced
    unpriced_jobs: int
    unfinished_jobs: int
    finished_jobs: int
    free: bool
    usage_pending_jobs: int = 0  # finished, but the provider's usage is not final yet

    @property
    def actual_text(self) -> str:
        if self.free:
            return "free"
        if not self.finished_jobs:
            return f"not yet known ({self.unfinished_jobs} job(s) unfinished)" if self.unfinished_jobs else "unknown"
        so_far = f" so far ({self.unfinished_jobs} job(s) unfinished)" if self.unfinished_jobs else ""
        if self.actual_usd is not None:
            return f"{usd(self.actual_usd)}{so_far}"
        pending = f"; the provider has not reported the final usage of {self.usage_pending_jobs} job(s)" if self.usage_pending_jobs else ""
        if self.priced_usd > 0:
            return f"unknown (at least {usd(self.priced_usd)}; {self.unpriced_jobs} job(s) unpriced{pending}){so_far}"
        return f"unknown ({pending[2:]})" if pending else "unknown"

    @property
    def estimate_text(self) -> str:
        return "free" if self.free else ("unknown" if self.estimate_usd is None else usd(self.estimate_usd))


@dataclass(frozen=True)
class RunOverview:
    run: int
    backend: str
    device_kind: str
    device: str
    created: datetime
    split: str
    shots: int
    samples: int  # collected (every circuit stored)
    n_samples: int
    jobs_by_state: dict[str, int]
    cost: Cost
    # What the provider reported the finished jobs used, in its own unit (IBM:
    # "RU", resource units; "QPU s" before them); None: nothing reported.
    usage: float | None = None
    usage_unit: str | None = None
    copies: int = 1
    reuse: int = 1
    executions: int = 0  # executions the run's jobs send (a packed one carries copies x reuse samples)

    @property
    def usage_text(self) -> str:
        return "" if self.usage is None else f"{self.usage:,.3g} {self.usage_unit}"

    def to_dict(self) -> dict:
        return {
            "run": self.run,
            "backend": self.backend,
            "device_kind": self.device_kind,
            "device": self.device,
            "created": self.created.isoformat(),
            "split": self.split,
            "shots": self.shots,
            "samples_collected": self.samples,
            "samples": self.n_samples,
            "jobs": self.jobs_by_state,
            "estimated_cost_usd": self.cost.estimate_usd,
            "actual_cost_usd": self.cost.actual_usd,
            "actual_cost": self.cost.actual_text,
            "usage": self.usage,
            "usage_unit": self.usage_unit,
            "copies": self.copies,
            "reuse": self.reuse,
            "executions": self.executions,
        }


@dataclass(frozen=True)
class FailedExecution:
    """An execution a provider failed that has no stored result yet."""

    job: int
    purpose: str
    execution: int
    sample: str | None  # "test#12", the sample it measures ("calibration" executions: None)
    circuit: int | None
    reason: str
    retry_job: int | None  # the job `qhw retry` made to run it again

    def to_dict(self) -> dict:
        return dict(vars(self))


@dataclass(frozen=True)
class RunDetails:
    overview: RunOverview
    feature_set: int
    seed: int | None
    layout: tuple[int, ...]
    depth: int
    two_qubit_gates: int
    mitigation: str | None
    calibration: CalibrationSnapshot | None
    calibration_age: timedelta | None  # the calibration's age when the run was submitted
    job_errors: list[tuple[int, str, str]]  # (job, state, error)
    failed_executions: list[FailedExecution] = field(default_factory=list)
    prices: list[tuple[str, str]] = field(default_factory=list)  # (price, where it came from), for a paid run
    device_mitigation: str | None = None  # IBM's own, asked of its sampler (--mitigate twirling, dd...), as --mitigate writes it
    # Each copy of a packed run: (its physical qubits, its estimated error when the partition gave one).
    copies: list[tuple[tuple[int, ...], float | None]] = field(default_factory=list)
    # The provider's own estimate of the run's QPU time (IBM's usage_estimation), over the jobs it gave one.
    provider_estimate_seconds: float | None = None
    adaptive: AdaptiveProgress | None = None  # an adaptive run's rounds and shots
    # The feature map: its name, qubits, parameters and circuits a sample, and that as one line.
    feature_map: dict = field(default_factory=dict)
    feature_map_text: str = ""
    rep_delay: float | None = None  # the rep_delay the run asked for (None: the device's default)
    engine: str | None = None  # how an emulation computed the run (None: its backend has one way)
    engine_note: str | None = None  # why not the engine asked for, if so
    noise: str | None = None  # what --noise added to the emulated device's noise (its SPEC)
    noise_factors: dict[int, float] = field(default_factory=dict)  # job -> its drift factor, where drawn
    quality: RunQuality | None = None  # its circuits against their exact answers, by copy, position and job

    def to_dict(self) -> dict:
        calibration = None
        if self.calibration is not None:
            calibration = {
                **self.calibration.to_dict(),
                "age_at_run_hours": None if self.calibration_age is None else self.calibration_age.total_seconds() / 3600,
                "has_properties_document": self.calibration.properties is not None,
            }
        return {
            **self.overview.to_dict(),
            "feature_set": self.feature_set,
            "feature_map": self.feature_map,
            "seed": self.seed,
            "layout": list(self.layout),
            "rep_delay": self.rep_delay,
            "engine": self.engine,
            "engine_note": self.engine_note,
            "noise": self.noise,
            "noise_factors": [{"job": job, "factor": factor} for job, factor in sorted(self.noise_factors.items())],
            "quality": None if self.quality is None else self.quality.to_dict(),
            "copies": [
                {"copy": index, "qubits": list(qubits), "estimated_error": error} for index, (qubits, error) in enumerate(self.copies)
            ],
            "provider_estimated_quantum_seconds": self.provider_estimate_seconds,
            "transpiled_depth": self.depth,
            "two_qubit_gates": self.two_qubit_gates,
            "mitigation": self.mitigation,
            "device_mitigation": self.device_mitigation,
            "calibration": calibration,
            "job_errors": [{"job": job, "state": state, "error": error} for job, state, error in self.job_errors],
            "failed_executions": [failure.to_dict() for failure in self.failed_executions],
            "prices": [{"price": price, "source": source} for price, source in self.prices],
            "adaptive": None if self.adaptive is None else self.adaptive.to_dict(),
        }


@dataclass(frozen=True)
class AdaptiveProgress:
    """An adaptive run so far: its rounds, and the shots used against the worst
    case (every sample to --shots); its cost so far is the run's actual cost."""

    rule: str
    first_shots: int
    max_shots: int
    round: int  # the newest round started (0 is the first)
    rounds: int  # the most it can have
    rounds_done: bool
    shots_used: int  # over the samples' executions (calibrations left out)
    worst_case_shots: int
    samples_by_shots: dict[int, int]  # shots a collected sample has had -> samples

    def to_dict(self) -> dict:
        return {**vars(self), "samples_by_shots": {str(k): v for k, v in sorted(self.samples_by_shots.items())}}


def run_cost(run: RunRecord, jobs: list[JobRecord]) -> Cost:
    """The run's estimate, and what its finished jobs cost (see Cost)."""
    free = run.prices is None and run.device_kind not in PAID_KINDS
    finished = [job for job in jobs if job.state in FINAL_STATES]
    unpriced = [job for job in finished if job.cost_usd is None]
    priced = sum(job.cost_usd for job in finished if job.cost_usd is not None)
    return Cost(
        estimate_usd=run.cost_estimate_usd,
        actual_usd=0.0 if free else (None if unpriced or not finished else priced),
        priced_usd=priced,
        unpriced_jobs=len(unpriced),
        unfinished_jobs=len(jobs) - len(finished),
        finished_jobs=len(finished),
        free=free,
        usage_pending_jobs=sum(1 for job in finished if job.usage_pending),
    )


def run_overviews(store: Store) -> list[RunOverview]:
    """One line per run, oldest first."""
    jobs_of: dict[int, list[JobRecord]] = {}
    for job in store.ledger.jobs():
        jobs_of.setdefault(job.run_id, []).append(job)
    samples = store.results.samples_by_run()
    return [_overview(run, jobs_of.get(run.id, []), samples.get(run.id, 0)) for run in store.ledger.runs()]


def run_details(store: Store, run_id: int | None = None) -> RunDetails:
    """Everything stored about one run (the newest when None)."""
    from qhw import circuits

    run = store.ledger.run(run_id)
    jobs = store.ledger.jobs(run.id)
    overview = _overview(run, jobs, store.results.count_samples(run.id))
    circuit = circuits.from_qpy(store.ledger.run_circuit(run.id).qpy)
    snapshot = store.ledger.device_snapshot(run.id)
    calibration = None if snapshot is None else snapshot[0]
    age = None
    if calibration is not None and calibration.calibrated_at is not None:
        age = run.created_at - calibration.calibrated_at
    feature_set = store.catalogue.feature_set(run.feature_set_id)
    return RunDetails(
        overview=overview,
        feature_set=run.feature_set_id,
        feature_map={
            "name": feature_set.feature_map,
            "qubits": feature_set.num_qubits,
            "parameters": feature_set.num_parameters,
            "circuits_per_sample": feature_set.circuits_per_sample,
        },
        feature_map_text=feature_set.describe_map(),
        rep_delay=run.rep_delay,
        engine=run.engine,
        engine_note=run.engine_note,
        noise=None if run.noise is None else run.noise.text(),
        noise_factors={job.id: job.noise_factor for job in jobs if job.noise_factor is not None},
        quality=run_quality_of(store, run),
        seed=run.seed,
        layout=run.layout,
        copies=_copies(run),
        provider_estimate_seconds=_provider_estimate(store.ledger.jobs(run.id)),
        depth=circuit.depth(),
        two_qubit_gates=sum(1 for instruction in circuit.data if len(instruction.qubits) == 2 and instruction.operation.name != "barrier"),
        mitigation=run.mitigation,
        device_mitigation=None if run.device_mitigation is None else run.device_mitigation.text(),
        calibration=calibration,
        calibration_age=age,
        job_errors=[(job.id, job.state.value, job.error) for job in jobs if job.error],
        failed_executions=_failed_executions(store, run),
        prices=_price_sources(run),
        adaptive=_adaptive_progress(store, run),
    )


def _adaptive_progress(store: Store, run: RunRecord) -> AdaptiveProgress | None:
    rounds = run.adaptive
    if rounds is None:
        return None
    shots = store.results.run_counts(run.id).shots_each.max(axis=1, initial=0)
    values, counts = np.unique(shots, return_counts=True)
    return AdaptiveProgress(
        rule=rounds.rule(),
        first_shots=rounds.first_shots,
        max_shots=rounds.max_shots,
        round=run.round,
        rounds=rounds.rounds,
        rounds_done=run.rounds_done,
        shots_used=store.results.shots_used(run.id),
        worst_case_shots=run.n_samples * run.circuits_per_sample * run.shots,
        samples_by_shots={int(v): int(c) for v, c in zip(values, counts, strict=True)},
    )


def _failed_executions(store: Store, run: RunRecord) -> list[FailedExecution]:
    """The executions providers failed that still have no stored result, with
    the sample (split and index within it) and circuit each would measure."""
    failures = store.ledger.execution_failures(run.id)
    if not failures:
        return []
    order = store.ledger.run_circuit(run.id).sample_order
    stored = store.results.stored_keys(run.id)
    calibrated = set(store.results.calibration(run.id))
    k = run.circuits_per_sample
    latest: dict[tuple[str, int], FailedExecution] = {}
    for failure in failures:
        if failure.purpose == "calibration":
            slot, state = failure.execution % run.slots, failure.execution // run.slots
            if (slot, (0, 2**run.num_qubits - 1)[state]) in calibrated:
                continue
            sample, circuit = None, None
        else:
            split, index = order[failure.execution // k]
            key = (SPLIT_NAMES[int(split)], int(index), failure.execution % k)
            if key in stored:
                continue
            sample, circuit = f"{key[0]}#{key[1]}", key[2]
        latest[(failure.purpose, failure.execution)] = FailedExecution(
            job=failure.job_id, purpose=failure.purpose, execution=failure.execution, sample=sample, circuit=circuit,
            reason=failure.reason, retry_job=failure.retry_job_id,
        )
    return list(latest.values())


def _price_sources(run: RunRecord) -> list[tuple[str, str]]:
    """Each price of a paid run that did not come from qhw's own table, and where it came from."""
    table = run.prices
    if table is None:
        return []
    return [(name, table.sources[name]) for name in sorted(table.sources)]


def _overview(run: RunRecord, jobs: list[JobRecord], samples: int) -> RunOverview:
    states = Counter(job.state.value for job in jobs)
    usage, unit = _usage(jobs)
    return RunOverview(
        run=run.id,
        backend=run.backend,
        device_kind=run.device_kind,
        device=run.device_label,
        created=run.created_at,
        split=run.split,
        shots=run.shots,
        samples=samples,
        n_samples=run.n_samples,
        jobs_by_state={state.value: states[state.value] for state in JobState if states[state.value]},
        cost=run_cost(run, jobs),
        usage=usage,
        usage_unit=unit,
        copies=run.copies,
        reuse=run.reuse,
        executions=sum(job.sent(run.slots) for job in jobs),
    )


def _usage(jobs: list[JobRecord]) -> tuple[float | None, str | None]:
    """The usage the provider reported over a run's jobs, in its own unit: its
    resource units where every reporting job gave them, else its QPU seconds."""
    units = [job.usage_value for job in jobs if job.usage_value is not None]
    if units and all(job.usage_value is not None or job.quantum_seconds is None for job in jobs):
        names = {job.usage_unit for job in jobs if job.usage_value is not None}
        return float(sum(units)), names.pop() if len(names) == 1 else "mixed units"
    seconds = [job.quantum_seconds for job in jobs if job.quantum_seconds is not None]
    return (float(sum(seconds)), "QPU s") if seconds else (None, None)


def export_device_properties(store: Store, run_id: int, out) -> Path:
    """Write the Braket device properties document stored with a run, as a
    file that ``braket_emulator:<FILE>`` takes.

    Raises:
        NotFoundError: the run kept no properties document (only Braket QPUs and
            their emulations have one).
    """
    from qhw.errors import NotFoundError

    run = store.ledger.run(run_id)
    snapshot = store.ledger.device_snapshot(run.id)
    calibration = None if snapshot is None else snapshot[0]
    if calibration is None or calibration.properties is None:
        raise NotFoundError(f"run {run.id} ({run.backend}) kept no device properties document: only Braket QPU runs have one")
    properties = calibration.properties
    out = Path(out)
    if out.suffix != ".json":
        raise ParameterError("properties_out", f"must name a .json file, got {out}")
    config.writable_dir(out.parent if str(out.parent) else Path("."), "--properties-out's folder")
    arn = run.backend[len("braket:") :] if run.backend.startswith("braket:") else None
    document = json.loads(properties)
    document[DEVICE_NAME_KEY] = {"name": calibration.device, "arn": arn}
    try:
        with config.writing(out):
            out.write_text(json.dumps(document, indent=2, sort_keys=True))
    except BaseException:
        out.unlink(missing_ok=True)  # no half-written file
        raise
    return out


def _copies(run) -> list[tuple[tuple[int, ...], float | None]]:
    """Each copy's qubits, and its estimated error as the partition gave it."""
    errors = (run.packing.estimated_errors if run.packing else None) or (None,) * run.copies
    return [(run.copy_layout(copy), errors[copy]) for copy in range(run.copies)]


def _provider_estimate(jobs: list[JobRecord]) -> float | None:
    """The provider's estimates of the jobs' QPU time, summed; None when it gave none."""
    known = [job.provider_estimate_seconds for job in jobs if job.provider_estimate_seconds is not None]
    return sum(known) if known else None


def run_quality_of(store: Store, run: RunRecord) -> RunQuality:
    """A run's quality (every result it stored, superseded ones too: what the
    device did), by its own rule or floor, with what --quality auto did."""
    quality = run_quality(*store.results.fidelities(run.id), floor=run.quality_floor)
    return dataclasses.replace(
        quality, mode=run.quality, excluded_slots=run.excluded_slots, repaired=store.results.repaired(run.id),
        log=tuple((run.quality_log or "").splitlines()),
    )
