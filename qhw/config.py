"""Where qhw keeps its data: QHW_HOME and the tracking database URL."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qhw.errors import ConfigError

HOME_ENV = "QHW_HOME"
DB_URL_ENV = "QHW_DB_URL"


def home() -> Path:
    """Return the qhw home folder, creating it if needed.

    ``$QHW_HOME`` wins; otherwise the platform's user data folder.

    Raises:
        ConfigError: the home is not a usable folder (a file, not UTF-8, a
            name too long, not creatable).
    """
    configured = os.environ.get(HOME_ENV)
    if configured:
        path = Path(configured).expanduser()
        where = f"{HOME_ENV} ({_shown(path)})"
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("qhw", appauthor=False))
        where = f"qhw's home {_shown(path)}"
    _check_utf8(path, where)
    _check_folder(path, f"{where}", f": point {HOME_ENV} at a folder")
    _make_folder(path, where)
    return path


def database_url(explicit: str | None = None) -> str:
    """The SQLAlchemy URL of the tracking database.

    Order: the ``--db`` option, ``$QHW_DB_URL``, then SQLite in the home folder.
    """
    if explicit:
        return explicit
    from_env = os.environ.get(DB_URL_ENV)
    if from_env:
        return from_env
    return f"sqlite:///{home() / 'qhw.db'}"


def data_dir(kind: str) -> Path:
    """A sub-folder of the home for one kind of artefact (features, models, reports)."""
    path = home() / kind
    _make_folder(path, f"{_shown(path)}")
    return path


def writable_dir(path: Path, what: str) -> Path:
    """Make sure files can be written in ``path`` (created if needed), before
    spending time on what will be written there.

    Raises:
        ConfigError: naming ``what`` and the folder, with the reason.
    """
    path = Path(path)
    check_writable(path, what)
    _make_folder(path, f"{what} {_shown(path)}")
    return path


def check_writable(path: Path, what: str) -> None:
    """Make sure a folder could be written (created if need be), without
    creating it or leaving anything behind: for a command that is refused
    later, nothing of it may remain.

    Raises:
        ConfigError: naming ``what`` and the folder, with the reason.
    """
    path = Path(path)
    where = f"{what} {_shown(path)}"
    _check_utf8(path, where)
    _check_folder(path, where)
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{where} cannot be created: {_shown(existing)} is a file")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".qhw-write-check-"):
            pass
    except OSError as err:
        raise ConfigError(f"{where} is not writable: {err.strerror}") from err


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Name the file when writing it fails (a full disk, a quota), in one line.

    Raises:
        ConfigError: the OSError of the write, with the file's name.
    """
    from qhw.boundary import os_reason

    try:
        yield
    except OSError as err:
        raise ConfigError(f"{_shown(Path(path))}: cannot be written: {os_reason(err)}") from err


def _check_folder(path: Path, where: str, advice: str = "") -> None:
    try:
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{where} is a file, not a folder{advice}")
    except OSError as err:  # a name too long, a loop of links
        raise ConfigError(f"{where} cannot be used: {err.strerror}") from err


def _make_folder(path: Path, where: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{where} cannot be created: {err.strerror}") from err


def _check_utf8(path: Path, where: str) -> None:
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{where} is not a valid UTF-8 path; use a UTF-8 name") from None


def _shown(path: Path) -> str:
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")
