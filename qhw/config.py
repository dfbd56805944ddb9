"""Where qhw keeps its data: QHW_HOME and the tracking database URL."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "QHW_HOME"
DB_URL_ENV = "QHW_DB_URL"


def home() -> Path:
    """Return the qhw home folder, creating it if needed.

    ``$QHW_HOME`` wins; otherwise the platform's user data folder.
    """
    configured = os.environ.get(HOME_ENV)
    if configured:
        path = Path(configured).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("qhw", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
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
    path.mkdir(parents=True, exist_ok=True)
    return path
