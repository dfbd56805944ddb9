"""The job ledger: idempotency keys, claims, transient-error counts, cancel requests, job histories.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_STATES = "('pending', 'queued', 'running', 'done', 'collected', 'failed', 'cancelled')"


def upgrade() -> None:
    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("old_state", sa.String(length=16), nullable=True),
        sa.Column("new_state", sa.String(length=16), nullable=False),
        sa.Column("provider_job_id", sa.String(length=255), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(f"old_state IS NULL OR old_state IN {_STATES}", name=op.f("ck_job_events_old_state_valid")),
        sa.CheckConstraint(f"new_state IN {_STATES}", name=op.f("ck_job_events_new_state_valid")),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_job_events_job_id_jobs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
    )
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_events_job_id"), ["job_id"], unique=False)

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("attempt", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("submit_started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("error_count", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True))

    # Jobs from before the ledger get a key of their own. A pending one of
    # them without a provider id was never sent as far as anyone can tell.
    connection = op.get_bind()
    jobs = sa.table("jobs", sa.column("id", sa.Integer), sa.column("idempotency_key", sa.String))
    for (job_id,) in connection.execute(sa.select(jobs.c.id)).all():
        connection.execute(jobs.update().where(jobs.c.id == job_id).values(idempotency_key=uuid.uuid4().hex))

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.alter_column("idempotency_key", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint("uq_jobs_idempotency_key", ["idempotency_key"])
        # Autogenerate does not see CHECK constraints; this one matches the models.
        batch_op.create_check_constraint(op.f("ck_jobs_counters_valid"), "attempt > 0 AND error_count >= 0")


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_counters_valid"), type_="check")
        batch_op.drop_constraint("uq_jobs_idempotency_key", type_="unique")
        batch_op.drop_column("cancel_requested_at")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("error_count")
        batch_op.drop_column("submit_started_at")
        batch_op.drop_column("attempt")
        batch_op.drop_column("idempotency_key")

    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_events_job_id"))
    op.drop_table("job_events")
