"""What the command line says about errors that are not qhw's own.

File-system errors name the path and what to do; anything else unexpected is
named as such, in one line (``QHW_DEBUG=1`` shows the traceback instead).
"""

from __future__ import annotations

import errno

_ADVICE = {
    errno.ENOENT: "no such file or folder",
    errno.EACCES: "permission denied: make it writable (and readable) for you, or point QHW_HOME or --out elsewhere",
    errno.EPERM: "not permitted: the file or folder is protected (read-only or immutable); point QHW_HOME or --out elsewhere",
    errno.EROFS: "the file system is read-only; point QHW_HOME or --out elsewhere",
    errno.ENOTDIR: "a file stands where a folder is needed",
    errno.EISDIR: "a folder stands where a file is needed",
    errno.EEXIST: "something already exists there",
    errno.ENAMETOOLONG: "the name is too long for the file system (255 bytes a name at most)",
    errno.ENOSPC: "no space left on the device; free some space there",
    errno.EDQUOT: "disk quota exceeded; free some space there",
}


def os_reason(err: OSError) -> str:
    """What an OSError means, in words, with what to do where qhw knows."""
    return _ADVICE.get(err.errno, err.strerror or str(err))


def explain(err: BaseException) -> str:
    """One line for an error that reached the command line boundary."""
    if isinstance(err, OSError) and err.errno in _ADVICE:
        where = err.filename if err.filename is not None else "a file"
        return f"{where}: {_ADVICE[err.errno]}"
    if isinstance(err, OSError):
        where = f"{err.filename}: " if err.filename is not None else ""
        return f"{where}{err.strerror or err}"
    if isinstance(err, UnicodeError):
        return f"a path or file is not valid UTF-8 ({err}); use a UTF-8 name"
    if isinstance(err, MemoryError):
        return "out of memory; use fewer samples (--limit) or shots"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"unexpected {type(err).__name__}{': ' + text if text else ''} (a bug in qhw? QHW_DEBUG=1 shows where it happened)"
