"""Alembic environment: runs against the connection qhw hands over.

qhw.schema passes an open connection in ``config.attributes["connection"]``, so
the same engine settings (SQLite pragmas, the user's URL) apply to migrations.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from qhw.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as conn:
        _run(conn)
