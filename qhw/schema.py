"""Schema versions through Alembic: create at head, refuse outdated, upgrade."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, inspect

from qhw.errors import SchemaOutdatedError, StoreError


def alembic_config(connection: Connection | None = None):
    """An Alembic Config pointing at the installed qhw.migrations package."""
    from alembic.config import Config

    import qhw.migrations

    config = Config()
    config.set_main_option("script_location", str(Path(qhw.migrations.__file__).parent))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this qhw knows."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise StoreError(f"qhw's migrations have {len(heads)} heads; expected one")
    return heads[0]


def current_revision(connection: Connection) -> str | None:
    """The revision the database is stamped with, or None when unversioned."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: head)."""
    from alembic import command

    command.upgrade(alembic_config(connection), revision)


def has_tables(connection: Connection) -> bool:
    """Whether the database holds any table at all."""
    return bool(inspect(connection).get_table_names())


def check_upgradable(connection: Connection) -> str | None:
    """The database's revision, when qhw may upgrade it: empty, or qhw's own
    at a revision this qhw knows.

    Raises:
        StoreError: the database holds tables qhw does not know, or a
            revision newer than this qhw.
    """
    current = current_revision(connection)
    if current is None:
        if has_tables(connection):
            raise StoreError(
                "the database has tables but no qhw schema version: it is not a qhw database, and qhw will not "
                "write its tables into it; point --db at a qhw database or an empty one"
            )
        return None
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    if current not in {rev.revision for rev in script.walk_revisions()}:
        raise StoreError(
            f"the database is at schema {current}, written by a newer qhw (this one knows up to {head_revision()}): "
            "upgrade qhw (pip install -U qhw); a database cannot be taken back to an older schema"
        )
    return current


def ensure_current(connection: Connection) -> None:
    """Create an empty database at head; refuse one at another revision.

    Raises:
        SchemaOutdatedError: the database is at an older revision.
        StoreError: the database is not qhw's, or is newer than this qhw.
    """
    current = check_upgradable(connection)
    head = head_revision()
    if current == head:
        return
    if current is None:
        upgrade(connection)
        return
    raise SchemaOutdatedError(f"the database schema is at {current}, this qhw needs {head}: run `qhw db upgrade`")
