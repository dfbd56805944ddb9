"""Comparison reports in the artifact store: a row names each report's
manifest, so that any member of a team can open it (`qhw reports get`).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("simulator_run_id", sa.Integer(), nullable=False),
        sa.Column("hardware_run_ids", sa.Text(), nullable=False),
        sa.Column("artifacts", sa.String(length=1024), nullable=False),
        sa.ForeignKeyConstraint(["simulator_run_id"], ["runs.id"], name=op.f("fk_reports_simulator_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reports")),
    )
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reports_simulator_run_id"), ["simulator_run_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reports_simulator_run_id"))
    op.drop_table("reports")
