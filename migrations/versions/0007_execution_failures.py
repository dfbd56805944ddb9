"""Executions a provider failed inside a job that otherwise ran, jobs of exactly
the executions a retry runs again, and usage a provider has not finalised yet.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "execution_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("execution", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retry_job_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("purpose IN ('samples', 'calibration')", name=op.f("ck_execution_failures_purpose_valid")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_execution_failures_job_id_jobs")),
        sa.ForeignKeyConstraint(["retry_job_id"], ["jobs.id"], name=op.f("fk_execution_failures_retry_job_id_jobs")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_execution_failures_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_failures")),
        sa.UniqueConstraint("job_id", "attempt", "execution", name="uq_execution_failures_job_attempt_execution"),
    )
    with op.batch_alter_table("execution_failures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_execution_failures_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_execution_failures_run_id"), ["run_id"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("execution_list", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("usage_pending", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("usage_pending")
        batch_op.drop_column("execution_list")
    with op.batch_alter_table("execution_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_execution_failures_run_id"))
        batch_op.drop_index(batch_op.f("ix_execution_failures_job_id"))
    op.drop_table("execution_failures")
