"""Frozen records handed out by the store; the ORM never leaves qhw.store."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


class JobState(str, enum.Enum):
    """Normalised job states; each adapter maps its provider's states onto these."""

    PENDING = "pending"  # row written, provider not yet called (or call not confirmed)
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # finished at the provider, results not yet stored
    COLLECTED = "collected"  # results stored
    FAILED = "failed"
    CANCELLED = "cancelled"


#: States in which the provider still owes us something; every other state is final.
UNFINISHED_STATES = frozenset({JobState.PENDING, JobState.QUEUED, JobState.RUNNING, JobState.DONE})

SPLIT_CODES = {"train": 0, "test": 1}
SPLIT_NAMES = {code: name for name, code in SPLIT_CODES.items()}


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
    artifact_dir: Path

    @property
    def circuits_per_sample(self) -> int:
        return self.components // 5


@dataclass(frozen=True)
class RunRecord:
    id: int
    created_at: datetime
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

    @property
    def executions(self) -> int:
        return self.execution_stop - self.execution_start


@dataclass(frozen=True)
class ModelRecord:
    id: int
    created_at: datetime
    kind: str
    feature_set_id: int
    run_id: int | None
    train_samples: int
    epochs: int
    seed: int
    weights_path: Path


@dataclass(frozen=True)
class EvaluationRecord:
    id: int
    model_id: int
    run_id: int | None
    accuracy: float
    test_samples: int
