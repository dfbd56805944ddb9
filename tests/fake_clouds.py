"""Stateful fakes of IBM Quantum and Amazon Braket at the provider-client boundary.

Each fake cloud keeps its memory in a file (pickled, locked for every
operation), so that it outlives any adapter and any process, as a real cloud
does: a new adapter, or a new `qhw` process, finds every job again. Jobs step
one state per status call: queued -> running -> done, or -> failed with a
reason; cancel() makes an unfinished job cancelled. Their shots are real: Aer
for IBM, Braket's LocalSimulator for Braket.

Faults are injected where they happen, at the client boundary, and raise what
the real client libraries raise: a timeout, a 429 / throttling, a 5xx, a job
the provider "forgets" once, or the calling process killed (SIGKILL) just
before or just after the provider acted. See :meth:`FakeCloud.inject`.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import signal
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

STEPS = ["QUEUED", "RUNNING", "DONE"]


class FakeCloud:
    """A provider's memory in a file, and the faults waiting to happen."""

    def __init__(self, path: Path | str, **settings) -> None:
        self.path = Path(path)
        if not self.path.exists():
            self._save({"jobs": {}, "faults": [], "tokens": {}, "log": [], **self.defaults(), **settings})
        elif settings:
            with self.state() as state:
                state.update(settings)

    def defaults(self) -> dict:
        return {}

    # --- the file ------------------------------------------------------------------------

    @contextmanager
    def state(self) -> Iterator[dict]:
        """The cloud's memory, locked against other processes while in use."""
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = pickle.loads(self.path.read_bytes())
            try:
                yield state
            finally:  # what the cloud did stays done, even when it answers with an error
                self._save(state)

    def _save(self, state: dict) -> None:
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(pickle.dumps(state))
        os.replace(temporary, self.path)

    def _result_file(self, job_id: str) -> Path:
        import hashlib

        folder = self.path.with_suffix(".results")
        folder.mkdir(exist_ok=True)
        return folder / hashlib.sha1(job_id.encode()).hexdigest()

    def keep_result(self, job_id: str, result: Any) -> None:
        """A job's shots live beside the state, so that every state change stays small."""
        self._result_file(job_id).write_bytes(pickle.dumps(result))

    def load_result(self, job_id: str) -> Any:
        return pickle.loads(self._result_file(job_id).read_bytes())

    def read(self) -> dict:
        with self.state() as state:
            return state

    def __getattr__(self, name: str) -> Any:  # settings read as attributes: cloud.operational
        if name.startswith("_") or name in ("path",):
            raise AttributeError(name)
        return self.read()[name]

    def set(self, **settings) -> None:
        with self.state() as state:
            state.update(settings)

    # --- faults -----------------------------------------------------------------------------

    def inject(
        self, op: str, kind: str, *, times: int = 1, when: str = "before", job: str | None = None, after_calls: int = 0
    ) -> None:
        """Make the next ``times`` calls of ``op`` fail with ``kind``.

        Args:
            op: submit, status, result, cancel, lookup (a search by tag), job
                (fetching one job, IBM), usage.
            kind: timeout, throttle, server (a 5xx), forget (the job is unknown),
                kill (SIGKILL the calling process), finish (a cancel that comes
                too late: the job finishes instead).
            when: "before" the cloud acts, or "after" (it acted, the answer is lost).
            after_calls: let this many matching calls through first.
        """
        with self.state() as state:
            state["faults"].append({"op": op, "kind": kind, "left": times, "when": when, "job": job, "skip": after_calls})

    def _take_fault(self, state: dict, op: str, when: str, job: str | None = None) -> str | None:
        for fault in state["faults"]:
            if fault["op"] == op and fault["when"] == when and fault["left"] > 0 and fault["job"] in (None, job):
                if fault["skip"] > 0:
                    fault["skip"] -= 1
                    return None
                fault["left"] -= 1
                state["log"].append((op, fault["kind"], when))
                return fault["kind"]
        return None

    def _fault(self, op: str, when: str = "before", job: str | None = None) -> None:
        with self.state() as state:
            kind = self._take_fault(state, op, when, job)
        if kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if kind is not None and kind != "finish":
            raise self.error(op, kind)

    def error(self, op: str, kind: str) -> Exception:
        raise NotImplementedError

    def faults_left(self) -> int:
        return sum(fault["left"] for fault in self.read()["faults"])

    # --- bookkeeping shared by both clouds ---------------------------------------------------

    def _step(self, record: dict) -> str:
        if record["cancelled"]:
            return "CANCELLED"
        steps = record["steps"]
        state = steps[min(record["polls"], len(steps) - 1)]
        record["polls"] += 1
        return state


# --- IBM Quantum ------------------------------------------------------------------------------


class FakeIBMCloud(FakeCloud):
    """QiskitRuntimeService and SamplerV2 as qhw uses them; errors as Runtime raises them."""

    def defaults(self) -> dict:
        return {"operational": True, "fail_next": None, "steps": STEPS, "usage": 1.25}  # QPU seconds IBM reports a job

    def install(self, patch) -> "FakeIBMCloud":
        import qhw.backends.ibm as ibm_adapter

        patch.setattr(ibm_adapter, "runtime_service", lambda: FakeRuntimeService(self))
        patch.setattr(ibm_adapter, "sampler", lambda mode: FakeSampler(self, mode))
        return self

    @property
    def jobs(self) -> dict[str, dict]:
        return self.read()["jobs"]

    def error(self, op: str, kind: str) -> Exception:
        from qiskit_ibm_runtime.api.exceptions import RequestsApiError
        from qiskit_ibm_runtime.exceptions import IBMRuntimeError, RuntimeJobNotFound

        url = "https://quantum.cloud.ibm.com/api/v1/jobs"
        if kind == "forget":
            return RuntimeJobNotFound("Job not found: 404 Client Error: Not Found")
        raw = {
            "timeout": RequestsApiError(f"HTTPSConnectionPool(host='quantum.cloud.ibm.com', port=443): Read timed out. (read timeout=60) for url: {url}", -1),
            "throttle": RequestsApiError(f"429 Client Error: Too Many Requests for url: {url}", 429),
            "server": RequestsApiError(f"502 Server Error: Bad Gateway for url: {url}", 502),
        }[kind]
        if op != "job":
            return raw
        # service.job() re-raises anything but a 404 as IBMRuntimeError ``from None``.
        try:
            raise raw
        except RequestsApiError as ex:
            try:
                raise IBMRuntimeError(f"Failed to retrieve job: {ex}") from None
            except IBMRuntimeError as wrapped:
                return wrapped

    def submitted(self, tag: str) -> list[str]:
        """Provider job ids carrying a tag, e.g. ``qhw-job=3``."""
        return [job_id for job_id, job in self.jobs.items() if tag in job["tags"]]


class FakeRuntimeJob:
    def __init__(self, cloud: FakeIBMCloud, job_id: str) -> None:
        self._cloud = cloud
        self._id = job_id

    def job_id(self) -> str:
        return self._id

    def status(self) -> str:
        self._cloud._fault("status", job=self._id)
        with self._cloud.state() as state:
            return self._cloud._step(state["jobs"][self._id])

    def error_message(self) -> str | None:
        return self._cloud.jobs[self._id]["error"]

    def result(self):
        self._cloud._fault("result", job=self._id)
        record = self._cloud.jobs[self._id]
        if record["error"]:
            from qiskit_ibm_runtime.exceptions import RuntimeJobFailureError

            raise RuntimeJobFailureError(f"Unable to retrieve job result. {record['error']}")
        result = self._cloud.load_result(self._id)
        self._cloud._fault("result", when="after", job=self._id)
        return result

    def cancel(self) -> None:
        from qiskit_ibm_runtime.exceptions import RuntimeInvalidStateError

        self._cloud._fault("cancel", job=self._id)
        with self._cloud.state() as state:
            record = state["jobs"][self._id]
            if self._cloud._take_fault(state, "cancel", "race", self._id) == "finish":
                record["steps"] = ["DONE"]  # it finished while the cancel was on its way
            current = record["steps"][min(record["polls"], len(record["steps"]) - 1)]
            if record["cancelled"] or current in ("DONE", "ERROR"):
                raise RuntimeInvalidStateError("Job cannot be cancelled: 409 Client Error: Conflict")
            record["cancelled"] = True

    def usage(self) -> float | None:
        self._cloud._fault("usage", job=self._id)
        return self._cloud.read()["usage"]


class FakeRuntimeService:
    """QiskitRuntimeService's surface that qhw uses: backend(), job(), jobs()."""

    def __init__(self, cloud: FakeIBMCloud) -> None:
        self._cloud = cloud

    def backend(self, name: str):
        from qiskit_ibm_runtime.fake_provider import FakeManilaV2

        device = FakeManilaV2()  # a real 5-qubit target with calibrated noise
        device.name = name
        operational = self._cloud.operational
        device.status = lambda: SimpleNamespace(operational=operational, status_msg="active" if operational else "calibrating")
        return device

    def job(self, job_id: str) -> FakeRuntimeJob:
        from qiskit_ibm_runtime.exceptions import RuntimeJobNotFound

        self._cloud._fault("job", job=job_id)
        if job_id not in self._cloud.jobs:
            raise RuntimeJobNotFound(f"Job not found: {job_id}")
        return FakeRuntimeJob(self._cloud, job_id)

    def jobs(self, limit=10, job_tags=None, created_after=None, backend_name=None, descending=True, **_ignored):
        self._cloud._fault("lookup")
        found = [
            (record["created"], job_id)
            for job_id, record in self._cloud.jobs.items()
            if all(tag in record["tags"] for tag in job_tags or [])
            and (created_after is None or record["created"] >= created_after)
            and (backend_name is None or record["backend"] == backend_name)
        ]
        found.sort(reverse=descending)
        return [FakeRuntimeJob(self._cloud, job_id) for _, job_id in found[:limit]]


class FakeSampler:
    """SamplerV2's surface: options.environment.job_tags and run(pubs, shots)."""

    def __init__(self, cloud: FakeIBMCloud, mode: Any) -> None:
        self._cloud = cloud
        self.mode = mode
        self.options = SimpleNamespace(environment=SimpleNamespace(job_tags=[]), simulator=SimpleNamespace())

    def run(self, pubs, shots):
        from qiskit_aer.primitives import SamplerV2

        self._cloud._fault("submit")
        result = SamplerV2(seed=11).run(pubs, shots=shots).result()
        job_id = f"d{uuid.uuid4().hex[:19]}"
        self._cloud.keep_result(job_id, result)
        with self._cloud.state() as state:
            error = state["fail_next"]
            state["jobs"][job_id] = {
                "steps": [*state["steps"][:-1], "ERROR"] if error else list(state["steps"]),
                "tags": list(self.options.environment.job_tags),
                "in_batch": type(self.mode).__name__ == "Batch",
                "backend": _device_name(self.mode),
                "created": datetime.now(timezone.utc),
                "error": error,
                "polls": 0,
                "cancelled": False,
            }
        self._cloud._fault("submit", when="after")
        return FakeRuntimeJob(self._cloud, job_id)


def _device_name(mode: Any) -> str | None:
    """The device a sampler runs on: the device itself, or a Batch's."""
    name = getattr(mode, "name", None)
    return name if isinstance(name, str) else getattr(getattr(mode, "_backend", None), "name", None)


# --- Amazon Braket -------------------------------------------------------------------------------

class FakeBraketCloud(FakeCloud):
    """AwsDevice(arn), AwsQuantumTask(arn) and SearchQuantumTasks on one task store;
    CreateQuantumTask honours the clientToken as AWS does."""

    def defaults(self) -> dict:
        return {
            "status": "ONLINE", "shots_range": (1, 50_000), "fail_tasks": None, "steps": ["QUEUED", "RUNNING", "COMPLETED"],
            "qpu_properties": None,  # a device document (JSON) to present a QPU instead of a simulator
        }

    def install(self, patch) -> "FakeBraketCloud":
        import qhw.backends.braket as braket_adapter

        patch.setattr(braket_adapter, "aws_device", lambda arn: _FakeAwsDevice(self, arn))
        patch.setattr(braket_adapter, "aws_task", lambda arn: _FakeAwsTask(self, arn))
        patch.setattr(braket_adapter, "aws_search_tasks", self.search)
        return self

    @property
    def tasks(self) -> dict[str, dict]:
        return self.read()["jobs"]

    def error(self, op: str, kind: str) -> Exception:
        from botocore.exceptions import ClientError, ReadTimeoutError

        operation = {"submit": "CreateQuantumTask", "cancel": "CancelQuantumTask", "lookup": "SearchQuantumTasks"}.get(op, "GetQuantumTask")
        if kind == "timeout":
            return ReadTimeoutError(endpoint_url="https://braket.us-east-1.amazonaws.com/quantum-task")
        code, message, status = {
            "throttle": ("ThrottlingException", "Rate exceeded", 429),
            "server": ("InternalServiceException", "We encountered an internal error. Please try again.", 500),
            "forget": ("ResourceNotFoundException", "Quantum task not found", 404),
        }[kind]
        return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)

    def search(self, device_arn: str, since: datetime) -> list[dict]:
        self._fault("lookup")
        return [
            {"quantumTaskArn": arn, "status": "CREATED", "deviceArn": record["device"], "createdAt": record["created"], "tags": record["tags"]}
            for arn, record in self.tasks.items()
            if record["device"] == device_arn and record["created"] >= since
        ]

    def submitted(self, tag: str) -> list[str]:
        name, value = tag.split("=", 1)
        return [arn for arn, task in self.tasks.items() if task["tags"].get(name) == value]


class _FakeAwsDevice:
    def __init__(self, cloud: FakeBraketCloud, arn: str) -> None:
        from braket.aws import AwsDeviceType
        from braket.devices import LocalSimulator

        self._cloud = cloud
        self._simulator = LocalSimulator("braket_sv")
        self.arn = arn
        self.name = arn.rsplit("/", 1)[-1]
        settings = cloud.read()
        self.status = settings["status"]
        self.gate_calibrations = None
        if settings.get("qpu_properties"):
            # A QPU, as its device document describes it; its shots are still ideal.
            from braket.schema_common import BraketSchemaBase

            from qhw.backends._braket_devices import topology

            self.type = AwsDeviceType.QPU
            self.properties = BraketSchemaBase.parse_raw_schema(settings["qpu_properties"])
            self.topology_graph = topology(self.properties)
        else:
            self.type = AwsDeviceType.SIMULATOR
            self.topology_graph = None
            properties = self._simulator.properties.copy(deep=True)
            properties.service.shotsRange = settings["shots_range"]
            self.properties = properties

    def run(self, program_set, shots=None, tags=None, inputs=None):
        import qhw.backends.braket as braket_adapter

        self._cloud._fault("submit")
        token = braket_adapter.current_client_token()
        existing = self._cloud.read()["tokens"].get(token) if token else None
        if existing is not None:  # CreateQuantumTask is idempotent under its clientToken
            return SimpleNamespace(id=existing)
        if inputs:
            result = self._simulator.run(program_set, shots=shots, inputs=inputs).result()
            executables = 1
        else:
            result = self._simulator.run(program_set, shots=None).result()
            executables = program_set.total_executables
        arn = f"arn:aws:braket:us-east-1:000000000000:quantum-task/{uuid.uuid4().hex}"
        self._cloud.keep_result(arn, result)
        with self._cloud.state() as state:
            failure = state["fail_tasks"]
            state["jobs"][arn] = {
                "steps": [*state["steps"][:-1], "FAILED" if failure else state["steps"][-1]],
                "tags": dict(tags or {}),
                "device": self.arn,
                "executables": executables,
                "created": datetime.now(timezone.utc),
                "failure": failure,
                "polls": 0,
                "cancelled": False,
                "token": token,
            }
            if token:
                state["tokens"][token] = arn
        self._cloud._fault("submit", when="after")
        return SimpleNamespace(id=arn)


class _FakeAwsTask:
    """Like AwsQuantumTask, it asks the service only when used."""

    def __init__(self, cloud: FakeBraketCloud, arn: str) -> None:
        self._cloud = cloud
        self.id = arn

    def _record(self, state: dict) -> dict:
        if self.id not in state["jobs"]:
            raise self._cloud.error("status", "forget")
        return state["jobs"][self.id]

    def state(self) -> str:
        self._cloud._fault("status", job=self.id)
        with self._cloud.state() as state:
            return self._cloud._step(self._record(state))

    def metadata(self) -> dict:
        with self._cloud.state() as state:
            failure = self._record(state)["failure"]
        return {"failureReason": failure} if failure else {}

    def result(self):
        self._cloud._fault("result", job=self.id)
        with self._cloud.state() as state:
            record = self._record(state)
        result = None if record["failure"] else self._cloud.load_result(self.id)
        self._cloud._fault("result", when="after", job=self.id)
        return result

    def cancel(self) -> None:
        self._cloud._fault("cancel", job=self.id)
        with self._cloud.state() as state:
            record = self._record(state)
            if self._cloud._take_fault(state, "cancel", "race", self.id) == "finish":
                record["steps"] = ["COMPLETED"]
            current = record["steps"][min(record["polls"], len(record["steps"]) - 1)]
            if current not in ("COMPLETED", "FAILED"):
                record["cancelled"] = True  # a finished task stays as it ended


# --- a real `qhw` process against the fakes -------------------------------------------------------

FAKE_IBM_ENV = "QHW_TEST_FAKE_IBM"
FAKE_BRAKET_ENV = "QHW_TEST_FAKE_BRAKET"


class _Patch:
    """monkeypatch's setattr, for a process that is not a test."""

    @staticmethod
    def setattr(target, name, value) -> None:
        setattr(target, name, value)


def install_from_environment() -> None:
    """Replace the provider clients with the fake clouds named in the environment."""
    if os.environ.get(FAKE_IBM_ENV):
        FakeIBMCloud(os.environ[FAKE_IBM_ENV]).install(_Patch)
    if os.environ.get(FAKE_BRAKET_ENV):
        FakeBraketCloud(os.environ[FAKE_BRAKET_ENV]).install(_Patch)
