"""Runtime's answers, read where their meaning is known: its errors classified
(network errors, HTTP 429 and 5xx are transient; 401 and account errors are
credentials; a 404 on a job is an unknown job; the rest are final), and the
usage document of an instance checked before it is believed."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from qhw.backend import Allowance
from qhw.errors import BackendError, ConfigError, CredentialsError, JobFailedError, JobNotFoundError, TransientBackendError

CREDENTIALS_HELP = (
    "save an IBM Quantum account once with QiskitRuntimeService.save_account(token=..., instance=...), "
    "or set QISKIT_IBM_TOKEN and QISKIT_IBM_INSTANCE"
)


def usage_allowance(usage: dict) -> Allowance | None:
    """``QiskitRuntimeService.usage()``'s document as an Allowance, its figures
    checked against each other: a remaining figure that does not follow from
    the limit and the consumption (Runtime computes it as the limit less the
    consumption, floored at 0: a negative consumption gives more left than the
    limit) is unknown, not believed. None where IBM gives no limit."""
    raw_remaining = usage.get("usage_remaining_seconds")
    if raw_remaining is None:
        return None
    plan = str(usage.get("plan_id") or "unknown")
    limit = reported_seconds(usage.get("usage_limit_seconds", usage.get("usage_allocation_seconds")))
    consumed = reported_seconds(usage.get("usage_consumed_seconds"))
    remaining = reported_seconds(raw_remaining)
    doubt = None
    if remaining is None:
        doubt = f"it gives {raw_remaining!r} seconds left"
    elif "usage_consumed_seconds" in usage and consumed is None:
        doubt = f"it gives {usage.get('usage_consumed_seconds')!r} seconds consumed"
    elif limit is not None and remaining > limit:
        doubt = f"it gives {remaining:,.0f} s left of a {limit:,.0f} s limit"
    elif limit is not None and consumed is not None and abs(remaining - max(limit - consumed, 0.0)) > 1e-6 * max(limit, 1.0):
        doubt = f"{remaining:,.0f} s left is not the {limit:,.0f} s limit less the {consumed:,.0f} s consumed"
    return Allowance(
        plan=plan, consumed=consumed, limit=limit, remaining=None if doubt else remaining, unit="QPU s",
        # As Runtime's own check before every job reads the flag.
        limit_reached=bool(usage.get("usage_limit_reached")), doubt=None if doubt is None else f"IBM's usage answer does not add up: {doubt}",
    )


def reported_seconds(value: Any) -> float | None:
    """A number of seconds IBM reported, or None when it reported none (or no number)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def runtime_call(call, what: str):
    try:
        return call()
    except (ConfigError, BackendError):
        raise
    except Exception as err:
        raise translate(err, what) from err


#: HTTP statuses worth asking again (Runtime's own session retries 5xx a few
#: times first; throttling and outages outlast that).
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 521, 522, 524})


def translate(err: Exception, what: str) -> Exception:
    """Runtime's errors, named by class so that importing them stays lazy."""
    kind = type(err).__name__
    if kind == "AccountNotFoundError":
        return CredentialsError(f"no IBM Quantum credentials: {CREDENTIALS_HELP}")
    status = _http_status(err)
    if kind in ("IBMNotAuthorizedError", "InvalidAccountError") or status == 401:
        return CredentialsError(f"IBM Quantum rejected the credentials ({err}): {CREDENTIALS_HELP}")
    if kind == "QiskitBackendNotFoundError":
        return ConfigError(f"IBM Quantum has no device you can use by that name ({err})")
    if kind == "RuntimeJobNotFound":
        return JobNotFoundError(f"IBM Quantum has no job: {err}")
    if kind in ("RuntimeJobFailureError", "RuntimeJobMaxTimeoutError"):
        return JobFailedError(f"IBM Quantum failed the job: {err}")
    # -1: Runtime got no HTTP answer at all (a connection error or an outage page).
    if status in TRANSIENT_STATUSES or status == -1 or _is_network_error(err):
        return TransientBackendError(f"IBM Quantum did not answer while {what}: {err}")
    return BackendError(f"IBM Quantum failed while {what}: {kind}: {err}")


def _chain(err: BaseException | None) -> Iterator[BaseException]:
    """The error and those it was raised from or during (Runtime re-raises
    RequestsApiError as IBMRuntimeError ``from None``; the original stays in
    ``__context__``)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _http_status(err: Exception) -> int | None:
    for link in _chain(err):
        status = getattr(link, "status_code", None)
        if isinstance(status, int):
            return status
    return None


def _is_network_error(err: Exception) -> bool:
    import requests

    return any(
        isinstance(link, (ConnectionError, TimeoutError, requests.exceptions.ConnectionError, requests.exceptions.Timeout))
        for link in _chain(err)
    )
