"""Stateful fakes of IBM Quantum and Amazon Braket at the provider-client boundary.

Each fake service keeps its jobs in a dict that outlives every adapter (a new
adapter built from the database alone finds them again, as after a restart).
Jobs step one state per status call: queued -> running -> done, or -> failed
with a reason; cancel() makes them cancelled. Their shots are real: Aer for
IBM, Braket's LocalSimulator for Braket.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from qiskit_ibm_runtime.fake_provider import FakeManilaV2

# --- IBM Quantum -------------------------------------------------------------------------


@dataclass
class FakeRuntimeJob:
    job_id_: str
    result_: Any
    steps: list[str]
    tags: list[str]
    in_batch: bool
    error: str | None = None
    polls: int = 0
    cancelled: bool = False

    def job_id(self) -> str:
        return self.job_id_

    def status(self) -> str:
        if self.cancelled:
            return "CANCELLED"
        state = self.steps[min(self.polls, len(self.steps) - 1)]
        self.polls += 1
        return state

    def error_message(self) -> str | None:
        return self.error

    def result(self):
        if self.error:
            raise RuntimeError(self.error)
        return self.result_

    def cancel(self) -> None:
        self.cancelled = True

    def usage(self) -> float:
        return 1.25


class FakeRuntimeService:
    """QiskitRuntimeService's surface that qhw uses: backend(name) and job(id)."""

    def __init__(self, fail_next: str | None = None) -> None:
        self.jobs: dict[str, FakeRuntimeJob] = {}
        self.fail_next = fail_next
        self.operational = True

    def backend(self, name: str):
        device = FakeManilaV2()  # a real 5-qubit target with calibrated noise
        device.name = name
        service = self

        class _Status:
            operational = service.operational
            status_msg = "calibrating" if not service.operational else "active"

        device.status = lambda: _Status()
        return device

    def job(self, job_id: str) -> FakeRuntimeJob:
        if job_id not in self.jobs:
            from qiskit_ibm_runtime.exceptions import RuntimeJobNotFound

            raise RuntimeJobNotFound(f"Job not found: {job_id}")
        return self.jobs[job_id]


class FakeSampler:
    """SamplerV2's surface: options.environment.job_tags and run(pubs, shots)."""

    def __init__(self, service: FakeRuntimeService, mode: Any) -> None:
        self.service = service
        self.mode = mode
        self.options = SimpleNamespace(environment=SimpleNamespace(job_tags=[]), simulator=SimpleNamespace())

    def run(self, pubs, shots):
        from qiskit_aer.primitives import SamplerV2

        result = SamplerV2(seed=11).run(pubs, shots=shots).result()
        job_id = f"d{uuid.uuid4().hex[:19]}"
        error = self.service.fail_next
        steps = ["QUEUED", "RUNNING", "ERROR" if error else "DONE"]
        self.service.jobs[job_id] = FakeRuntimeJob(
            job_id, result, steps, list(self.options.environment.job_tags), type(self.mode).__name__ == "Batch", error
        )
        return self.service.jobs[job_id]


# --- Amazon Braket ---------------------------------------------------------------------------

_task_numbers = itertools.count(1)


@dataclass
class _BraketTaskRecord:
    result: Any
    steps: list[str]
    tags: dict[str, str]
    executables: int
    failure: str | None = None
    polls: int = 0
    cancelled: bool = False


@dataclass
class FakeBraketCloud:
    """AwsDevice(arn) and AwsQuantumTask(arn) backed by one shared task store."""

    status: str = "ONLINE"
    shots_range: tuple[int, int] = (1, 50_000)
    fail_tasks: str | None = None
    tasks: dict[str, _BraketTaskRecord] = field(default_factory=dict)

    def device(self, arn: str):
        return _FakeAwsDevice(self, arn)

    def task(self, arn: str):
        return _FakeAwsTask(self, arn)  # like AwsQuantumTask, it asks the service only when used


class _FakeAwsDevice:
    def __init__(self, cloud: FakeBraketCloud, arn: str) -> None:
        from braket.aws import AwsDeviceType
        from braket.devices import LocalSimulator

        self._cloud = cloud
        self._simulator = LocalSimulator("braket_sv")
        self.arn = arn
        self.name = arn.rsplit("/", 1)[-1]
        self.type = AwsDeviceType.SIMULATOR
        self.status = cloud.status
        self.topology_graph = None
        properties = self._simulator.properties.copy(deep=True)
        properties.service.shotsRange = cloud.shots_range
        self.properties = properties

    def run(self, program_set, shots=None, tags=None):
        result = self._simulator.run(program_set, shots=None).result()
        arn = f"arn:aws:braket:us-east-1:000000000000:quantum-task/{next(_task_numbers):08d}-{uuid.uuid4().hex[:8]}"
        final = "FAILED" if self._cloud.fail_tasks else "COMPLETED"
        self._cloud.tasks[arn] = _BraketTaskRecord(
            result, ["QUEUED", "RUNNING", final], dict(tags or {}), program_set.total_executables, self._cloud.fail_tasks
        )
        return SimpleNamespace(id=arn)


class _FakeAwsTask:
    def __init__(self, cloud: FakeBraketCloud, arn: str) -> None:
        self._cloud = cloud
        self.id = arn

    @property
    def _record(self) -> _BraketTaskRecord:
        if self.id not in self._cloud.tasks:
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": f"No task {self.id}"}}, "GetQuantumTask"
            )
        return self._cloud.tasks[self.id]

    def state(self) -> str:
        record = self._record
        if record.cancelled:
            return "CANCELLED"
        state = record.steps[min(record.polls, len(record.steps) - 1)]
        record.polls += 1
        return state

    def metadata(self) -> dict:
        return {"failureReason": self._record.failure} if self._record.failure else {}

    def result(self):
        return None if self._record.failure else self._record.result

    def cancel(self) -> None:
        self._record.cancelled = True
