"""Feature-set arrays and model weights are stored relative to QHW_HOME.

Existing rows named them by absolute path, so a home restored from a backup or
moved elsewhere could not find them. Every path in qhw's own layout (a folder
of ``features/``, a file of ``models/``) becomes ``features/<name>`` or
``models/<name>``, whatever home it was written in (a home already moved
included); a path outside that layout stays as it was.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from pathlib import PurePosixPath

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COLUMNS = (("feature_sets", "artifact_dir", "features"), ("models", "weights_path", "models"))


def _relative(path: str, folder: str) -> str | None:
    parts = PurePosixPath(path)
    if parts.is_absolute() and parts.parent.name == folder and parts.name:
        return f"{folder}/{parts.name}"
    return None


def upgrade() -> None:
    connection = op.get_bind()
    for table_name, column, folder in _COLUMNS:
        table = sa.table(table_name, sa.column("id", sa.Integer), sa.column(column, sa.String))
        for row_id, path in connection.execute(sa.select(table.c.id, table.c[column])).all():
            relative = _relative(path, folder)
            if relative is not None:
                connection.execute(sa.update(table).where(table.c.id == row_id).values({column: relative}))


def downgrade() -> None:
    # Relative paths become absolute again, under the home of whoever downgrades.
    from qhw import config

    home = config.home().absolute()
    connection = op.get_bind()
    for table_name, column, _folder in _COLUMNS:
        table = sa.table(table_name, sa.column("id", sa.Integer), sa.column(column, sa.String))
        for row_id, path in connection.execute(sa.select(table.c.id, table.c[column])).all():
            if not PurePosixPath(path).is_absolute():
                connection.execute(sa.update(table).where(table.c.id == row_id).values({column: str(home / path)}))
