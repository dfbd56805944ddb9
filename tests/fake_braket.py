"""A stateful fake of Amazon Braket (and the S3 and STS it relies on) at the
HTTP layer of real boto3 clients.

qhw's boto3 session (``qhw.backends._braket_aws.boto_session``) is a real one;
the fake answers its requests at botocore's ``before-send`` event, after
botocore validated each request against the service model and before anything
would leave the machine, and botocore parses every answer. The Braket SDK
(``AwsDevice``, ``AwsSession``) runs for real on top.

The tasks' shots are real: each task's action (the OpenQASM program set or
program that CreateQuantumTask carries) runs on Braket's own state-vector
simulator when it is created, and its result document is built from
amazon-braket-schemas' classes and kept in the fake S3, where the task's
``outputS3Bucket`` / ``outputS3Directory`` say. How the document presents the
results is one of the shapes the schemas allow (``shape``, see
:meth:`FakeBraketCloud.set_shape`): executables in another order than their
``inputsIndex``, ``measuredQubits`` in another order than the program
measured, failed executables, parts stored as separate S3 objects,
probabilities instead of shots, a GetQuantumTask without ``actionMetadata``.
"""

from __future__ import annotations

import io
import json
import random
import urllib.parse
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np

from fake_clouds import FakeCloud

ACCOUNT = "000000000000"
OPERATIONS = {  # botocore operation -> the name faults are injected under
    "CreateQuantumTask": "submit",
    "GetQuantumTask": "status",
    "CancelQuantumTask": "cancel",
    "SearchQuantumTasks": "lookup",
    "GetObject": "result",
    "GetDevice": "device",
}
#: A page of SearchQuantumTasks (AWS allows up to 100): small, so paging is used.
SEARCH_PAGE = 3

DEFAULT_SHAPE = {
    "order": "given",  # executableResults: "given", "reversed" or "shuffled"
    "measured_qubits": "as_run",  # measuredQubits: "as_run", "ascending" or "descending" (columns follow)
    "extra_measured": 0,  # qubits a device reports beyond those the program measured (they read 0)
    "failed": {},  # inputsIndex -> failure reason: a ProgramSetExecutableFailure in its place
    "failed_status": "COMPLETED",  # the task's status when some executables failed
    "in_files": False,  # program results, executable results and metadata as S3 paths
    "probabilities": False,  # measurementProbabilities instead of measurements
    "action_metadata": True,  # GetQuantumTask says actionMetadata
    "simulator_ms": 1500,  # a managed simulator's execution time a program (None: not reported)
    # Answers no mapping can trust (still schema-valid): "duplicate_index",
    # "index_out_of_range", "missing_qubit" (a measured qubit left out of measuredQubits).
    "defect": None,
}


class FakeBraketCloud(FakeCloud):
    """Braket's GetDevice, CreateQuantumTask, GetQuantumTask, CancelQuantumTask
    and SearchQuantumTasks, S3's CreateBucket and GetObject, STS's
    GetCallerIdentity, over one task store kept in a file."""

    def defaults(self) -> dict:
        return {
            "status": "ONLINE",
            "shots_range": (1, 50_000),
            "fail_tasks": None,  # every new task fails with this reason (no results)
            "steps": ["QUEUED", "RUNNING", "COMPLETED"],
            "qpu_properties": None,  # a device document (JSON) to present a QPU instead of a simulator
            "shape": dict(DEFAULT_SHAPE),
            "max_executables": None,  # the device's program-set limit, where not its document's own
            "refuse_created_at": False,  # SearchQuantumTasks answers a createdAt filter with ValidationException
            "buckets": [],
            "requests": [],  # (operation, parameters) of every request, as botocore serialised them
        }

    def install(self, patch) -> FakeBraketCloud:
        import qhw.backends._braket_aws as aws

        real = aws.boto_session

        def fake_session(region: str):
            session = real(region)
            # botocore's own retries would answer a fault before qhw sees it; qhw retries itself.
            session._session.set_config_variable("max_attempts", 1)
            session.events.register("before-send", self._answer)
            return session

        patch.setattr(aws, "boto_session", fake_session)
        return self

    def set_shape(self, **shape) -> None:
        """How the results of tasks created from now on are presented (see DEFAULT_SHAPE)."""
        unknown = set(shape) - set(DEFAULT_SHAPE)
        assert not unknown, unknown
        with self.state() as state:
            state["shape"] = {**state["shape"], **shape}

    @property
    def tasks(self) -> dict[str, dict]:
        return self.read()["jobs"]

    def submitted(self, tag: str) -> list[str]:
        name, value = tag.split("=", 1)
        return [arn for arn, task in self.tasks.items() if task["tags"].get(name) == value]

    def requests(self, operation: str) -> list[dict]:
        return [params for op, params in self.read()["requests"] if op == operation]

    # --- the HTTP layer ----------------------------------------------------------------------------

    def _answer(self, request, event_name: str, **_kwargs):
        _, service, operation = event_name.split(".", 2)
        op = OPERATIONS.get(operation)
        job = self._job_of(operation, request)
        kind = self._take(op, "before", job)
        if kind is not None:
            return self._fault_response(kind, operation)
        handler = getattr(self, f"_{service.replace('-', '_')}_{operation}", None)
        if handler is None:
            return _error(400, "InvalidAction", f"the fake has no {service} {operation}", xml=service != "braket")
        response = handler(request)
        kind = self._take(op, "after", job)
        if kind is not None:
            return self._fault_response(kind, operation)
        return response

    def _take(self, op: str | None, when: str, job: str | None) -> str | None:
        if op is None:
            return None
        with self.state() as state:
            kind = self._take_fault(state, op, when, job)
        if kind == "kill":
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return None if kind == "finish" else kind

    def _fault_response(self, kind: str, operation: str):
        from botocore.exceptions import ReadTimeoutError

        if kind == "timeout":
            raise ReadTimeoutError(endpoint_url=f"https://braket.us-east-1.amazonaws.com ({operation})")
        code, message, status = {
            "throttle": ("ThrottlingException", "Rate exceeded", 429),
            "server": ("InternalServiceException", "We encountered an internal error. Please try again.", 500),
            "forget": ("ResourceNotFoundException", "Quantum task not found", 404),
        }[kind]
        return _error(status, code, message, xml=operation == "GetObject")

    def _job_of(self, operation: str, request) -> str | None:
        """The task a request is about, for faults aimed at one task."""
        path = urllib.parse.urlsplit(request.url).path
        if operation in ("GetQuantumTask", "CancelQuantumTask"):
            return urllib.parse.unquote(path.split("/")[2])
        if operation == "GetObject":
            key = urllib.parse.unquote(path.lstrip("/")).split("/", 1)[-1]
            for arn, task in self.tasks.items():
                if key.startswith(task["directory"] + "/"):
                    return arn
        return None

    def _log(self, operation: str, params: dict) -> None:
        with self.state() as state:
            state["requests"].append((operation, params))

    # --- STS and S3 --------------------------------------------------------------------------------

    def _sts_GetCallerIdentity(self, request):
        body = (
            '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
            f"<Arn>arn:aws:iam::{ACCOUNT}:user/qhw-tests</Arn><UserId>AIDAQHWTESTS</UserId><Account>{ACCOUNT}</Account>"
            "</GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        )
        return _response(200, body.encode(), {"Content-Type": "text/xml"})

    def _s3_CreateBucket(self, request):
        bucket = _bucket_and_key(request.url)[0]
        with self.state() as state:
            if bucket in state["buckets"]:
                return _error(409, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded", xml=True)
            state["buckets"].append(bucket)
        return _response(200, b"", {"Location": f"/{bucket}"})

    def _s3_GetObject(self, request):
        bucket, key = _bucket_and_key(request.url)
        path = self._object_file(bucket, key)
        if not path.exists():
            return _error(404, "NoSuchKey", "The specified key does not exist.", xml=True)
        data = path.read_bytes()
        return _response(200, data, {"Content-Type": "application/json", "Content-Length": str(len(data)), "ETag": '"1"'})

    def put_object(self, bucket: str, key: str, text: str) -> None:
        path = self._object_file(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def _object_file(self, bucket: str, key: str):
        return self.path.with_suffix(".s3") / bucket / key

    # --- Braket: devices -------------------------------------------------------------------------------

    def _braket_GetDevice(self, request):
        arn = urllib.parse.unquote(urllib.parse.urlsplit(request.url).path.split("/", 2)[2])
        settings = self.read()
        capabilities, device_type = self._capabilities(settings)
        body = {
            "deviceArn": arn,
            "deviceName": arn.rsplit("/", 1)[-1],
            "providerName": arn.split("/")[-2],
            "deviceType": device_type,
            "deviceStatus": settings["status"],
            "deviceCapabilities": capabilities,
            "deviceQueueInfo": [{"queue": "QUANTUM_TASKS_QUEUE", "queueSize": "0", "queuePriority": "Normal"}],
        }
        return _json_response(200, body)

    @staticmethod
    def _capabilities(settings: dict) -> tuple[str, str]:
        from braket.device_schema import DeviceActionType
        from braket.schema_common import BraketSchemaBase

        if settings.get("qpu_properties"):
            properties, device_type = BraketSchemaBase.parse_raw_schema(settings["qpu_properties"]), "QPU"
        else:
            from braket.device_schema.device_service_properties_v1 import DeviceCost
            from braket.devices import LocalSimulator

            properties, device_type = LocalSimulator("braket_sv").properties.copy(deep=True), "SIMULATOR"
            properties.service.shotsRange = tuple(settings["shots_range"])
            properties.service.deviceCost = DeviceCost(price=0.075, unit="minute")  # SV1's, as AWS publishes it
        program_sets = properties.action.get(DeviceActionType.OPENQASM_PROGRAM_SET)
        if settings["max_executables"] and program_sets is not None:
            program_sets.maximumExecutables = settings["max_executables"]
        return properties.json(), device_type

    # --- Braket: tasks -----------------------------------------------------------------------------------

    def _braket_CreateQuantumTask(self, request):
        params = json.loads(request.body)
        self._log("CreateQuantumTask", params)
        token = params.get("clientToken")
        with self.state() as state:
            existing = state["tokens"].get(token)
        if existing is not None:  # CreateQuantumTask is idempotent under its clientToken
            return _json_response(201, {"quantumTaskArn": existing})
        settings = self.read()
        low, high = settings["shots_range"]
        action = json.loads(params["action"])
        arn = f"arn:aws:braket:us-east-1:{ACCOUNT}:quantum-task/{uuid.uuid4()}"
        directory = f"{params['outputS3KeyPrefix']}/{arn.rsplit('/', 1)[-1]}"
        program_set = action["braketSchemaHeader"]["name"] == "braket.ir.openqasm.program_set"
        executables = sum(len(next(iter(p["inputs"].values()), [None])) for p in action["programs"]) if program_set else 1
        per_executable = params["shots"] // executables
        if not low <= per_executable <= high:
            return _error(400, "ValidationException", f"shots must be between {low} and {high}")
        failure = settings["fail_tasks"]
        shape = settings["shape"]
        status = settings["steps"][-1]
        if failure is None:
            document, failed = self._run(arn, params, action, program_set, per_executable, shape)
            if failed:
                status = shape["failed_status"]
                failure = "some executables failed; see the results" if status == "FAILED" else None
            self._store_result(params["outputS3Bucket"], directory, document, shape)
        else:
            status = "FAILED"
        with self.state() as state:
            state["jobs"][arn] = {
                "steps": [*state["steps"][:-1], status],
                "tags": dict(params.get("tags") or {}),
                "device": params["deviceArn"],
                "executables": executables,
                "shots": params["shots"],
                "created": datetime.now(UTC),
                "failure": failure,
                "polls": 0,
                "cancelled": False,
                "token": token,
                "bucket": params["outputS3Bucket"],
                "directory": directory,
                "program_set": program_set,
                "action_metadata": shape["action_metadata"],
            }
            if token:
                state["tokens"][token] = arn
        return _json_response(201, {"quantumTaskArn": arn})

    def _braket_GetQuantumTask(self, request):
        arn = self._job_of("GetQuantumTask", request)
        with self.state() as state:
            record = state["jobs"].get(arn)
            if record is None:
                return _error(404, "ResourceNotFoundException", f"Quantum task {arn} not found")
            status = self._step(record)
        body = {
            "quantumTaskArn": arn,
            "status": status,
            "deviceArn": record["device"],
            "deviceParameters": "{}",
            "shots": record["shots"],
            "outputS3Bucket": record["bucket"],
            "outputS3Directory": record["directory"],
            "createdAt": _timestamp(record["created"]),
            "tags": record["tags"],
        }
        if status == "FAILED":
            body["failureReason"] = record["failure"] or "the task failed"
        if status in ("COMPLETED", "FAILED", "CANCELLED"):
            body["endedAt"] = _timestamp(datetime.now(UTC))
        if record["action_metadata"]:
            action = "braket.ir.openqasm.program_set" if record["program_set"] else "braket.ir.openqasm.program"
            body["actionMetadata"] = {"actionType": action, "programCount": 1, "executableCount": record["executables"]}
        return _json_response(200, body)

    def _braket_CancelQuantumTask(self, request):
        arn = self._job_of("CancelQuantumTask", request)
        with self.state() as state:
            record = state["jobs"].get(arn)
            if record is None:
                return _error(404, "ResourceNotFoundException", f"Quantum task {arn} not found")
            if self._take_fault(state, "cancel", "race", arn) == "finish":
                record["steps"] = ["COMPLETED"]  # it finished while the cancel was on its way
            current = record["steps"][min(record["polls"], len(record["steps"]) - 1)]
            if record["cancelled"] or current in ("COMPLETED", "FAILED", "CANCELLED"):
                return _error(409, "ConflictException", f"Quantum task {arn} is already {current}")
            record["cancelled"] = True
        return _json_response(200, {"quantumTaskArn": arn, "cancellationStatus": "CANCELLING"})

    def _braket_SearchQuantumTasks(self, request):
        params = json.loads(request.body)
        self._log("SearchQuantumTasks", params)
        matches = []
        for arn, record in sorted(self.tasks.items(), key=lambda item: item[1]["created"]):
            keep = True
            for rule in params["filters"]:
                value = rule["values"][0]
                if rule["name"] == "createdAt" and self.read()["refuse_created_at"]:
                    return _error(400, "ValidationException", "createdAt filter value is not supported")
                if rule["name"] == "deviceArn":
                    keep &= record["device"] == value
                elif rule["name"] == "createdAt":
                    try:  # the form qhw sends: ISO 8601 in UTC
                        since = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
                    except ValueError:
                        return _error(400, "ValidationException", f"invalid createdAt value {value!r}")
                    keep &= rule["operator"] == "GTE" and record["created"] >= since
            if keep:
                matches.append((arn, record))
        start = int(params.get("nextToken") or 0)
        page = matches[start : start + SEARCH_PAGE]
        body = {
            "quantumTasks": [
                {
                    "quantumTaskArn": arn,
                    "status": "CREATED",
                    "deviceArn": record["device"],
                    "shots": record["shots"],
                    "outputS3Bucket": record["bucket"],
                    "outputS3Directory": record["directory"],
                    "createdAt": _timestamp(record["created"]),
                    "tags": record["tags"],
                }
                for arn, record in page
            ]
        }
        if start + SEARCH_PAGE < len(matches):
            body["nextToken"] = str(start + SEARCH_PAGE)
        return _json_response(200, body)

    # --- running a task and presenting its result ----------------------------------------------------

    def _run(self, arn: str, params: dict, action: dict, program_set: bool, shots: int, shape: dict):
        """The task's result document (a schema object), as a device would
        present it in ``shape``, and the inputs indices it failed."""
        from braket.default_simulator import StateVectorSimulator
        from braket.schema_common import BraketSchemaBase

        _parse_each_program_once()
        specification = BraketSchemaBase.parse_raw_schema(params["action"])
        result = StateVectorSimulator().run(specification, shots=params["shots"] if program_set else shots)
        simulator = not self.read().get("qpu_properties")
        if not program_set:
            update = _present(result, shape)
            if simulator and shape["simulator_ms"] is not None:
                update["additionalMetadata"] = _with_duration(result.additionalMetadata, shape["simulator_ms"])
            return result.copy(update=update), {}
        return self._present_program_set(arn, result, shots, shape, simulator)

    def _present_program_set(self, arn: str, result, shots: int, shape: dict, simulator: bool):
        from braket.task_result import ProgramSetExecutableFailure
        from braket.task_result.program_set_executable_failure_v1 import FailureCategory, ProgramSetExecutableFailureMetadata

        (program,) = result.programResults
        entries = []
        failed = {int(index): reason for index, reason in shape["failed"].items()}
        for entry in program.executableResults:
            if entry.inputsIndex in failed:
                metadata = ProgramSetExecutableFailureMetadata(
                    failureReason=failed[entry.inputsIndex], retryable=True, category=FailureCategory.DEVICE
                )
                entries.append(ProgramSetExecutableFailure(inputsIndex=entry.inputsIndex, failureMetadata=metadata))
            else:
                entries.append(entry.copy(update=_present(entry, shape)))
        if shape["order"] == "reversed":
            entries.reverse()
        elif shape["order"] == "shuffled":
            random.Random(arn).shuffle(entries)
        entries = _with_defect(entries, shape["defect"])
        executed = len(entries) - len(failed)
        program_update = {"executableResults": entries}
        if simulator and shape["simulator_ms"] is not None:
            program_update["additionalMetadata"] = _with_duration(program.additionalMetadata, shape["simulator_ms"])
        metadata = result.taskMetadata.copy(
            update={"id": arn, "successfulShots": executed * shots, "totalFailedExecutables": len(failed)}
        )
        document = result.copy(update={"programResults": [program.copy(update=program_update)], "taskMetadata": metadata})
        return document, failed

    def _store_result(self, bucket: str, directory: str, document, shape: dict) -> None:
        """results.json, and the parts it points at when ``in_files``."""
        if not shape["in_files"] or not hasattr(document, "programResults"):
            self.put_object(bucket, f"{directory}/results.json", document.json())
            return
        (program,) = document.programResults
        names = []
        for position, entry in enumerate(program.executableResults):
            names.append(f"executables/{position}.json")
            self.put_object(bucket, f"{directory}/programs/0/{names[-1]}", entry.json())
        self.put_object(bucket, f"{directory}/programs/0/results.json", program.copy(update={"executableResults": names}).json())
        self.put_object(bucket, f"{directory}/metadata.json", document.taskMetadata.json())
        top = document.copy(
            update={"programResults": ["programs/0/results.json"], "taskMetadata": "metadata.json", "s3Location": (bucket, directory)}
        )
        self.put_object(bucket, f"{directory}/results.json", top.json())


def _parse_each_program_once() -> None:
    """Braket's simulator parses a program set's source anew for every
    executable (ANTLR in Python: most of the fake's time); the fake parses each
    source once and hands the simulator a copy (its interpreter rewrites the tree)."""
    import copy
    import functools

    import braket.default_simulator.openqasm.interpreter as interpreter

    if getattr(interpreter.parse, "qhw_cached", False):
        return
    parsed = functools.lru_cache(maxsize=8)(interpreter.parse)

    def parse(source: str):
        return copy.deepcopy(parsed(source))

    parse.qhw_cached = True
    interpreter.parse = parse


def _present(entry, shape: dict) -> dict:
    """An executable's measurements as ``shape`` presents them: columns in
    another qubit order (measuredQubits says which), extra qubits the device
    reported, or probabilities instead of shots."""
    measurements = np.asarray(entry.measurements, dtype=np.int64)
    qubits = list(entry.measuredQubits)
    extra = [max(qubits) + 1 + i for i in range(shape["extra_measured"])]
    qubits += extra
    measurements = np.hstack([measurements, np.zeros((len(measurements), len(extra)), dtype=np.int64)])
    order = list(range(len(qubits)))
    if shape["measured_qubits"] == "ascending":
        order = sorted(order, key=lambda c: qubits[c])
    elif shape["measured_qubits"] == "descending":
        order = sorted(order, key=lambda c: -qubits[c])
    measurements, qubits = measurements[:, order], [qubits[c] for c in order]
    if shape["probabilities"]:
        keys, counts = np.unique(measurements, axis=0, return_counts=True)
        probabilities = {"".join(map(str, key)): float(count) / len(measurements) for key, count in zip(keys, counts, strict=True)}
        return {"measurements": None, "measurementProbabilities": probabilities, "measuredQubits": qubits}
    return {"measurements": measurements.tolist(), "measuredQubits": qubits}


def _with_defect(entries: list, defect: str | None) -> list:
    """Schema-valid answers that no reader can map without guessing."""
    if defect == "duplicate_index":
        return [entries[0], *entries[1:-1], entries[-1].copy(update={"inputsIndex": entries[0].inputsIndex})]
    if defect == "index_out_of_range":
        return [*entries[:-1], entries[-1].copy(update={"inputsIndex": len(entries) + 7})]
    if defect == "missing_qubit":
        entry = entries[-1]
        return [*entries[:-1], entry.copy(update={"measurements": [row[1:] for row in entry.measurements], "measuredQubits": entry.measuredQubits[1:]})]
    return entries


def _with_duration(additional, milliseconds: int):
    from braket.task_result import AdditionalMetadata
    from braket.task_result.simulator_metadata_v1 import SimulatorMetadata

    additional = additional or AdditionalMetadata(action=None)
    return additional.copy(update={"simulatorMetadata": SimulatorMetadata(executionDuration=milliseconds)})


def _bucket_and_key(url: str) -> tuple[str, str]:
    """S3's virtual-hosted form: https://BUCKET.s3.REGION.amazonaws.com/KEY."""
    parts = urllib.parse.urlsplit(url)
    return parts.hostname.split(".", 1)[0], urllib.parse.unquote(parts.path.lstrip("/"))


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Raw(io.BytesIO):
    """A response body as botocore reads one (stream() for parsing, read() for S3 bodies)."""

    def stream(self, **_kwargs):
        yield self.getvalue()


def _response(status: int, body: bytes, headers: dict[str, str] | None = None):
    from botocore.awsrequest import AWSResponse

    headers = {"x-amzn-RequestId": str(uuid.uuid4()), "Content-Length": str(len(body)), **(headers or {})}
    return AWSResponse("https://fake.amazonaws.com/", status, headers, _Raw(body))


def _json_response(status: int, body: dict):
    return _response(status, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _error(status: int, code: str, message: str, *, xml: bool = False):
    if xml:  # S3 and STS answer errors in XML
        body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>1</RequestId></Error>"
        return _response(status, body.encode(), {"Content-Type": "application/xml"})
    return _response(status, json.dumps({"message": message}).encode(), {"Content-Type": "application/json", "x-amzn-ErrorType": code})


def result_document(cloud: FakeBraketCloud, arn: str) -> Any:
    """A task's results.json as the fake stored it, parsed back by the schemas (for tests)."""
    from braket.schema_common import BraketSchemaBase

    task = cloud.tasks[arn]
    return BraketSchemaBase.parse_raw_schema(cloud._object_file(task["bucket"], f"{task['directory']}/results.json").read_text())
