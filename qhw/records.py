"""Frozen records handed out by the store.

The ORM never leaves qhw.store; everything else sees these records. The
splits, purposes and device kinds are declared here once; the database's
CHECK constraints are built from them (the job states' from qhw.jobstates).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from qhw.device_mitigation import DeviceMitigation
from qhw.errors import ParameterError
from qhw.jobstates import JobState
from qhw.noise import NoiseSpec
from qhw.pricing import PriceTable

if TYPE_CHECKING:
    import numpy as np


#: Split names and their codes in a run's stored sample order.
SPLIT_CODES = {"train": 0, "test": 1}
SPLIT_NAMES = {code: name for name, code in SPLIT_CODES.items()}
SPLITS = tuple(SPLIT_CODES)
RUN_SPLITS = (*SPLITS, "all")
#: How the hybrid classifier reads a run's outcome probabilities (qhw.training.Readout).
PROBABILITIES = "probabilities"
OBSERVABLES = "observables"
READOUTS = (PROBABILITIES, OBSERVABLES)
JOB_PURPOSES = ("samples", "calibration")
#: --quality: "auto" repairs what the quality check flags (qhw.repair), "off" only measures.
QUALITY_MODES = ("auto", "off")
#: What ran a run, in the words every report uses. An emulation (a noise model
#: of a named device) is never called hardware; a simulator without noise is a
#: simulator, however it is implemented.
DEVICE_KINDS = ("simulator", "emulation", "managed simulator", "hardware")


def ceil_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded up, in integers: the executions that
    carry ``numerator`` logical ones, ``denominator`` to an execution."""
    return -(-numerator // denominator)


@dataclass(frozen=True)
class FeatureSetRecord:
    id: int
    created_at: datetime
    dataset: str
    dataset_fingerprint: str
    seed: int
    components: int
    latent_dim: int
    epochs: int
    n_train: int
    n_test: int
    reconstruction_mse: float
    # Its files: an artifact store reference (sha256:..., a manifest), or for
    # a set from before the store, the folder in the home that holds them.
    artifacts: str
    # The feature map (qhw.feature_maps) and its template, as every run of
    # this set binds it (qhw.feature_maps.template_of reads it back).
    feature_map: str
    num_qubits: int
    num_parameters: int
    reps: int | None
    angle_range: tuple[float, float]
    template_qpy: bytes
    template_qasm3: str
    source_sha256: str | None = None

    @property
    def circuits_per_sample(self) -> int:
        return self.components // self.num_parameters

    def describe_map(self) -> str:
        """One line: the map, its qubits, parameters and circuits a sample."""
        noun = "circuit" if self.circuits_per_sample == 1 else "circuits"
        return (
            f"{self.feature_map}: {self.num_qubits} qubits, {self.num_parameters} parameters, "
            f"{self.circuits_per_sample} {noun} a sample"
        )


@dataclass(frozen=True)
class Packing:
    """How qhw.packing placed a run's copies: the spacing it kept between them
    and each copy's estimated error (both None where no partition placed them:
    the compiler's one copy, or a simulator's copies)."""

    spacing: int | None = None
    estimated_errors: tuple[float | None, ...] | None = None


# --- an adaptive run's settings (qhw.adaptive) ---------------------------------------------------

#: Round 0 gives S // FIRST_ROUND_DIVISOR shots, and never fewer than MIN_FIRST_SHOTS.
FIRST_ROUND_DIVISOR = 8
MIN_FIRST_SHOTS = 32
#: The model's rule: the share of posterior draws that must agree, how many are
#: drawn, and the prior pseudo-count of each outcome. CONFIDENCE was chosen on
#: mnist-5k's fake_manila and packed fake_fez runs (benchmarks/adaptive.py):
#: 0.95 kept the accuracy with half the shots; 0.85 keeps it within a point with
#: about a third; 0.8 begins to cost accuracy on fake_fez.
CONFIDENCE = 0.85
DRAWS = 64
PRIOR = 1 / 32
#: The rule without a model: Hellinger distance between a sample's frequencies
#: before and after a round. Shot noise alone moves a 5-qubit sample's
#: frequencies by about 0.09 from 256 to 512 shots and 0.06 from 512 to 1,024:
#: 0.1 stops a sample whose distribution moves no more than that noise at 512.
TOLERANCE = 0.1


@dataclass(frozen=True)
class AdaptiveSettings:
    """How an adaptive run measures (qhw.adaptive explains its rules), kept with the run."""

    max_shots: int
    first_shots: int
    model_id: int | None = None
    confidence: float = CONFIDENCE
    draws: int = DRAWS
    tolerance: float = TOLERANCE
    prior: float = PRIOR

    @classmethod
    def for_shots(cls, max_shots: int, model_id: int | None = None) -> AdaptiveSettings:
        """The settings of an adaptive run of at most ``max_shots`` a sample.

        Raises:
            ConfigError: ``max_shots`` is below the first round.
        """
        first = max(max_shots // FIRST_ROUND_DIVISOR, MIN_FIRST_SHOTS)
        if max_shots < first:
            shots = ParameterError.ref("shots")
            raise ParameterError(
                "adaptive", f": {shots} {max_shots} is below the first round's {first} shots a sample; give {shots} {MIN_FIRST_SHOTS} or more"
            )
        return cls(max_shots=max_shots, first_shots=first, model_id=model_id)

    @property
    def totals(self) -> list[int]:
        """A sample's shots after each round: first, doubled each round, capped at max_shots."""
        totals = [self.first_shots]
        while totals[-1] < self.max_shots:
            totals.append(min(2 * totals[-1], self.max_shots))
        return totals

    def round_shots(self, round: int) -> int:
        """The shots each execution of a round gets."""
        totals = self.totals
        return totals[round] - (totals[round - 1] if round else 0)

    @property
    def rounds(self) -> int:
        return len(self.totals)

    def rule(self) -> str:
        """The settling rule, in words."""
        if self.model_id is None:
            return f"frequencies moved by a Hellinger distance below {self.tolerance:g} in a round"
        return f"model {self.model_id} gives the same class on {self.confidence:.0%} of {self.draws} posterior draws"


@dataclass(frozen=True)
class RunSpec:
    """What a new run is: everything but the ids and timestamps the store assigns."""

    feature_set_id: int
    backend: str
    provider: str
    split: str
    shots: int
    num_qubits: int
    circuits_per_sample: int
    n_samples: int
    seed: int | None
    layout: tuple[int, ...]
    cost_estimate_usd: float | None
    mitigation: str | None = None
    # What ran it, as its adapter described it at submit time (qhw.backend.DEVICE_KINDS).
    device_kind: str = "simulator"
    device_label: str = ""
    # The price table in force at submit time (None for a free backend).
    prices: PriceTable | None = None
    # Copies of the template side by side in each execution (``layout`` lists
    # each copy's qubits in turn), and how qhw.packing placed them.
    copies: int = 1
    packing: Packing | None = None
    # An adaptive run's settings; None: every sample gets ``shots``.
    adaptive: AdaptiveSettings | None = None
    # Samples each copy's qubits run one after another in a shot (measured, then reset).
    reuse: int = 1
    # The pause between shots asked of the device, in seconds (None: its default).
    rep_delay: float | None = None
    # How an emulation computes the run (IBM's fakes: "density" or "aer"; None:
    # the backend has one way), and why it is not the one asked for, if so.
    engine: str | None = None
    engine_note: str | None = None
    # What --noise added to an emulated device's own noise; None: nothing.
    noise: NoiseSpec | None = None
    # --quality: "auto" leaves flagged copies and positions out and repairs
    # what they ran, within ``quality_reserve`` (a share of the run's planned
    # device time); "off" only measures. ``quality_floor``: a fixed floor in
    # place of the rule (qhw.quality.flagged).
    quality: str = "off"
    quality_floor: float | None = None
    quality_reserve: float = 0.1
    # IBM's own mitigation asked of its sampler (--mitigate twirling, dd...); None: none.
    device_mitigation: DeviceMitigation | None = None

    @property
    def slots(self) -> int:
        """Samples' executions one execution carries: copies times positions."""
        return self.copies * self.reuse

    def copy_layout(self, copy: int) -> tuple[int, ...]:
        """The physical qubits of one copy, in the template's qubit order."""
        return self.layout[copy * self.num_qubits : (copy + 1) * self.num_qubits]


@dataclass(frozen=True, kw_only=True)
class RunRecord(RunSpec):
    """A stored run: its spec, and what the store assigned."""

    id: int
    created_at: datetime
    round: int = 0  # an adaptive run's newest round
    rounds_done: bool = False  # an adaptive run's rounds have ended
    # --quality auto's doing (qhw.repair): the slots it left out of the jobs
    # not yet sent, the repairs it started, and what it did or did not, line by line.
    excluded_slots: tuple[int, ...] = ()
    repairs: int = 0
    repairs_done: bool = False  # a repair not sent (beyond the reserve) ends them
    quality_log: str | None = None


@dataclass(frozen=True)
class JobPlan:
    """One job of a run: executions [start, stop) of its purpose, or exactly
    the executions listed in ``indices`` (a retry of the ones a provider failed)."""

    execution_start: int
    execution_stop: int
    purpose: str = "samples"  # or "calibration"
    indices: tuple[int, ...] | None = None
    shots: int | None = None  # shots each execution gets; None: the run's
    round: int = 0  # the round of an adaptive run
    repair: int = 0  # the quality repair that made it (qhw.repair; 0: none)
    slots_used: tuple[int, ...] | None = None  # the slots its executions ride on (None: every slot)

    @classmethod
    def of(
        cls, indices: Iterable[int], purpose: str = "samples", *, shots: int | None = None, round: int = 0, repair: int = 0,
        slots_used: tuple[int, ...] | None = None,
    ) -> JobPlan:
        """A job of exactly these executions (a range when they are one)."""
        indices = tuple(sorted(int(i) for i in indices))
        start, stop = indices[0], indices[-1] + 1
        contiguous = stop - start == len(indices)
        return cls(start, stop, purpose, None if contiguous else indices, shots, round, repair, slots_used)

    @property
    def executions(self) -> int:
        return len(self.indices) if self.indices is not None else self.execution_stop - self.execution_start


@dataclass(frozen=True)
class JobRecord:
    id: int
    run_id: int
    position: int
    provider_job_id: str | None
    state: JobState
    execution_start: int
    execution_stop: int
    error: str | None
    updated_at: datetime
    quantum_seconds: float | None = None
    purpose: str = "samples"  # or "calibration"
    usage_value: float | None = None  # the provider's usage in a unit of its own (IBM: resource units)
    usage_unit: str | None = None
    # The ledger's own bookkeeping (see docs/ledger.md).
    idempotency_key: str = ""
    attempt: int = 1  # fresh submissions so far (`qhw retry` adds one)
    submit_started_at: datetime | None = None  # set, and committed, before the provider is called
    error_count: int = 0  # calls about the job that failed in a row (network, 429, 5xx...); `error` holds the last
    claimed_by: str | None = None
    lease_until: datetime | None = None
    cancel_requested_at: datetime | None = None
    duration_seconds: float | None = None  # a managed simulator's reported execution time
    cost_usd: float | None = None  # what it cost, once finished; None while unknown
    # Exactly the executions of the run this job carries, when they are not the
    # range [execution_start, execution_stop) (a retry of failed executables).
    indices: tuple[int, ...] | None = None
    usage_pending: bool = False  # the provider has not yet given its final usage (IBM)
    provider_estimate_seconds: float | None = None  # the provider's own estimate of its QPU time (IBM)
    round: int = 0  # the round of an adaptive run
    own_shots: int | None = None  # shots each execution gets, when not the run's (an adaptive round)
    noise_factor: float | None = None  # a --noise run's drift: this job's error rates times it
    repair: int = 0  # the quality repair that made it (qhw.repair; 0: none)
    # The slots (position * copies + copy) its executions ride on, in order;
    # None: every slot. A slot --quality auto flagged is left out (qhw.repair).
    slots_used: tuple[int, ...] | None = None

    def shots(self, run_shots: int) -> int:
        """Shots each of the job's executions gets (``run_shots``: its run's)."""
        return self.own_shots if self.own_shots is not None else run_shots

    def usage(
        self, shots: int, reported: ProviderUsage | None = None, state: JobState | None = None, *, copies: int = 1
    ) -> JobUsage:
        """This job as its adapter prices it (``reported``: fresh from the provider;
        ``copies``: a packed run's, ``copies`` logical executions to one sent)."""
        reported = reported or ProviderUsage(self.quantum_seconds, self.duration_seconds, value=self.usage_value, unit=self.usage_unit)
        return JobUsage(state or self.state, self.sent(copies), shots, reported)

    def sent(self, slots: int) -> int:
        """The executions it sends: its logical ones, one to each slot it uses (``slots``: its run's)."""
        return ceil_div(self.executions, slots if self.slots_used is None else len(self.slots_used))

    def places(self, slots: int) -> np.ndarray:
        """Where each of its logical executions rides in what it sends: place
        q is slot q % slots of sent execution q // slots. Every slot in turn,
        or only the slots it uses (the others carry filler, never read)."""
        import numpy as np

        i = np.arange(self.executions, dtype=np.int64)
        if self.slots_used is None:
            return i
        used = np.asarray(self.slots_used, dtype=np.int64)
        return (i // len(used)) * slots + used[i % len(used)]

    @property
    def executions(self) -> int:
        return len(self.indices) if self.indices is not None else self.execution_stop - self.execution_start

    @property
    def execution_indices(self) -> np.ndarray:
        """The run's executions this job carries, in the order it sent them."""
        import numpy as np

        if self.indices is not None:
            return np.asarray(self.indices, dtype=np.int64)
        return np.arange(self.execution_start, self.execution_stop, dtype=np.int64)

    @property
    def tags(self) -> list[str]:
        """The provider-side tags of this job; ``qhw-key`` finds it again after a crash."""
        return [f"qhw-run={self.run_id}", f"qhw-job={self.id}", f"qhw-key={self.idempotency_key}"]

    @property
    def may_exist_at_provider(self) -> bool:
        """A provider call was started: the provider may hold a job we have no id for."""
        return self.provider_job_id is not None or self.submit_started_at is not None


@dataclass(frozen=True)
class ExecutionFailureRecord:
    """An execution a provider failed inside a job that otherwise ran."""

    id: int
    run_id: int
    job_id: int
    attempt: int
    purpose: str
    execution: int  # of the run, within its purpose
    reason: str
    recorded_at: datetime
    retry_job_id: int | None  # the job that runs it again, once `qhw retry` made one


@dataclass(frozen=True)
class ProviderUsage:
    """What the provider reports of a finished job's use, where it reports anything."""

    quantum_seconds: float | None = None  # IBM Quantum's usage
    duration_seconds: float | None = None  # a managed simulator's execution time
    shots: int | None = None  # shots that ran, where the provider counts them (Braket)
    # False while the provider is still computing the figures (IBM reports 0
    # until then): they stay unknown, and later polls ask again.
    final: bool = True
    # The provider's own final word on the task, where it bills by it (Braket:
    # a FAILED or CANCELLED task is not billed, even with partial results).
    provider_state: str | None = None
    # The provider's own estimate of the job's QPU time, known once it has the
    # job (IBM's usage_estimation), whether or not the usage is final.
    estimated_quantum_seconds: float | None = None
    # The provider's usage in a unit of its own, where it bills by one (IBM's
    # resource units: ``value`` with ``unit`` "RU").
    value: float | None = None
    unit: str | None = None


@dataclass(frozen=True)
class JobUsage:
    """A finished job as its adapter prices it: what ran, what the provider reported."""

    state: JobState
    executions: int  # as sent (a packed execution carries several samples)
    shots: int  # per execution, as submitted
    reported: ProviderUsage = ProviderUsage()


@dataclass(frozen=True)
class QubitCalibration:
    """One physical qubit's calibration (None where the device does not say)."""

    qubit: int | str  # the device's own label
    t1_us: float | None
    t2_us: float | None
    readout_error: float | None
    gate_error: float | None  # a single-qubit gate's (IBM: sx; Braket: 1 - RB fidelity)


@dataclass(frozen=True)
class PairCalibration:
    """The error of one two-qubit gate between two of the qubits a run used."""

    qubits: tuple[int | str, int | str]
    gate: str
    error: float | None


#: A key qhw adds to the device documents it exports (Braket's parser ignores
#: unknown keys), so that an emulation can name the device its document came from.
DEVICE_NAME_KEY = "qhwDevice"


@dataclass(frozen=True)
class CalibrationSnapshot:
    """A device's calibration when a run was submitted, for the qubits it used."""

    device: str
    calibrated_at: datetime | None  # the calibration's own timestamp, as the provider gives it
    qubits: tuple[QubitCalibration, ...]
    pairs: tuple[PairCalibration, ...]
    properties: str | None = None  # the provider's whole device document (Braket), as returned

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "calibrated_at": None if self.calibrated_at is None else self.calibrated_at.isoformat(),
            "qubits": [vars(q) for q in self.qubits],
            "pairs": [{**vars(p), "qubits": list(p.qubits)} for p in self.pairs],
        }


@dataclass(frozen=True)
class JobEventRecord:
    """One line of a job's history: a state change or a change of provider job."""

    job_id: int
    at: datetime
    old_state: JobState | None
    new_state: JobState
    provider_job_id: str | None
    note: str | None


@dataclass(frozen=True)
class ModelSpec:
    kind: str
    feature_set_id: int
    run_id: int | None
    train_samples: int
    epochs: int  # the most it could run
    seed: int
    weights: str  # the .keras file: an artifact store reference, or (a model from before the store) its path
    epochs_run: int | None = None  # what it ran before early stopping (None: not recorded)
    readout: str | None = None  # a hybrid's (READOUTS); None: classical, or not recorded
    # Keras's history, epoch by epoch: (("loss", (2.3, 1.9, ...)), ("accuracy", ...), ...),
    # pairs rather than a dict so that the record stays hashable; None: not recorded.
    history: tuple[tuple[str, tuple[float, ...]], ...] | None = None


@dataclass(frozen=True, kw_only=True)
class ModelRecord(ModelSpec):
    id: int
    created_at: datetime


@dataclass(frozen=True)
class ReportRecord:
    id: int
    created_at: datetime
    simulator_run: int
    hardware_runs: tuple[int, ...]
    artifacts: str  # the artifact store's reference of its files' manifest


@dataclass(frozen=True)
class EvaluationRecord:
    id: int
    model_id: int
    run_id: int | None
    accuracy: float
    test_samples: int
    low: float | None = None  # the accuracy's 95 % bootstrap interval (None: not kept)
    high: float | None = None
