"""Reading a file a user names, safely: a regular file of a bounded size, or a one-line refusal.

``Path.read_bytes`` on a FIFO waits for a writer that may never come, and on
``/dev/zero`` reads until memory runs out. The file is opened without
blocking, checked on the open descriptor (so a file swapped after a check
cannot slip through) and read up to its bound, never further.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from qhw.boundary import os_reason
from qhw.errors import ConfigError


def read_regular_file(path: Path, *, limit: int, what: str) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes.

    Args:
        what: what the file is to the user ("--feature-map"), opening each refusal.

    Raises:
        ConfigError: no such file, not a regular file (a FIFO, a device, a
            folder), larger than ``limit``, or unreadable.
    """
    try:
        # O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigError(f"{what}: no file {path}") from None
    except OSError as err:
        raise ConfigError(f"{what}: cannot read {path}: {os_reason(err)}") from None
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            kind = "a folder" if stat.S_ISDIR(status.st_mode) else "not a regular file (a FIFO, a device or a socket)"
            raise ConfigError(f"{what}: {path} is {kind}; give a regular file")
        if status.st_size > limit:
            raise ConfigError(f"{what}: {path} is {_size(status.st_size)}; qhw reads such files up to {_size(limit)}")
        try:
            data = handle.read(limit + 1)
        except OSError as err:
            raise ConfigError(f"{what}: cannot read {path}: {os_reason(err)}") from None
    if len(data) > limit:  # grew between the check and the read
        raise ConfigError(f"{what}: {path} is over {_size(limit)}; qhw reads such files up to {_size(limit)}")
    return data


def _size(size: int) -> str:
    if size >= 2**20:
        return f"{size / 2**20:,.1f} MiB"
    if size >= 2**10:
        return f"{size / 2**10:,.0f} KiB"
    return f"{size} bytes"
