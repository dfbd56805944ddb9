"""What the command line says about errors that are not qhw's own.

File-system errors name the path and what to do; anything else unexpected is
named as such, in one line (``QHW_DEBUG=1`` shows the traceback instead).
"""

from __future__ import annotations

import errno
import logging

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


#: The most of a stored value (a path, a reference, a name) a message quotes.
QUOTED_MAX = 60
#: The longest error line the command line prints; anything longer is cut, saying how much was.
LINE_MAX = 1000


def quoted(value: object, limit: int = QUOTED_MAX) -> str:
    """A value from a row, a file or a store as a message quotes it: in
    quotes, control characters escaped (a newline cannot start a second
    line), cut after ``limit`` characters (a 10 kB value cannot fill the
    terminal)."""
    text = str(value)
    cut = len(text) > limit
    shown = repr(text[:limit])
    return f"{shown[:-1]}...{shown[-1]}" if cut else shown


def one_line(message: str, limit: int = LINE_MAX) -> str:
    """An error message as the one line the command line promises: line
    breaks and other control characters escaped, and at most ``limit``
    characters. A safety net: messages name what they quote with quoted()."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message.strip())
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def os_reason(err: OSError) -> str:
    """What an OSError means, in words, with what to do where qhw knows."""
    return _ADVICE.get(err.errno, err.strerror or str(err)) if err.errno is not None else err.strerror or str(err)


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


def configure_output(*, debug: bool) -> None:
    """What reaches the terminal: qhw's own log records (WARNING and above,
    as "qhw: ..."), and nothing of other libraries' warnings and log records
    (qiskit-braket-provider's "Qubit 6 found in device properties but not in
    topology", qiskit-ibm-runtime's "Using instance: ..., plan: open" on every
    IBM command), which qhw turns into its own words where they matter.
    ``debug`` (QHW_DEBUG=1) shows those too, WARNING and above, each named by
    its logger; never DEBUG records, which carry request headers.
    """
    import logging
    import os
    import warnings

    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _Terminal)), None)
    if handler is None:
        handler = _Terminal()
        root.addHandler(handler)  # also keeps Python's last-resort handler from printing others' records
    handler.debug = debug
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    # qiskit-ibm-runtime prints through a handler of its own, added when it is imported;
    # a level the user set for it (QISKIT_IBM_RUNTIME_LOG_LEVEL) is theirs.
    if not os.environ.get("QISKIT_IBM_RUNTIME_LOG_LEVEL"):
        logging.getLogger("qiskit_ibm_runtime").setLevel(logging.WARNING if debug else logging.CRITICAL)
    if not debug:
        warnings.filterwarnings("ignore")


class _Terminal(logging.Handler):
    """Log records on whatever stderr is now (a test's captured stream
    included): qhw's as "qhw: ...", others' only with ``debug``."""

    debug = False

    def emit(self, record) -> None:
        import logging
        import sys

        ours = record.name == "qhw" or record.name.startswith("qhw.")
        if record.levelno < logging.WARNING or not (ours or self.debug):
            return
        try:
            text = record.getMessage() if ours else f"{record.name}: {record.levelname}: {record.getMessage()}"
            sys.stderr.write(f"qhw: {text}\n" if ours else f"{text}\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - a log line must never end a command
            self.handleError(record)
