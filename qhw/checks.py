"""Checks of the inputs every library entry point shares, made before any write.

The command line's option types refuse the same values first (qhw.cli_options);
these keep library callers just as safe.
"""

from __future__ import annotations

from qhw.errors import ConfigError

#: NumPy, scikit-learn, TensorFlow and Qiskit all take seeds in this range.
SEED_MAX = 2**32 - 1
#: Ids are SQLAlchemy Integer columns: PostgreSQL's INTEGER holds no more.
ID_MAX = 2**31 - 1
#: Training epochs: far beyond any useful count, well inside what Keras takes.
EPOCHS_MAX = 100_000
#: Local worker processes: more than any machine has cores.
WORKERS_MAX = 1024


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


class NotAnArchive(ValueError):
    """A file that should be an .npz (a zip archive of .npy arrays) and is not."""


def load_npz(path):
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
