"""The database itself: engine, the one transaction helper, schema upgrades.

SQLite is set up for several processes at once: WAL (readers never wait for
the writer), a busy timeout (a writer waits for the lock instead of failing),
and write transactions that take the write lock when they begin (``BEGIN
IMMEDIATE``), so that a transaction which read first can never be refused the
lock half-way (SQLite's "database is locked" that no timeout cures).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, CursorResult, Engine, Result, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from qhw import schema
from qhw.errors import ConfigError, StoreError

#: How long a SQLite writer waits for another's lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 120_000
#: Serialises first-time schema creation by concurrent processes on PostgreSQL.
_SCHEMA_LOCK_ID = 0x716877  # "qhw"
_BEGIN_OPTION = "qhw_sqlite_begin"


def _enable_sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:  # pragma: no cover - driver callback
        # pysqlite commits DDL on its own, so a failed migration would leave half
        # a schema; SQLAlchemy's recipe: no driver transactions, BEGIN ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # WAL is a property of the file: never set it on another program's
        # database (tables, none of them qhw's), which qhw only reads to refuse.
        tables = {name for (name,) in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables or "alembic_version" in tables:
            _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:  # pragma: no cover - driver callback
        connection.exec_driver_sql(connection.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, waiting for another process's lock.

    Switching a new database to WAL takes an exclusive lock without consulting
    the busy timeout, so two processes opening a fresh database at the same
    moment could see "database is locked" (the second switch finds the first
    holding the lock); it is retried for as long as the busy timeout lasts.
    """
    import sqlite3

    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

    def locked(err: BaseException) -> bool:
        return isinstance(err, sqlite3.OperationalError) and "locked" in str(err)

    retrying = Retrying(
        retry=retry_if_exception(locked),
        stop=stop_after_delay(SQLITE_BUSY_TIMEOUT_MS / 1000),
        wait=wait_exponential_jitter(initial=0.01, max=1.0, jitter=0.05),
        reraise=True,
    )
    retrying(cursor.execute, "PRAGMA journal_mode=WAL")


class Database:
    """One tracking database: opened at the schema head, or refused.

    Opening creates a fresh database at the head and refuses an outdated one
    (see :func:`qhw.schema.ensure_current`).
    """

    def __init__(self, url: str, *, check_schema: bool = True) -> None:
        self.display_url = masked_url(url)
        try:
            self.engine = create_engine(make_url(url))
        except (ArgumentError, NoSuchModuleError, ValueError) as err:
            raise ConfigError(f"invalid database URL {self.display_url!r}: {reason(err)}") from err
        except ImportError as err:
            raise ConfigError(f"the database driver for {self.display_url} is not installed: {err}") from err
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        writer = self.engine
        if self.is_sqlite:
            _enable_sqlite_pragmas(self.engine)
            writer = self.engine.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        self._readers = sessionmaker(self.engine, expire_on_commit=False)
        self._writers = sessionmaker(writer, expire_on_commit=False)
        if check_schema:
            try:
                with self.engine.connect() as connection:
                    # Read first: a database at head (the usual case) needs no write lock.
                    with connection.begin():
                        at_head = schema.current_revision(connection) == schema.head_revision()
                if not at_head:
                    with self.engine.connect() as connection, self._schema_lock(connection):
                        schema.ensure_current(connection)
            except SQLAlchemyError as err:
                raise StoreError(f"cannot open database {self.display_url}: {reason(err)}") from err

    @contextmanager
    def _schema_lock(self, connection: Connection) -> Iterator[None]:
        """One transaction that holds the write lock, so two first-time processes
        do not both create the schema (the second finds it at head)."""
        if self.is_sqlite:
            connection = connection.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SCHEMA_LOCK_ID})
            yield

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error.

        Args:
            write: False for a transaction that only reads (on SQLite it then
                does not take the write lock).

        Raises:
            StoreError: the database refused or failed the work.
        """
        session = (self._writers if write else self._readers)()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as err:
            session.rollback()
            raise StoreError(f"database error on {self.display_url}: {reason(err)}") from err
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self) -> tuple[str | None, str]:
        """Upgrade the schema to head; returns (revision before, revision after).

        On SQLite, Alembic's batch mode rebuilds tables (copy, drop, rename),
        which the foreign keys of rows pointing at them would refuse; they are
        switched off for the migration (possible only outside a transaction)
        and checked before it commits.
        """
        self.check_integrity()
        try:
            with self.engine.connect() as connection:
                raw: Any = connection.connection.driver_connection
                if self.is_sqlite:
                    raw.execute("PRAGMA foreign_keys=OFF")
                try:
                    with self._schema_lock(connection):
                        before = schema.check_upgradable(connection)
                        schema.upgrade(connection)
                        if self.is_sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                            raise StoreError(f"upgrading {self.display_url} would break foreign keys; nothing was changed")
                        return before, schema.current_revision(connection) or ""
                finally:
                    if self.is_sqlite:
                        raw.execute("PRAGMA foreign_keys=ON")
        except SQLAlchemyError as err:
            raise StoreError(f"cannot upgrade database {self.display_url}: {reason(err)}") from err

    def revision(self) -> str | None:
        """The schema revision the database is stamped with (None when empty).

        Raises:
            StoreError: the database is damaged, or has tables but no qhw
                schema version (another program's database).
        """
        self.check_integrity()
        try:
            with self.engine.connect() as connection, connection.begin():
                revision = schema.current_revision(connection)
                if revision is None and schema.has_tables(connection):
                    raise StoreError(f"{self.display_url} is not a qhw database: it has tables but no qhw schema version")
                return revision
        except SQLAlchemyError as err:
            raise StoreError(f"cannot read database {self.display_url}: {reason(err)}") from err

    def check_integrity(self) -> None:
        """SQLite's own check of the whole file (``PRAGMA integrity_check``), for
        the commands that look at or change a database as a whole: a file cut
        short or overwritten reads as valid until a damaged page is reached.

        Raises:
            StoreError: the file is damaged (SQLite's first complaint quoted).
        """
        if not self.is_sqlite:
            return  # PostgreSQL checks its pages itself
        try:
            with self.engine.connect() as connection:
                verdict = [row[0] for row in connection.exec_driver_sql("PRAGMA integrity_check").fetchall()]
        except SQLAlchemyError as err:  # not a database at all, unreadable, or too damaged to check
            if "malformed" in str(err):
                raise StoreError(
                    f"{self.display_url} is damaged (SQLite: {reason(err)}); nothing was changed: restore it from a backup"
                ) from err
            raise StoreError(f"cannot read database {self.display_url}: {reason(err)}") from err
        if verdict != ["ok"]:
            # Its answer comes in rows of lines, headed "*** in database main ***".
            complaints = [line for row in verdict for line in str(row).splitlines() if line.strip() and not line.startswith("***")]
            raise StoreError(
                f"{self.display_url} is damaged (SQLite's integrity check: {complaints[0] if complaints else 'no answer'}); "
                "nothing was changed: restore it from a backup"
            )

    def close(self) -> None:
        self.engine.dispose()


def masked_url(url: str) -> str:
    """The URL with its password hidden, for every message and log line."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def changed_rows(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed (its compare-and-set: 0 when another process got there first)."""
    return cast("CursorResult[Any]", result).rowcount


def reason(err: Exception) -> str:
    """The first line of a database error, without SQLAlchemy's wrapping."""
    original = getattr(err, "orig", None)
    text_ = str(original if original is not None else err)
    return text_.strip().splitlines()[0] if text_.strip() else type(err).__name__
