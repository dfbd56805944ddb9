"""Option types that carry their ranges, so that bad values stop at the edge.

Click's own ranges let NaN through (every comparison with NaN is false), and
a seed outside 0..2**32-1 reaches NumPy, scikit-learn and the transpiler as a
traceback; these types refuse both with one line naming the option.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import click

from qhw.checks import EPOCHS_MAX, ID_MAX, SEED_MAX, WORKERS_MAX, parse_decimal, parse_integer
from qhw.errors import ParameterError
from qhw.feature_maps import MAX_QUBITS, MAX_REPS, MIN_QUBITS
from qhw.packing import parse_copies, parse_reuse

#: Library parameters whose option is not their name with dashes.
_OPTIONS = {"model_id": "--model", "simulator_run_id": "--sim", "hardware_run_ids": "--hw"}


def option_for(parameter: str) -> str:
    """The option of the command line that sets a library parameter (``pack_spacing``: ``--pack-spacing``)."""
    return _OPTIONS.get(parameter, "--" + parameter.replace("_", "-"))


class IntegerRange(click.IntRange):
    """click.IntRange that reads plain ASCII digits only (qhw.checks.parse_integer:
    not ``1_0`` nor ``١٠``), and whose messages say "integer" rather than "integer range"."""

    name = "integer"

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            try:
                value = parse_integer(value)
            except ValueError:
                self.fail(f"{value!r} is not a valid integer", param, ctx)
        return super().convert(value, param, ctx)


SEED = IntegerRange(0, SEED_MAX)
POSITIVE = IntegerRange(min=1)
#: A run's or feature set's id: what every database qhw supports can hold.
ID = IntegerRange(1, ID_MAX)
EPOCHS = IntegerRange(1, EPOCHS_MAX)
WORKERS = IntegerRange(1, WORKERS_MAX)
#: An autoencoder's latent size: at most the 784 pixels it compresses.
LATENT = IntegerRange(1, 784)
#: A built-in feature map's qubits.
MAP_QUBITS = IntegerRange(MIN_QUBITS, MAX_QUBITS)
#: Repetitions of the zz and reupload maps.
MAP_REPS = IntegerRange(1, MAX_REPS)
#: Idle qubits kept between packed copies.
PACK_SPACING = IntegerRange(0, 1)


class FiniteFloat(click.ParamType):
    """A finite number, at least ``minimum`` (NaN and infinities refused)."""

    name = "number"

    def __init__(self, minimum: float = 0.0, unit: str = "", maximum: float | None = None) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.unit = unit

    def convert(self, value, param, ctx):
        try:
            number = parse_decimal(value)
        except ValueError:
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or number < self.minimum:
            self.fail(f"must be a finite number{self.unit}, {self.minimum:g} or more, got {value}", param, ctx)
        if self.maximum is not None and number > self.maximum:
            self.fail(f"must be between {self.minimum:g} and {self.maximum:g}{self.unit.removeprefix(' of')}, got {value}", param, ctx)
        return number


USD = FiniteFloat(0.0, " of USD")
SECONDS = FiniteFloat(0.0, " of seconds")
#: A pause between polls: a day at most (time.sleep refuses what it cannot represent).
INTERVAL = FiniteFloat(0.0, " of seconds", maximum=86400)


class AngleRange(click.ParamType):
    """``LOW:HIGH`` in radians: numbers, or multiples of pi (``0:pi``, ``-pi/2:pi/2``, ``0:2*pi``)."""

    name = "LOW:HIGH"
    _PI_FORM = re.compile(r"^(?P<sign>[-+]?)(?P<factor>[0-9]+(\.[0-9]*)?)?\*?pi(/(?P<divisor>[0-9]+(\.[0-9]*)?))?$", re.ASCII)

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        parts = str(value).replace(" ", "").split(":")
        if len(parts) != 2:
            self.fail(f"{value!r} is not LOW:HIGH (for example 0:pi or -pi/2:pi/2)", param, ctx)
        low, high = (self._angle(part, value, param, ctx) for part in parts)
        if not low < high:
            self.fail(f"LOW must be below HIGH, got {value}", param, ctx)
        return (low, high)

    def _angle(self, text: str, value, param, ctx) -> float:
        match = self._PI_FORM.match(text.lower())
        if match:
            divisor = float(match["divisor"] or 1)
            if divisor == 0:
                self.fail(f"{text!r} in {value!r} divides by zero", param, ctx)
            number = float(match["factor"] or 1) * math.pi / divisor
            number = -number if match["sign"] == "-" else number
        else:
            try:
                number = parse_decimal(text)
            except ValueError:
                self.fail(f"{text!r} in {value!r} is neither a number nor a multiple of pi", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{text!r} in {value!r} is not finite", param, ctx)
        return number


ANGLE_RANGE = AngleRange()


class AutoOrCount(click.ParamType):
    """``auto`` or a count, read by the library's own parser (None for auto),
    refused as a malformed option (exit 2)."""

    def __init__(self, name: str, parse: Callable[[int | str], int | None]) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value, param, ctx):
        try:
            count = self._parse(value)
        except ParameterError as err:
            self.fail(err.problem_worded(option_for), param, ctx)
        return "auto" if count is None else count


#: ``--pack``: copies side by side (qhw.packing.parse_copies); ``--reuse``: samples a copy runs in a shot (parse_reuse).
PACK = AutoOrCount("auto|N", parse_copies)
REUSE = AutoOrCount("auto|K", parse_reuse)
#: A pause between shots: IBM's devices take up to half a millisecond.
REP_DELAY = FiniteFloat(0.0, " of seconds", maximum=1.0)
#: A fidelity (--quality-floor) and a share of a run's device time (--quality-reserve).
FIDELITY = FiniteFloat(0.0, "", maximum=1.0)
SHARE = FiniteFloat(0.0, "", maximum=10.0)  # (runs.MAX_RESERVE)


class LazyHelp(click.Option):
    """An option whose help is made when it is shown: a registry (the
    feature maps) may gain entries after the command line is imported."""

    def __init__(self, *args, help_from, **kwargs) -> None:
        kwargs["help"] = help_from()
        super().__init__(*args, **kwargs)
        self._help_from = help_from

    def get_help_record(self, ctx):
        self.help = self._help_from()
        return super().get_help_record(ctx)
