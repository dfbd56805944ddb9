"""The shared price table: its date, the providers' defaults and the user's overrides.

Each provider module declares its own prices (``PRICES``: key -> default, a
number or a table of device -> number) and prices its own jobs from this
table (its backends' ``estimate_cost`` and ``job_cost``), so an adapter added
through the ``qhw.backends`` entry point prices itself like a built-in one.
The core keeps the table together, checks the user's overrides against it and
snapshots it with every paid run, so that a run's actual cost is priced with
the table in force when it was submitted.

The built-in defaults are the providers' published list prices as recorded on
PRICES_TAKEN, from the team's knowledge: qhw never fetches a price list, and
the machine that wrote them could not reach those pages to re-check them.
Override any price in a TOML file at $QHW_PRICES or $QHW_HOME/prices.toml::

    braket_per_task_usd = 0.30
    ibm_usd_per_qpu_second = 0.0      # an Open-plan account

    [braket_per_shot_usd]
    ionq_forte = 0.08
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from qhw.errors import ConfigError, ParameterError

PRICES_TAKEN = "2026-11-01"
PRICES_ENV = "QHW_PRICES"
#: Device tables also take any Braket device by its qhw name, braket:<device ARN>.
ARN_PREFIX = "braket:"

Price = float | dict[str, float]


@dataclass(frozen=True)
class PriceTable:
    """Prices by key (a number, or a table of device -> number), their date,
    and where each price that is not qhw's own default came from."""

    values: Mapping[str, Price]
    taken: str = PRICES_TAKEN
    #: "key" or "key.device" -> where the price came from: the user's price
    #: file, or a device's own published document. Absent: qhw's table.
    sources: Mapping[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        """A price that is one number (a table of device prices is by_device's)."""
        value = self.values[key]
        if isinstance(value, dict):
            raise TypeError(f"{key} is a table of device prices")
        return value

    def by_device(self, key: str) -> Mapping[str, float]:
        """A table of device -> price."""
        value = self.values[key]
        if not isinstance(value, dict):
            raise TypeError(f"{key} is one price, not a table of device prices")
        return value

    def source(self, key: str, device: str | None = None) -> str:
        """Where a price came from, in words."""
        name = key if device is None else f"{key}.{device}"
        return self.sources.get(name) or self.sources.get(key) or f"qhw's price table of {PRICES_TAKEN}"

    def overridden(self, key: str, device: str | None = None) -> bool:
        """Whether the user's price file set this price (it then wins over any other)."""
        name = key if device is None else f"{key}.{device}"
        return any(where.startswith(USER_SOURCE) for where in (self.sources.get(name), self.sources.get(key)) if where)

    def with_device_price(self, key: str, device: str, price: float, source: str) -> PriceTable:
        """This table with one device's price in ``key`` set, and where it came from."""
        table = dict(self.by_device(key))
        table[device] = _check_price(price, f"{source}: {key}.{device}")
        return PriceTable({**self.values, key: table}, self.taken, {**self.sources, f"{key}.{device}": source})


#: How a price set in the user's price file names its source.
USER_SOURCE = "your price file"


@dataclass(frozen=True)
class CostEstimate:
    """An amount in USD with the quantities it came from."""

    usd: float
    detail: str
    prices_taken: str
    # What the same run would cost otherwise, in words (packed: "with --pack auto ...").
    alternative: str | None = None
    # The device time it is, where the provider bills by time (IBM's QPU seconds).
    quantum_seconds: float | None = None

    @property
    def usd_text(self) -> str:
        return usd(self.usd)

    def __str__(self) -> str:
        shown = f"{usd(self.usd)} ({self.detail}; prices of {self.prices_taken})"
        return shown if self.alternative is None else f"{shown} [{self.alternative}]"


def sum_estimates(estimates: list[CostEstimate]) -> CostEstimate:
    """Estimates of parts (an adaptive run's rounds, jobs of different shots) as one."""
    if len(estimates) == 1:
        return estimates[0]
    seconds = [e.quantum_seconds for e in estimates]
    known = [s for s in seconds if s is not None]
    return CostEstimate(
        usd=sum(e.usd for e in estimates), detail=" + ".join(f"({e.detail})" for e in estimates), prices_taken=estimates[0].prices_taken,
        quantum_seconds=sum(known) if len(known) == len(seconds) else None,
    )


def usd(amount: float | None, unknown: str = "unknown") -> str:
    """An amount of USD as qhw shows it everywhere (tables, reports,
    estimates): cents from a dollar up (and zero), four decimals below a
    dollar; ``unknown`` for None."""
    if amount is None:
        return unknown
    return f"${amount:,.2f}" if amount >= 1 or amount == 0 else f"${amount:.4f}"


def default_prices() -> dict[str, Price]:
    """Every provider module's defaults, keyed by price name."""
    from qhw.providers import provider_modules

    defaults: dict[str, Price] = {}
    for module in provider_modules():
        for key, value in getattr(module, "PRICES", {}).items():
            if key in defaults:
                raise ConfigError(f"two backend providers declare the price {key!r}")
            defaults[key] = dict(value) if isinstance(value, dict) else float(value)
    return defaults


def load_prices() -> PriceTable:
    """The providers' defaults with the user's overrides applied.

    The override file is checked as a whole before any price is used: known
    keys only (with a "did you mean" for near misses), numbers only, each
    finite and zero or more, and device tables naming known devices (or
    ``braket:<device ARN>``).

    Raises:
        ConfigError: the file is unreadable, not TOML, or breaks the schema;
            the message names the key and the file.
    """
    from qhw import config

    explicit = os.environ.get(PRICES_ENV)
    path = Path(explicit) if explicit else config.home() / "prices.toml"
    defaults = default_prices()
    if not path.exists():
        if explicit:
            raise ConfigError(f"{PRICES_ENV} names {path}, which does not exist")
        return PriceTable(defaults)
    if not path.is_file():  # a folder, /dev/null, a FIFO: never read as "no overrides"
        what = "a folder, not a price file" if path.is_dir() else "not a regular file, so not a price file"
        where = f"{PRICES_ENV} names {path}, which is" if explicit else f"{path} is"
        raise ConfigError(f"{where} {what}")
    try:
        overrides = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: not a readable TOML price file ({err})") from err
    merged = dict(defaults)
    sources: dict[str, str] = {}
    for key, value in overrides.items():
        if key not in defaults:
            raise ConfigError(f"{path}: unknown price {key!r}{_did_you_mean(key, defaults)}; known: {', '.join(sorted(defaults))}")
        default = defaults[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: {key} must be a table of device = price, e.g. [{key}], got {value!r}")
            for device, price in value.items():
                if device not in default and not device.startswith(ARN_PREFIX):
                    raise ConfigError(
                        f"{path}: [{key}] has no device {device!r}{_did_you_mean(device, default)}; "
                        f"known: {', '.join(sorted(default))}, or {ARN_PREFIX}<device ARN>"
                    )
                _check_price(price, f"{path}: {key}.{device}")
                sources[f"{key}.{device}"] = f"{USER_SOURCE} {path}"
            merged[key] = {**default, **{device: float(price) for device, price in value.items()}}
        else:
            merged[key] = _check_price(value, f"{path}: {key}")
            sources[key] = f"{USER_SOURCE} {path}"
    return PriceTable(merged, taken=f"{PRICES_TAKEN}, overridden by {path}", sources=sources)


def _check_price(value: object, where: str) -> float:
    # TOML has nan and inf, and bools are ints to Python: none of them is a price.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    # An integer of 400 digits is finite to Python and has no float: show its start.
    shown = repr(value) if len(repr(value)) <= 24 else f"{repr(value)[:21]}... ({len(repr(value))} digits)"
    if isinstance(value, int) and abs(value) > 1e300 or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where} must be a finite number, zero or more, got {shown}")
    return float(value)


def _did_you_mean(name: str, known) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_amount(value: float | None, *, parameter: str | None = None, where: str | None = None) -> None:
    """Refuse an amount of money that is not finite or is negative.

    Raises:
        ParameterError: naming the ``parameter`` that holds it;
        ConfigError: else naming ``where`` the amount came from.
    """
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        problem = f"must be a finite amount of USD, zero or more, got {value!r}"
        if parameter is not None:
            raise ParameterError(parameter, problem)
        raise ConfigError(f"{where} {problem}")
