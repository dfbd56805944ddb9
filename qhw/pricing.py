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

    Raises:
        ConfigError: the override file is not valid TOML or names unknown prices.
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
        overrides = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: not a readable TOML price file ({err})") from err
    known = set(PriceTable.__dataclass_fields__) - {"taken"}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"{path}: unknown prices {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    merged = {}
    for key, value in overrides.items():
        default = getattr(table, key)
        merged[key] = {**default, **value} if isinstance(default, dict) else float(value)
    return replace(table, **merged, taken=f"{PRICES_TAKEN}, overridden by {path}")


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
