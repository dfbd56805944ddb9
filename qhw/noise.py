"""A harsher emulated device: what ``--noise SPEC`` adds to a device's calibrated noise.

An emulated device (``fake_*``, ``braket_emulator:``) reads one calibration
snapshot of independent, stationary errors. SPEC adds what a real device does
beyond it, as comma-separated ``key=value`` items:

- ``scale=F``: every gate error (its depolarizing and relaxation parts) times F;
- ``readout=F``: every readout error times F;
- ``reset=P``: a reset leaves its qubit in |1> with probability P;
- ``measure-crosstalk=P``: a mid-circuit measurement dephases each physical
  neighbour of its qubit with probability P;
- ``crosstalk=THETA``: a ZZ rotation of THETA radians on each coupled pair of
  physical qubits of which one belongs to a copy, after each layer of
  two-qubit gates;
- ``prep=auto|P``: state-preparation error, from each qubit's T1 and the
  run's rep_delay (``auto``), or P on every qubit;
- ``bad-qubit=Q:P`` (repeatable): physical qubit Q gets an extra depolarizing
  error P on each gate and on its readout, unknown to the calibration the
  partition reads (a qubit gone bad after its calibration);
- ``drift=SIGMA``: each job's error rates scaled by a seeded log-normal factor
  of sigma SIGMA, drawn a job;
- ``seed=N``: the seed of the drift's draws.

This module reads and checks SPEC (one number reading, qhw.checks): a value,
kept with the run. Which device's qubits a ``bad-qubit`` may name is the
device's to check (:meth:`NoiseSpec.check_qubits`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from qhw.checks import SEED_MAX, parse_decimal, parse_integer
from qhw.errors import ParameterError

#: The largest factor ``scale`` and ``readout`` take: past it most errors are
#: capped at a fully mixing channel, and the figures say nothing more.
MAX_FACTOR = 100.0
#: The largest ``drift`` sigma: a factor of e**3 (about 20) at three sigma.
MAX_DRIFT = 1.0
AUTO = "auto"


@dataclass(frozen=True)
class NoiseSpec:
    """What ``--noise`` adds to an emulated device's own noise (see the module docstring)."""

    scale: float = 1.0
    readout: float = 1.0
    reset: float = 0.0
    measure_crosstalk: float = 0.0
    crosstalk: float = 0.0
    prep: float | str = 0.0  # a probability, or AUTO
    bad_qubits: tuple[tuple[int, float], ...] = ()
    drift: float = 0.0
    seed: int | None = None

    @property
    def is_default(self) -> bool:
        """Nothing added: the device's own calibrated noise."""
        return self == NoiseSpec()

    def text(self) -> str:
        """SPEC as it would be written, each key that differs from the default once (bad qubits in order)."""
        default = NoiseSpec()
        items = [
            f"{key}={_number(getattr(self, name))}"
            for key, name in _SCALARS.items()
            if getattr(self, name) != getattr(default, name)
        ]
        items += [f"bad-qubit={qubit}:{_number(p)}" for qubit, p in self.bad_qubits]
        return ",".join(items)

    def check_qubits(self, num_qubits: int, device: str) -> None:
        """Every ``bad-qubit`` names a qubit of the device.

        Raises:
            ParameterError: naming the qubit and the device's qubits.
        """
        for qubit, _ in self.bad_qubits:
            if qubit >= num_qubits:
                raise ParameterError("noise", f"bad-qubit={qubit}: {device} has qubits 0 to {num_qubits - 1}")


#: SPEC's keys of one value, and the field each sets.
_SCALARS = {
    "scale": "scale", "readout": "readout", "reset": "reset", "measure-crosstalk": "measure_crosstalk",
    "crosstalk": "crosstalk", "prep": "prep", "drift": "drift", "seed": "seed",
}
KEYS = (*_SCALARS, "bad-qubit")
_PROBABILITIES = frozenset({"reset", "measure-crosstalk", "prep"})


def parse_noise(spec: str) -> NoiseSpec:
    """``--noise SPEC`` read and checked: comma-separated ``key=value`` items.

    Raises:
        ParameterError: one line naming the item at fault: an unknown key, a
            key given twice (``bad-qubit`` aside), a value that is not a
            number, or one out of its range.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ParameterError("noise", f"must be key=value items ({', '.join(KEYS)}), got {spec!r}")
    values: dict[str, Any] = {}
    bad: dict[int, float] = {}
    for item in spec.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise ParameterError("noise", f"item {item.strip()!r} is not key=value ({', '.join(KEYS)})")
        if key == "bad-qubit":
            qubit, p = _bad_qubit(value)
            if qubit in bad:
                raise ParameterError("noise", f"bad-qubit={qubit} is given twice")
            bad[qubit] = p
            continue
        if key not in _SCALARS:
            raise ParameterError("noise", f"has no key {key!r}: its keys are {', '.join(KEYS)}")
        if _SCALARS[key] in values:
            raise ParameterError("noise", f"{key} is given twice")
        values[_SCALARS[key]] = _value(key, value)
    return NoiseSpec(**values, bad_qubits=tuple(sorted(bad.items())))


def _value(key: str, text: str) -> float | int | str:
    if key == "seed":
        try:
            seed = parse_integer(text)
        except ValueError:
            seed = -1
        if not 0 <= seed <= SEED_MAX:
            raise ParameterError("noise", f"seed={text} must be a whole number from 0 to {SEED_MAX}")
        return seed
    if key == "prep" and text.lower() == AUTO:
        return AUTO
    number = _finite(key, text)
    bounds = {
        "scale": (0.0, MAX_FACTOR), "readout": (0.0, MAX_FACTOR), "reset": (0.0, 1.0), "measure-crosstalk": (0.0, 1.0),
        "crosstalk": (-math.pi, math.pi), "prep": (0.0, 1.0), "drift": (0.0, MAX_DRIFT),
    }
    low, high = bounds[key]
    if not low <= number <= high:
        what = "a probability from 0 to 1" if key in _PROBABILITIES else f"from {low:g} to {high:g}"
        raise ParameterError("noise", f"{key}={text} must be {what}" + (" (or auto)" if key == "prep" else ""))
    return number


def _bad_qubit(text: str) -> tuple[int, float]:
    qubit_text, sep, p_text = text.partition(":")
    try:
        qubit = parse_integer(qubit_text.strip()) if sep else -1
    except ValueError:
        qubit = -1
    if qubit < 0:
        raise ParameterError("noise", f"bad-qubit={text} must be Q:P, a physical qubit and an extra error probability")
    p = _finite("bad-qubit", p_text.strip())
    if not 0.0 <= p <= 1.0:
        raise ParameterError("noise", f"bad-qubit={text}: its error must be a probability from 0 to 1")
    return qubit, p


def _finite(key: str, text: str) -> float:
    try:
        number = parse_decimal(text)
    except ValueError:
        raise ParameterError("noise", f"{key}={text} is not a number") from None
    if not math.isfinite(number):
        raise ParameterError("noise", f"{key}={text} is not finite")
    return number


def _number(value: float | int | str) -> str:
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, int) else f"{value:.15g}"
