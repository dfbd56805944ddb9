"""--quality auto: a run keeps its quality settings and what they did (the
slots left out of jobs not yet sent, its repairs, a log); a job, the repair
that made it and the slots it rides on; a result, the repair that measured it
and whether a later one superseded it (superseded counts are kept).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("quality", sa.String(length=8), server_default="off", nullable=False))
        batch_op.add_column(sa.Column("quality_floor", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("quality_reserve", sa.Float(), server_default="0.1", nullable=False))
        batch_op.add_column(sa.Column("excluded_slots", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("repairs", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("repairs_done", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("quality_log", sa.Text(), nullable=True))
        batch_op.create_check_constraint(op.f("ck_runs_quality_valid"), "quality IN ('auto', 'off')")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repair", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("slots_used", sa.Text(), nullable=True))
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repair", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("superseded", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.drop_constraint("uq_results_sample", type_="unique")
        batch_op.create_unique_constraint("uq_results_sample", ["run_id", "split", "sample_index", "circuit", "round", "repair"])


def downgrade() -> None:
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_constraint("uq_results_sample", type_="unique")
        batch_op.create_unique_constraint("uq_results_sample", ["run_id", "split", "sample_index", "circuit", "round"])
        batch_op.drop_column("superseded")
        batch_op.drop_column("repair")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("slots_used")
        batch_op.drop_column("repair")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_runs_quality_valid"), type_="check")
        batch_op.drop_column("quality_log")
        batch_op.drop_column("repairs_done")
        batch_op.drop_column("repairs")
        batch_op.drop_column("excluded_slots")
        batch_op.drop_column("quality_reserve")
        batch_op.drop_column("quality_floor")
        batch_op.drop_column("quality")
