"""A hybrid model's readout kept with its row, so that `qhw compare` finds
the model `qhw train` made of a run with the same settings, and uses it
instead of training it again. Models from before have none (NULL): never
taken for another's.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("readout", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("readout")
