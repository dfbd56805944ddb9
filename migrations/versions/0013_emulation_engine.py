"""How an emulation computes a run: IBM's fake devices run on qhw's noisy
engine ("density") by default, or on Runtime's local mode ("aer"); a run
keeps the engine chosen at submit and, where it is not the one asked for,
why. Existing runs of fake devices ran on Aer, and their remaining jobs keep
running there.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("engine", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("engine_note", sa.Text(), nullable=True))
    op.execute("UPDATE runs SET engine = 'aer' WHERE provider = 'ibm' AND device_kind = 'emulation'")


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("engine_note")
        batch_op.drop_column("engine")
