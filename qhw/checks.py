"""Checks of the inputs every library entry point shares, made before any write.

The command line's option types refuse the same values first (qhw.cli_options);
these keep library callers just as safe.
"""

from __future__ import annotations

from qhw.errors import ConfigError

#: NumPy, scikit-learn, TensorFlow and Qiskit all take seeds in this range.
SEED_MAX = 2**32 - 1


def check_seed(seed: int | None, option: str = "--seed") -> None:
    """Raises ConfigError unless ``seed`` is None or an integer in 0..2**32-1."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"{option} must be an integer from 0 to {SEED_MAX}, got {seed!r}")


def check_positive(value: int | None, option: str) -> None:
    """Raises ConfigError unless ``value`` is None or a positive integer."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{option} must be a positive integer, got {value!r}")
