"""What `qhw mlflow log` reads and needs: a model's training curve (JSON:
loss and accuracy per epoch, on its train and validation samples), an
evaluation's 95 % interval, and the claims that let one process at a time
create the tracker's run of a qhw object (MLflow has no unique tag).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("history", sa.Text(), nullable=True))
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("low", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("high", sa.Float(), nullable=True))
    op.create_table(
        "tracker_claims",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_tracker_claims")),
    )


def downgrade() -> None:
    op.drop_table("tracker_claims")
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_column("high")
        batch_op.drop_column("low")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("history")
