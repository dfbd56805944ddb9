"""Checks of the inputs every library entry point shares, made before any write.

The command line's option types refuse the same values first (qhw.cli_options);
these keep library callers just as safe.
"""

from __future__ import annotations

import os
import re
from typing import Any

from qhw.errors import ParameterError

#: NumPy, scikit-learn, TensorFlow and Qiskit all take seeds in this range.
SEED_MAX = 2**32 - 1
#: Ids are SQLAlchemy Integer columns: PostgreSQL's INTEGER holds no more.
ID_MAX = 2**31 - 1
#: Training epochs: far beyond any useful count, well inside what Keras takes.
EPOCHS_MAX = 100_000
#: Local worker processes: more than any machine has cores.
WORKERS_MAX = 1024


#: A number as qhw reads one, from an option or the environment: ASCII digits,
#: an optional sign, point and exponent. Python's ``int`` and ``float`` also
#: take ``1_0e-5`` (underscores) and other scripts' digits (``'٠.٠٠٠١'``), which
#: a reader of the command line would not take for the number they are.
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
#: Words ``float`` reads that qhw's checks then refuse with their own reason (not finite).
_NON_FINITE = re.compile(r"[+-]?(nan|inf|infinity)", re.ASCII | re.IGNORECASE)


def parse_integer(text: object) -> int:
    """A whole number in plain ASCII decimal digits (an optional sign).

    Raises:
        ValueError: anything else (underscores, other scripts' digits, spaces, a fraction).
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a whole number")
    if isinstance(text, int):
        return text
    if not isinstance(text, str) or not _INTEGER.fullmatch(text):
        raise ValueError(f"{text!r} is not a whole number")
    return int(text)


def parse_decimal(text: object) -> float:
    """A number in plain ASCII decimal notation (``1e-4``, ``-0.5``, ``.25``), or
    ``nan``/``inf`` (for the caller's finiteness check to refuse with its reason).

    Raises:
        ValueError: anything else (underscores, other scripts' digits, spaces).
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a number")
    if isinstance(text, (int, float)):
        return float(text)
    if not isinstance(text, str) or not (_DECIMAL.fullmatch(text) or _NON_FINITE.fullmatch(text)):
        raise ValueError(f"{text!r} is not a number")
    return float(text)


def check_seed(seed: int | None, parameter: str = "seed") -> None:
    """Raises ParameterError unless ``seed`` is None or an integer in 0..2**32-1."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ParameterError(parameter, f"must be an integer from 0 to {SEED_MAX}, got {seed!r}")


def check_positive(value: int | None, parameter: str) -> None:
    """Raises ParameterError unless ``value`` is None or a positive integer."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(parameter, f"must be a positive integer, got {value!r}")


class NotAnArchive(ValueError):
    """A file that should be an .npz (a zip archive of .npy arrays) and is not."""


def load_npz(path: str | os.PathLike[str]) -> Any:
    """``numpy.load`` of an .npz archive, never of anything else.

    NumPy reads a file that is not a zip archive as one pickled object, and on
    a text file says to load it with ``allow_pickle=True``: advice never to
    follow with a file of unknown origin. Anything that is not a zip archive
    is refused here first.

    Raises:
        NotAnArchive: the file is not a zip archive.
        OSError: the file cannot be read.
    """
    import zipfile

    import numpy as np

    with open(path, "rb") as handle:  # a missing or unreadable file is an OSError, as NumPy's
        if not zipfile.is_zipfile(handle):
            raise NotAnArchive("not an .npz archive (it is not a zip file)")
    return np.load(path, allow_pickle=False)
