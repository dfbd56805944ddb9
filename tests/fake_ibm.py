"""A stateful fake of IBM Quantum at the boundary IBM tests its own client at:
the runtime REST client (``RuntimeClient``) under a real ``QiskitRuntimeService``.

Everything above it is qiskit-ibm-runtime's own code: the service builds real
``IBMBackend`` objects from the device configuration and properties the fake
serves (a fake device's, from qiskit-ibm-runtime's fake provider), SamplerV2
validates the circuits against that target and encodes the pubs, Batch opens
and closes sessions, and ``RuntimeJobV2`` reads statuses, results and metrics
from the fake's answers, which are the REST API's JSON shapes. Errors are
raised as the REST client raises them (``RequestsApiError`` with the HTTP
status), so Runtime's own translation runs too.

The shots are real: the submitted pubs, round-tripped through Runtime's JSON
encoder and decoder as the REST layer would send them, run on Aer when the
job is created; the result is kept encoded, as the REST API returns it. Like
the IBM Cloud of the docs, the fake remembers everything in a file.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

from fake_clouds import FakeCloud

CRN = "crn:v1:bluemix:public:quantum-computing:us-east:a/qhwtests:0c0ffee0-0000-4000-8000-000000000000::"
#: The REST API's job states, in the order a job goes through them.
STEPS = ["Queued", "Running", "Completed"]
#: What each device name is served as: a fake device's configuration and properties.
MODELS = {"ibm_fez": "FakeFez", "ibm_torino": "FakeTorino"}
DEFAULT_MODEL = "FakeManilaV2"


class FakeIBMCloud(FakeCloud):
    """IBM Quantum's runtime REST API as the runtime client calls it."""

    def defaults(self) -> dict:
        return {
            "operational": True,
            "fail_next": None,  # the next job fails with this reason
            "steps": STEPS,
            "usage": 1.25,  # QPU seconds IBM charges a job, once final
            "usage_ru": 0.8,  # resource units IBM charges a job, once final
            # Which usage fields the metrics carry: "seconds" (before RUs), "both" (IBM's API today), "ru" (once the time fields go).
            "usage_shape": "seconds",
            "usage_final_after": 0,  # metrics reads that still say "pending" before the usage is final
            # The instance's plan usage (GET /v1/usage), as QiskitRuntimeService.usage() reads it; None: an older service without it.
            "instance_usage": {"plan_id": "open", "usage_consumed_seconds": 0, "usage_limit_seconds": 600, "usage_limit_reached": False},
            "listing_delay": 0.0,  # seconds a new job stays out of the job listing (jobs_get)
            "model": None,  # a fake device class name to serve for every device (default: MODELS)
            "result_defect": None,  # "two_pubs" or "short": a result that does not fit the pub submitted
            "sessions": {},
        }

    def install(self, patch) -> FakeIBMCloud:
        import qhw.backends.ibm as ibm_adapter

        patch.setattr(ibm_adapter, "runtime_service", lambda: FakeRuntimeService(self))
        return self

    @property
    def jobs(self) -> dict[str, dict]:
        return self.read()["jobs"]

    def submitted(self, tag: str) -> list[str]:
        """Provider job ids carrying a tag, e.g. ``qhw-job=3``."""
        return [job_id for job_id, job in self.jobs.items() if tag in job["tags"]]

    def error(self, op: str, kind: str) -> Exception:
        from qiskit_ibm_runtime.api.exceptions import RequestsApiError

        url = "https://quantum.cloud.ibm.com/api/v1/jobs"
        return {
            "timeout": RequestsApiError(f"HTTPSConnectionPool(host='quantum.cloud.ibm.com', port=443): Read timed out. (read timeout=60) for url: {url}", -1),
            "throttle": RequestsApiError(f"429 Client Error: Too Many Requests for url: {url}", 429),
            "server": RequestsApiError(f"502 Server Error: Bad Gateway for url: {url}", 502),
            "forget": RequestsApiError(f"404 Client Error: Not Found for url: {url}", 404),
        }[kind]


class FakeRuntimeService:
    """Built on first use: a real QiskitRuntimeService whose runtime client is the fake's."""

    def __new__(cls, cloud: FakeIBMCloud):
        from qiskit_ibm_runtime import QiskitRuntimeService
        from qiskit_ibm_runtime.accounts import Account

        class _Service(QiskitRuntimeService):
            """The account's instances come from IBM Cloud's global search, not
            from the runtime API: the one instance of the tests' account."""

            def instances(self):
                return INSTANCES

        with mock.patch("qiskit_ibm_runtime.qiskit_runtime_service.RuntimeClient", lambda params: FakeRuntimeClient(cloud, params)), \
                mock.patch.object(Account, "list_instances", lambda self: INSTANCES):
            return _Service()  # the account from the environment, as qhw makes it


INSTANCES = [{"crn": CRN, "plan": "open", "name": "qhw-tests", "tags": [], "pricing_type": "free"}]


class FakeRuntimeClient:
    """``qiskit_ibm_runtime.api.client.RuntimeClient``'s methods, answered from the fake cloud."""

    def __init__(self, cloud: FakeIBMCloud, params: Any) -> None:
        self._cloud = cloud
        self._instance = params.instance
        self._configuration_registry: dict[str, dict] = {}

    # --- devices ---------------------------------------------------------------------------

    def list_backends(self, include_mocks: bool = False) -> list[dict]:
        return [{"name": name, "class": "quantum-computer", "physical_qubits": None} for name in (*MODELS, "ibm_kingston")]

    def backend_configuration(self, backend_name: str, refresh: bool = False, calibration_id: str | None = None) -> dict:
        configuration = dict(_model(self._cloud, backend_name)._conf_dict)
        configuration["backend_name"] = backend_name
        configuration["online_date"] = "2024-01-01T00:00:00Z"
        return configuration

    def backend_properties(self, backend_name: str, datetime: Any = None, calibration_id: str | None = None) -> dict:
        model = _model(self._cloud, backend_name)
        model._set_props_dict_from_json()
        properties = dict(model._props_dict)
        properties["backend_name"] = backend_name
        return properties

    def backend_status(self, backend_name: str) -> dict:
        operational = self._cloud.operational
        return {
            "backend_name": backend_name,
            "backend_version": "1",
            "operational": operational,
            "pending_jobs": 0,
            "status_msg": "active" if operational else "calibrating",
        }

    def cloud_usage(self) -> dict:
        """GET /v1/usage: the instance's plan usage (an older service answers without the usage fields)."""
        self._cloud._fault("allowance")
        usage = self._cloud.read()["instance_usage"]
        return {"instance_id": CRN, **(usage or {})}

    # --- sessions (a Batch) -------------------------------------------------------------------

    def create_session(self, backend: str | None = None, instance: str | None = None, max_time: int | None = None,
                       mode: str | None = None, **kwargs: Any) -> dict:
        session_id = uuid.uuid4().hex
        with self._cloud.state() as state:
            state["sessions"][session_id] = {"backend": backend, "mode": mode, "open": True}
        return {"id": session_id}

    def close_session(self, session_id: str) -> None:
        with self._cloud.state() as state:
            state["sessions"][session_id]["open"] = False

    def cancel_session(self, session_id: str) -> None:
        self.close_session(session_id)

    def session_details(self, session_id: str) -> dict:
        session = self._cloud.read()["sessions"][session_id]
        return {"id": session_id, "mode": session["mode"], "backend_name": session["backend"], "state": "open" if session["open"] else "closed"}

    # --- jobs ---------------------------------------------------------------------------------

    def program_run(self, program_id: str, backend_name: str | None, params: dict, image: str | None, log_level: str | None,
                    session_id: str | None, job_tags: list[str] | None = None, max_execution_time: int | None = None,
                    start_session: bool | None = False, session_time: int | None = None, private: bool | None = False,
                    calibration_id: str | None = None) -> dict:
        from qiskit_ibm_runtime.utils.json import RuntimeDecoder, RuntimeEncoder

        self._cloud._fault("submit")
        # What the REST layer sends: the inputs as Runtime's JSON encoder writes them.
        inputs = json.loads(json.dumps(params, cls=RuntimeEncoder), cls=RuntimeDecoder)
        job_id = f"d{uuid.uuid4().hex[:19]}"
        result = _run_pubs(inputs, self._cloud.read()["result_defect"])
        self._cloud.keep_result(job_id, json.dumps(result, cls=RuntimeEncoder))
        with self._cloud.state() as state:
            error = state["fail_next"]
            state["jobs"][job_id] = {
                "steps": [*state["steps"][:-1], "Failed"] if error else list(state["steps"]),
                "tags": list(job_tags or []),
                "in_batch": session_id is not None and state["sessions"].get(session_id, {}).get("mode") == "batch",
                "session_id": session_id,
                "backend": backend_name,
                "program": program_id,
                # The shots of each pub (SamplerV2 writes them into every pub it sends), as IBM would run them.
                "shots": [pub[2] if len(pub) > 2 else inputs.get("shots") for pub in inputs["pubs"]],
                # The execution options it was sent (rep_delay among them), and every option group.
                "execution": dict((inputs.get("options") or {}).get("execution") or {}),
                "options": dict(inputs.get("options") or {}),
                "created": datetime.now(UTC),
                "error": error,
                "polls": 0,
                "metric_reads": 0,
                "cancelled": False,
            }
        self._cloud._fault("submit", when="after")
        return {"id": job_id, "backend": backend_name}

    def job_get(self, job_id: str, exclude_params: bool = True) -> dict:
        self._cloud._fault("status", job=job_id)
        with self._cloud.state() as state:
            record = self._record(state, job_id)
            status = self._cloud._step(record)
        return self._job_document(job_id, record, status)

    def jobs_get(self, limit=None, skip=None, backend_name=None, pending=None, program_id=None, job_tags=None, session_id=None,
                 created_after=None, created_before=None, descending=True, include_mocks=False) -> dict:
        self._cloud._fault("lookup")
        settings = self._cloud.read()
        listed_before = datetime.now(UTC) - timedelta(seconds=settings["listing_delay"])
        found = [
            (record["created"], job_id, record)
            for job_id, record in settings["jobs"].items()
            if all(tag in record["tags"] for tag in job_tags or [])
            and (created_after is None or record["created"] >= created_after)
            and (backend_name is None or record["backend"] == backend_name)
            and record["created"] <= listed_before  # IBM's listing lags what it has accepted
        ]
        found.sort(key=lambda item: item[0], reverse=descending)
        skip = skip or 0
        page = found[skip : skip + (limit or len(found))]
        return {"jobs": [self._job_document(job_id, record, _current(record)) for _, job_id, record in page], "count": len(found)}

    def job_results(self, job_id: str) -> str:
        self._cloud._fault("result", job=job_id)
        with self._cloud.state() as state:
            record = self._record(state, job_id)
        if record["error"]:
            return f"Traceback (most recent call last):\nqiskit_runtime.exceptions.JobFailed: {record['error']}"
        result = self._cloud.load_result(job_id)
        self._cloud._fault("result", when="after", job=job_id)
        return result

    def job_cancel(self, job_id: str) -> None:
        from qiskit_ibm_runtime.api.exceptions import RequestsApiError

        self._cloud._fault("cancel", job=job_id)
        with self._cloud.state() as state:
            record = self._record(state, job_id)
            if self._cloud._take_fault(state, "cancel", "race", job_id) == "finish":
                record["steps"] = ["Completed"]  # it finished while the cancel was on its way
            if record["cancelled"] or _current(record) in ("Completed", "Failed", "Cancelled"):
                raise RequestsApiError("409 Client Error: Conflict: job is in a final state", status_code=409)
            record["cancelled"] = True

    def job_metadata(self, job_id: str) -> dict:
        """The job's metrics: IBM says its usage is "pending" until it has computed it."""
        self._cloud._fault("usage", job=job_id)
        with self._cloud.state() as state:
            record = self._record(state, job_id)
            record["metric_reads"] += 1
            final = record["metric_reads"] > state["usage_final_after"]
            seconds, units, shape = state["usage"], state["usage_ru"], state["usage_shape"]
        usage: dict[str, Any] = {"status": "complete" if final else "pending"}
        if shape in ("seconds", "both"):
            usage["qpu_charge_time_seconds"] = seconds if final else 0
        if shape in ("ru", "both"):
            usage["value"] = units if final else 0
        return {"usage": usage, "timestamps": {"created": _iso(record["created"]), "finished": None, "running": None}}

    def job_logs(self, job_id: str) -> str:
        return ""

    # --- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _record(state: dict, job_id: str) -> dict:
        from qiskit_ibm_runtime.api.exceptions import RequestsApiError

        if job_id not in state["jobs"]:
            raise RequestsApiError(f"404 Client Error: Not Found: job {job_id}", status_code=404)
        return state["jobs"][job_id]

    @staticmethod
    def _job_document(job_id: str, record: dict, status: str) -> dict:
        document = {
            "id": job_id,
            "backend": record["backend"],
            "state": {"status": status, "reason": None},
            "status": status,
            "program": {"id": record["program"]},
            "created": _iso(record["created"]),
            "tags": record["tags"],
            "session_id": record["session_id"],
            "runtime": "",
            "private": False,
            # IBM's estimate of the job's QPU time, in every job document once it has the job.
            "estimated_running_time_seconds": record.get("estimate", 1.1),
        }
        if status == "Failed":
            document["state"]["reason"] = record["error"]
        return document


def _current(record: dict) -> str:
    if record["cancelled"]:
        return "Cancelled"
    return record["steps"][min(record["polls"], len(record["steps"]) - 1)]


#: The most qubits a pub's circuit uses that Aer simulates as a statevector here.
WIDEST_STATEVECTOR = 24


def _run_pubs(inputs: dict, defect: str | None = None):
    """What the device measures: the pubs on Aer, seeded, ideal (or, with a
    ``defect``, a result that does not fit what was sent)."""
    from qiskit_aer.primitives import SamplerV2

    pubs = inputs["pubs"]
    if defect == "two_pubs":
        pubs = [*pubs, pubs[0]]
    elif defect == "short":
        pubs = [(pub[0], pub[1][:-1], *pub[2:]) for pub in pubs]
    # A packed run's copies are disjoint chains on the device: a statevector of
    # their 85 qubits (ibm_fez, --pack auto) cannot be held, a matrix product
    # state of them can (its bonds stay within a copy).
    used = max(len({qubit for instruction in pub[0].data for qubit in instruction.qubits}) for pub in pubs)
    options = {"backend_options": {"method": "matrix_product_state"}} if used > WIDEST_STATEVECTOR else {}
    return SamplerV2(seed=11, options=options).run(pubs, shots=inputs.get("shots")).result()


def _model(cloud: FakeIBMCloud, name: str):
    from qiskit_ibm_runtime.fake_provider import backends

    return getattr(backends, cloud.read()["model"] or MODELS.get(name, DEFAULT_MODEL))()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
