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

A preset names a set of values, any of which a later key overrides:
``realistic`` (PRESETS; docs/how-to/noise.md says where each figure comes from), as in
``--noise realistic,reset=0.02``.

This module reads and checks SPEC (one number reading, qhw.checks): a value,
kept with the run. Which device's qubits a ``bad-qubit`` may name is the
device's to check (:meth:`NoiseSpec.check_qubits`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from qhw.checks import SEED_MAX, parse_decimal, parse_integer
from qhw.errors import ParameterError

#: The largest factor ``scale`` and ``readout`` take: past it most errors are
#: capped at a fully mixing channel, and the figures say nothing more.
MAX_FACTOR = 100.0
#: The largest ``drift`` sigma: a factor of e**3 (about 20) at three sigma.
MAX_DRIFT = 1.0
AUTO = "auto"
#: A qubit's excited population when a shot ends, before the rep_delay lets it
#: relax (prep=auto): a measured qubit is as likely in |1> as in |0> on average
#: over the feature map's outcomes, and no active reset is assumed.
EXCITED_AT_SHOT_END = 0.5


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
    #: Not part of SPEC: prep=auto's probability times this (a job's drift,
    #: see drifted), and the run's rep_delay it reads (None: the device's default).
    prep_factor: float = 1.0
    rep_delay: float | None = None
    #: Not part of SPEC: qubits the run uses outside the circuit at hand (the
    #: other copies of a packed run whose copies are computed apart): a
    #: neighbour in use, never an idle one.
    busy_qubits: tuple[int, ...] = ()

    @property
    def is_default(self) -> bool:
        """Nothing added: the device's own calibrated noise."""
        return not self.text()

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

    @property
    def writes_channels(self) -> bool:
        """Whether it adds instructions to a circuit (everything but the gate and readout factors and the drift does)."""
        return bool(self.reset or self.measure_crosstalk or self.crosstalk or self.prep or self.bad_qubits)

    def drifted(self, factor: float) -> NoiseSpec:
        """The spec a job with drift factor ``factor`` runs: every error rate
        (gate and readout factors, the probabilities, the crosstalk angle and
        each bad qubit's error) times ``factor``, probabilities capped at 1
        (its ``drift`` kept: it says the spec is one job's)."""
        if factor == 1.0:
            return self
        prep = self.prep if isinstance(self.prep, str) else min(1.0, self.prep * factor)
        return replace(
            self, scale=self.scale * factor, readout=self.readout * factor, reset=min(1.0, self.reset * factor),
            measure_crosstalk=min(1.0, self.measure_crosstalk * factor), crosstalk=self.crosstalk * factor, prep=prep,
            bad_qubits=tuple((q, min(1.0, p * factor)) for q, p in self.bad_qubits),
            prep_factor=self.prep_factor * factor if isinstance(self.prep, str) else 1.0,
        )

    def drift_factor(self, *key: int) -> float:
        """A job's drift factor: log-normal of median 1 and sigma ``drift``,
        drawn from ``seed`` and the job's own ``key`` (its round and first
        execution), so that a job draws the same factor in any process."""
        if self.drift == 0.0:
            return 1.0
        draw = np.random.default_rng([self.seed or 0, *key]).standard_normal()
        return float(np.exp(self.drift * draw))

    def prep_probability(self, t1_seconds: float | None, rep_delay: float) -> float:
        """The chance a qubit starts a shot in |1>: ``prep``, or (auto) what
        is left of the last shot's excitation after ``rep_delay``:
        EXCITED_AT_SHOT_END * exp(-rep_delay / T1)."""
        if not isinstance(self.prep, str):
            return self.prep
        if not t1_seconds:
            return 0.0
        return min(1.0, self.prep_factor * EXCITED_AT_SHOT_END * math.exp(-rep_delay / t1_seconds))

    def check_qubits(self, labels: Sequence[int], device: str) -> None:
        """Every ``bad-qubit`` names a qubit of the device (``labels``: its qubits, by its own labels).

        Raises:
            ParameterError: naming the qubit and the device's qubits.
        """
        known = sorted(labels)
        for qubit, _ in self.bad_qubits:
            if qubit not in known:
                span = f"{known[0]} to {known[-1]}" if known == list(range(known[0], known[-1] + 1)) else ", ".join(map(str, known))
                raise ParameterError("noise", f"bad-qubit={qubit}: {device} has qubits {span}")


#: Presets by name. ``realistic``: an IBM Heron device beyond its calibration
#: snapshot, of the order of published characterisations of IBM devices (the
#: docs/how-to/noise.md cites them and says how far they go): resets that leave 1 % of
#: qubits excited, 1 % dephasing of a neighbour by a mid-circuit measurement,
#: 0.01 rad of residual ZZ a layer (about 20 kHz over 80 ns), 1 %
#: state-preparation error, and error rates that drift by 20 % (sigma) between jobs.
PRESETS = {
    "realistic": NoiseSpec(reset=0.01, measure_crosstalk=0.01, crosstalk=0.01, prep=0.01, drift=0.2),
}

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
    preset: str | None = None
    for item in spec.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep and key in PRESETS:
            if preset is not None:
                raise ParameterError("noise", f"names two presets ({preset} and {key}): one at most")
            preset = key
            continue
        if not sep or not key:
            raise ParameterError("noise", f"item {item.strip()!r} is not key=value ({', '.join(KEYS)}) nor a preset ({', '.join(PRESETS)})")
        if key == "bad-qubit":
            qubit, p = _bad_qubit(value)
            if qubit in bad:
                raise ParameterError("noise", f"bad-qubit={qubit} is given twice")
            bad[qubit] = p
            continue
        if key not in _SCALARS:
            raise ParameterError("noise", f"has no key {key!r}: its keys are {', '.join(KEYS)}; its presets {', '.join(PRESETS)}")
        if _SCALARS[key] in values:
            raise ParameterError("noise", f"{key} is given twice")
        values[_SCALARS[key]] = _value(key, value)
    base = NoiseSpec() if preset is None else PRESETS[preset]
    merged = {f.name: getattr(base, f.name) for f in fields(NoiseSpec)} | values
    merged["bad_qubits"] = tuple(sorted((dict(base.bad_qubits) | bad).items()))
    return NoiseSpec(**merged)


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
