"""Adaptive runs: a run measured in rounds, each sample only until its class
is settled. The run keeps its settings and its newest round; a job carries
its round and the shots each of its executions gets; a result is one
round's counts of a sample (a sample's counts are the sum of its rounds).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("adaptive", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("round", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("rounds_done", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("round", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("shots", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(op.f("ck_jobs_shots_positive"), "shots IS NULL OR shots > 0")
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("round", sa.Integer(), server_default="0", nullable=False))
        batch_op.drop_constraint("uq_results_sample", type_="unique")
        batch_op.create_unique_constraint("uq_results_sample", ["run_id", "split", "sample_index", "circuit", "round"])


def downgrade() -> None:
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_constraint("uq_results_sample", type_="unique")
        batch_op.create_unique_constraint("uq_results_sample", ["run_id", "split", "sample_index", "circuit"])
        batch_op.drop_column("round")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_shots_positive"), type_="check")
        batch_op.drop_column("shots")
        batch_op.drop_column("round")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("rounds_done")
        batch_op.drop_column("round")
        batch_op.drop_column("adaptive")
