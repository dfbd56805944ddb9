"""Settings read from the environment, each checked against its documented range.

A setting is read when it is used, and every command that writes the ledger
checks them all first (:func:`check_all`), so that a bad value is refused in
one line naming the variable before anything is written or submitted, rather
than in the middle of a run.
"""

from __future__ import annotations

import math
import os
import re

from qhw.checks import parse_decimal, parse_integer
from qhw.errors import ConfigError

LEASE_ENV = "QHW_LEASE_SECONDS"
RETRY_ATTEMPTS_ENV = "QHW_RETRY_ATTEMPTS"
RETRY_INITIAL_WAIT_ENV = "QHW_RETRY_INITIAL_WAIT"
RETRY_MAX_WAIT_ENV = "QHW_RETRY_MAX_WAIT"
DASK_SCHEDULER_ENV = "QHW_DASK_SCHEDULER"
DASK_TIMEOUT_ENV = "QHW_DASK_TIMEOUT"
ARTIFACTS_TIMEOUT_ENV = "QHW_ARTIFACTS_TIMEOUT"

#: A claim's lease: long enough for one provider call, at most a week.
LEASE_RANGE = (10.0, 7 * 86_400.0)
#: Waits between retries of a provider call: an hour at most.
RETRY_WAIT_RANGE = (0.0, 3_600.0)
RETRY_ATTEMPTS_MAX = 100
#: How long a Dask scheduler is given to answer, and then to have a worker.
DASK_TIMEOUT_RANGE = (1.0, 3_600.0)
DASK_TIMEOUT_DEFAULT = 10.0
#: How long a call to a remote artifact store may go on failing (its retries included).
ARTIFACTS_TIMEOUT_RANGE = (1.0, 3_600.0)
ARTIFACTS_TIMEOUT_DEFAULT = 60.0

# What distributed.Client takes for a plain TCP cluster; a host name, an IPv4
# address or an IPv6 one in brackets, and a port.
_SCHEDULER_ADDRESS = re.compile(r"^(?:tcp://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})$")


def seconds(name: str, default: float, low: float, high: float) -> float:
    """A number of seconds from ``$name`` (``default`` when unset), in ``low..high``.

    Raises:
        ConfigError: not a number, or outside the range (NaN included).
    """
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = parse_decimal(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"{name} must be between {low:g} and {high:g} seconds, got {raw!r}")
    return value


def lease_seconds() -> float:
    """How long a claim on a job lasts before another process may take it over
    (default 300 s): longer than any one provider call (a result download, a
    submission), so a live holder never loses it; a holder that dies on this
    machine is noticed at once (qhw.store.ledger.holder_is_gone)."""
    return seconds(LEASE_ENV, 300.0, *LEASE_RANGE)


def retry_attempts() -> int:
    """Calls in all to a provider, the first one included (default 4)."""
    raw = os.environ.get(RETRY_ATTEMPTS_ENV)
    if raw is None or raw.strip() == "":
        return 4
    try:
        value = parse_integer(raw.strip())
    except ValueError:
        value = 0
    if not 1 <= value <= RETRY_ATTEMPTS_MAX:
        raise ConfigError(f"{RETRY_ATTEMPTS_ENV} must be a whole number, 1 or more (at most {RETRY_ATTEMPTS_MAX}), got {raw!r}")
    return value


def retry_waits() -> tuple[float, float]:
    """The first wait between retries and the longest, in seconds (default 1 and 30)."""
    return _wait(RETRY_INITIAL_WAIT_ENV, 1.0), _wait(RETRY_MAX_WAIT_ENV, 30.0)


def _wait(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    low, high = RETRY_WAIT_RANGE
    try:
        value = parse_decimal(raw.strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise ConfigError(f"{name} must be a finite number of seconds, {low:g} or more (at most {high:g}), got {raw!r}")
    return value


def dask_timeout() -> float:
    """How long a Dask scheduler has to answer, and then to show a worker (default 10 s)."""
    return seconds(DASK_TIMEOUT_ENV, DASK_TIMEOUT_DEFAULT, *DASK_TIMEOUT_RANGE)


def artifacts_timeout() -> float:
    """How long a call to a remote artifact store is retried before it is given up (default 60 s);
    one attempt's connection and reads are bounded by it too (see qhw.store.artifacts)."""
    return seconds(ARTIFACTS_TIMEOUT_ENV, ARTIFACTS_TIMEOUT_DEFAULT, *ARTIFACTS_TIMEOUT_RANGE)


def dask_scheduler(option: str | None) -> str | None:
    """The Dask scheduler to use: ``--scheduler``, else ``$QHW_DASK_SCHEDULER``, checked
    to be ``tcp://HOST:PORT`` (or ``HOST:PORT``); None for none.

    Raises:
        ConfigError: naming the option or the variable the address came from.
    """
    where, address = ("--scheduler", option) if option else (DASK_SCHEDULER_ENV, os.environ.get(DASK_SCHEDULER_ENV))
    if not address:
        return None
    match = _SCHEDULER_ADDRESS.match(address.strip())
    if match is None or not 1 <= int(match["port"]) <= 65_535:
        raise ConfigError(f"{where} must be tcp://HOST:PORT, got {address!r}")
    return address.strip() if address.strip().startswith("tcp://") else f"tcp://{address.strip()}"


def check_all(scheduler: str | None = None) -> None:
    """Read every setting a command that writes the ledger uses: refuse a bad one first.

    Raises:
        ConfigError: the first bad setting, named.
    """
    lease_seconds()
    retry_attempts()
    retry_waits()
    dask_timeout()
    artifacts_timeout()
    dask_scheduler(scheduler)
