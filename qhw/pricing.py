"""Prices of paid backends, in one place, and the estimates made from them.

The defaults below are the providers' published list prices (Amazon Braket's
pricing page, IBM Quantum's pay-as-you-go plan) as recorded on PRICES_TAKEN,
from the team's knowledge: qhw never fetches a price list, and the machine that
wrote this table could not reach those pages to re-check them. Every estimate
names that date. Override any price in a TOML file at $QHW_PRICES or
$QHW_HOME/prices.toml, e.g.::

    braket_per_task_usd = 0.30
    ibm_usd_per_qpu_second = 0.0      # an Open-plan account

    [braket_per_shot_usd]
    ionq_forte = 0.08
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from qhw.errors import ConfigError

PRICES_TAKEN = "2026-11-01"
PRICES_ENV = "QHW_PRICES"


@dataclass(frozen=True)
class PriceTable:
    # Amazon Braket: every task (a program set counts as one) plus every shot on a QPU.
    braket_per_task_usd: float = 0.30
    braket_per_shot_usd: dict[str, float] = field(
        default_factory=lambda: {
            "ionq_forte": 0.08,
            "ionq_aria": 0.03,
            "iqm_garnet": 0.00145,
            "rigetti_ankaa": 0.0009,
        }
    )
    # Braket's managed simulators bill simulation time by the minute, at least 3 s a task.
    braket_simulator_usd_per_minute: dict[str, float] = field(
        default_factory=lambda: {"braket_sv1": 0.075, "braket_dm1": 0.075}
    )
    braket_simulator_min_seconds: float = 3.0
    # A rough simulation time per shot for a 5-qubit circuit; sets the estimate
    # above the 3 s floor only for very large tasks.
    braket_simulator_seconds_per_shot: float = 0.0001
    # IBM Quantum pay-as-you-go: QPU time. IBM publishes no per-shot time, so
    # the estimate is per-job overhead plus a time per shot (both configurable).
    ibm_usd_per_qpu_second: float = 1.60
    ibm_seconds_per_job: float = 2.0
    ibm_seconds_per_shot: float = 0.0002
    taken: str = PRICES_TAKEN


@dataclass(frozen=True)
class CostEstimate:
    """An estimate in USD with the quantities it came from."""

    usd: float
    detail: str
    prices_taken: str

    def __str__(self) -> str:
        amount = f"${self.usd:,.2f}" if self.usd >= 1 else f"${self.usd:.4f}"
        return f"{amount} ({self.detail}; prices of {self.prices_taken})"


def load_prices() -> PriceTable:
    """The default table with the user's overrides applied.

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
    table = PriceTable()
    if not path.is_file():
        if explicit:
            raise ConfigError(f"{PRICES_ENV} names {path}, which does not exist")
        return table
    try:
        overrides = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: not a readable TOML price file ({err})") from err
    merged = {}
    for key, value in overrides.items():
        default = getattr(table, key, None) if key in _PRICE_KEYS else None
        if default is None:
            raise ConfigError(f"{path}: unknown price {key!r}{_did_you_mean(key, _PRICE_KEYS)}; known: {', '.join(sorted(_PRICE_KEYS))}")
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
            merged[key] = {**default, **{device: float(price) for device, price in value.items()}}
        else:
            merged[key] = _check_price(value, f"{path}: {key}")
    return replace(table, **merged, taken=f"{PRICES_TAKEN}, overridden by {path}")


ARN_PREFIX = "braket:"
_PRICE_KEYS = frozenset(PriceTable.__dataclass_fields__) - {"taken"}


def _check_price(value: object, where: str) -> float:
    # TOML has nan and inf, and bools are ints to Python: none of them is a price.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where} must be a finite number, zero or more, got {value!r}")
    return float(value)


def _did_you_mean(name: str, known) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_amount(value: float | None, where: str) -> None:
    """Refuse an amount of money that is not finite or is negative.

    Raises:
        ConfigError: naming ``where`` the amount came from.
    """
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"{where} must be a finite amount of USD, zero or more, got {value!r}")


def braket_qpu_cost(prices: PriceTable, name: str, tasks: int, total_shots: int) -> CostEstimate | None:
    per_shot = prices.braket_per_shot_usd.get(name)
    if per_shot is None:
        return None
    usd = tasks * prices.braket_per_task_usd + total_shots * per_shot
    detail = f"{tasks} task(s) x ${prices.braket_per_task_usd} + {total_shots:,} shots x ${per_shot}"
    return CostEstimate(usd, detail, prices.taken)


def braket_simulator_cost(prices: PriceTable, name: str, tasks: int, total_shots: int) -> CostEstimate | None:
    per_minute = prices.braket_simulator_usd_per_minute.get(name)
    if per_minute is None:
        return None
    shots_per_task = total_shots / max(tasks, 1)
    seconds = tasks * max(prices.braket_simulator_min_seconds, shots_per_task * prices.braket_simulator_seconds_per_shot)
    usd = seconds / 60 * per_minute
    detail = f"{tasks} task(s), about {seconds:,.0f} s billed at ${per_minute}/min (min {prices.braket_simulator_min_seconds:g} s a task)"
    return CostEstimate(usd, detail, prices.taken)


def ibm_cost(prices: PriceTable, jobs: int, total_shots: int) -> CostEstimate:
    seconds = jobs * prices.ibm_seconds_per_job + total_shots * prices.ibm_seconds_per_shot
    usd = seconds * prices.ibm_usd_per_qpu_second
    detail = f"about {math.ceil(seconds):,} QPU s for {jobs} job(s) and {total_shots:,} shots at ${prices.ibm_usd_per_qpu_second}/s"
    return CostEstimate(usd, detail, prices.taken)
