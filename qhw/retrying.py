"""Retries of transient provider errors: exponential backoff with jitter (tenacity).

Only :class:`~qhw.errors.TransientBackendError` is retried: the adapters raise
it for network errors, timeouts, HTTP 429 and 5xx and throttling, and nothing
else. When the errors persist the last one is raised, and the ledger records it
on the job without changing the job's state.

Settings (environment): ``QHW_RETRY_ATTEMPTS`` (calls in all, default 4),
``QHW_RETRY_INITIAL_WAIT`` and ``QHW_RETRY_MAX_WAIT`` (seconds, default 1 and 30).
"""

from __future__ import annotations

import logging
import os
from typing import Callable, TypeVar

from qhw.errors import ConfigError, TransientBackendError

log = logging.getLogger("qhw.retry")
T = TypeVar("T")


def _setting(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= 0:
        raise ConfigError(f"{name} must be zero or more, got {raw!r}")
    return value


def with_retries(call: Callable[[], T], what: str) -> T:
    """Run ``call``, retrying transient provider errors with backoff and jitter.

    Raises:
        TransientBackendError: still failing after the last attempt.
        Any other error of ``call`` at once.
    """
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

    attempts = max(1, int(_setting("QHW_RETRY_ATTEMPTS", 4)))
    retrying = Retrying(
        retry=retry_if_exception_type(TransientBackendError),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(
            initial=_setting("QHW_RETRY_INITIAL_WAIT", 1.0), max=_setting("QHW_RETRY_MAX_WAIT", 30.0), jitter=1.0
        ),
        before_sleep=lambda state: log.info(
            "%s failed (%s); attempt %d of %d", what, state.outcome.exception(), state.attempt_number, attempts
        ),
        reraise=True,
    )
    return retrying(call)
