"""Retries of transient provider errors: exponential backoff with jitter (tenacity).

Only :class:`~qhw.errors.TransientBackendError` is retried: the adapters raise
it for network errors, timeouts, HTTP 429 and 5xx and throttling, and nothing
else. When the errors persist the last one is raised, and the ledger records it
on the job without changing the job's state.

Settings (environment, see :mod:`qhw.settings`): ``QHW_RETRY_ATTEMPTS`` (calls
in all, 1 to 100, default 4), ``QHW_RETRY_INITIAL_WAIT`` and
``QHW_RETRY_MAX_WAIT`` (seconds, 0 to 3600, default 1 and 30).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from qhw import settings
from qhw.errors import TransientBackendError

log = logging.getLogger("qhw.retry")
T = TypeVar("T")


def with_retries(
    call: Callable[[], T], what: str, retry_on: type[Exception] = TransientBackendError, deadline: float | None = None
) -> T:
    """Run ``call``, retrying transient provider errors (``retry_on``: an
    artifact store's too) with backoff and jitter; with ``deadline``, no
    attempt starts that many seconds or more after the first began.

    Raises:
        TransientBackendError: still failing after the last attempt.
        Any other error of ``call`` at once.
    """
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, stop_before_delay, wait_exponential_jitter
    from tenacity.stop import stop_base

    attempts = settings.retry_attempts()
    initial_wait, max_wait = settings.retry_waits()
    stop: stop_base = stop_after_attempt(attempts)
    if deadline is not None:
        stop = stop | stop_before_delay(deadline)  # no wait that would end past it
    retrying = Retrying(
        retry=retry_if_exception_type(retry_on),
        stop=stop,
        wait=wait_exponential_jitter(
            initial=initial_wait, max=max_wait, jitter=1.0
        ),
        before_sleep=lambda state: log.info(
            "%s failed (%s); attempt %d of %d", what, state.outcome and state.outcome.exception(), state.attempt_number, attempts
        ),
        reraise=True,
    )
    return retrying(call)
