"""Amazon Braket's service as qhw calls it: one boto3 session per region, the
Braket, S3 and STS clients made from it, and every AWS error classified.

The provider-client boundary is :func:`boto_session`: every request qhw (and
the Braket SDK on its behalf) sends goes through clients of the session it
returns, so botocore validates each request against the service model and
parses each response. Tests answer those requests from a stateful fake at
botocore's ``before-send`` event.

qhw reads tasks with the service calls themselves (GetQuantumTask,
CancelQuantumTask, S3 GetObject) rather than through ``AwsQuantumTask``,
whose status path needs the optional ``actionMetadata`` of a failed program
set (a ``KeyError`` without it) and whose result path drops the executables'
``inputsIndex``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from qhw.errors import BackendError, ConfigError, CredentialsError, JobNotFoundError, TransientBackendError

NO_CREDENTIALS = (
    "no AWS credentials: run `aws configure` (or set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY) for an account with Amazon Braket enabled"
)
PROGRAM_SET_ACTION = "braket.ir.openqasm.program_set"
RESULTS_FILE = "results.json"


# The provider-client boundary: tests answer this session's requests from a fake.
def boto_session(region: str) -> Any:
    import boto3

    return boto3.Session(region_name=region)


def region_of(arn: str) -> str:
    """QPUs live in the region their ARN names; managed simulators in any, so
    the user's default region (or us-east-1) serves for those."""
    import boto3

    return arn.split(":")[3] or boto3.Session().region_name or "us-east-1"


def aws_session(region: str) -> Any:
    """A Braket SDK session of this region whose task creations carry qhw's client token."""
    from braket.aws import AwsSession

    session = AwsSession(boto_session=boto_session(region))
    _use_client_tokens(session.braket_client)
    return session


# --- idempotent task creation --------------------------------------------------------------

_client_token: ContextVar[str | None] = ContextVar("qhw_braket_client_token", default=None)


def current_client_token() -> str | None:
    """The clientToken the next CreateQuantumTask of this context carries."""
    return _client_token.get()


@contextmanager
def client_token(token: str | None) -> Iterator[None]:
    """Make the CreateQuantumTask calls inside idempotent under ``token``."""
    reset = _client_token.set(token)
    try:
        yield
    finally:
        _client_token.reset(reset)


def _set_client_token(params: dict, **_kwargs) -> None:
    token = _client_token.get()
    if token is not None:
        params["clientToken"] = token


def _use_client_tokens(braket_client: Any) -> None:
    """Have every CreateQuantumTask of this client carry the context's token
    (boto3 would fill in a random one)."""
    braket_client.meta.events.register(
        "before-parameter-build.braket.CreateQuantumTask", _set_client_token, unique_id="qhw-client-token"
    )


# --- tasks ------------------------------------------------------------------------------------


def get_task(session: Any, arn: str) -> dict:
    """GetQuantumTask, as AWS answers it (``actionMetadata`` is optional)."""
    return session.braket_client.get_quantum_task(quantumTaskArn=arn)


def cancel_task(session: Any, arn: str) -> None:
    session.braket_client.cancel_quantum_task(quantumTaskArn=arn, clientToken=uuid.uuid4().hex)


def is_program_set(task: dict) -> bool | None:
    """Whether the task ran a program set; None when AWS did not say."""
    action = task.get("actionMetadata")
    return None if not action else action.get("actionType") == PROGRAM_SET_ACTION


def read_object(session: Any, bucket: str, key: str) -> str | None:
    """An S3 object's text, or None when there is no such object."""
    from botocore.exceptions import ClientError

    try:
        return session.s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except ClientError as err:
        if error_code(err) in ("NoSuchKey", "404"):
            return None
        raise


def search_tasks(session: Any, device_arn: str, since: datetime) -> list[dict]:
    """SearchQuantumTasks: the device's tasks created at or after ``since``,
    as AWS lists them (quantumTaskArn, status, createdAt, tags, ...).

    The ``createdAt`` filter: botocore's model of the operation (braket
    2019-09-01) types a filter's values as strings of 1 to 256 characters
    (``String256``) and says nothing of a timestamp's form; the only form the
    model gives this service's timestamps is ``iso8601`` (the ``createdAt`` of
    its responses). So the value is ISO 8601 in UTC, and should AWS refuse it
    (ValidationException), the search goes by device alone and the creation
    times, parsed by botocore, are compared here.
    """
    from botocore.exceptions import ClientError

    client = session.braket_client
    by_device = {"name": "deviceArn", "operator": "EQUAL", "values": [device_arn]}
    created = {"name": "createdAt", "operator": "GTE", "values": [iso8601(since)]}

    def search(filters: list[dict]) -> list[dict]:
        tasks: list[dict] = []
        for page in client.get_paginator("search_quantum_tasks").paginate(filters=filters):
            tasks.extend(page["quantumTasks"])
        return tasks

    try:
        return search([by_device, created])
    except ClientError as err:
        if error_code(err) != "ValidationException":
            raise
    return [task for task in search([by_device]) if task.get("createdAt") is None or task["createdAt"] >= since]


def iso8601(moment: datetime) -> str:
    """A moment as the service writes its timestamps: ISO 8601, UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- errors ------------------------------------------------------------------------------------

#: Error codes of AWS that say "ask again later".
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServerException",
        "InternalServiceException",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "SlowDown",
    }
)
#: Error codes that mean the credentials were refused.
CREDENTIAL_CODES = frozenset(
    {"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId", "AccessDeniedException"}
)


def error_code(err: BaseException | None) -> str | None:
    response = getattr(err, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def provider_call(call: Callable[[], Any], what: str, missing: str | None = None) -> Any:
    """Run one AWS call, classifying its errors: credentials, transient
    (throttling, 5xx, connection and timeouts), an unknown task (with
    ``missing`` when given), or a final refusal."""
    from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError, NoRegionError
    from botocore.exceptions import ConnectionError as BotoConnectionError

    try:
        return call()
    except NoCredentialsError as err:
        raise CredentialsError(NO_CREDENTIALS) from err
    except NoRegionError as err:
        raise ConfigError("no AWS region: set AWS_DEFAULT_REGION or a region in your AWS profile") from err
    except ClientError as err:
        code = error_code(err) or "ClientError"
        message = err.response.get("Error", {}).get("Message", str(err))
        http_status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if missing is not None and code == "ResourceNotFoundException":
            raise JobNotFoundError(missing) from err
        if code in CREDENTIAL_CODES:
            raise CredentialsError(f"Amazon Braket rejected the credentials while {what}: {code}: {message}") from err
        if code in TRANSIENT_CODES or http_status == 429 or http_status >= 500:
            raise TransientBackendError(f"Amazon Braket is busy or failing while {what}: {code}: {message}") from err
        raise BackendError(f"Amazon Braket refused {what}: {code}: {message}") from err
    except (BotoConnectionError, HTTPClientError, ConnectionError, TimeoutError) as err:
        raise TransientBackendError(f"Amazon Braket could not be reached while {what}: {err}") from err
    except BotoCoreError as err:
        raise BackendError(f"Amazon Braket failed while {what}: {err}") from err
