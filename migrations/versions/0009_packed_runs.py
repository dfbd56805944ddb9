"""Packed runs: copies of the template side by side on one device, the
partition that placed them, and the copy that measured each result and
calibration; and the provider's own estimate of a job's QPU time.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("copies", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("packing", sa.Text(), nullable=True))
        batch_op.create_check_constraint(op.f("ck_runs_copies_positive"), "copies > 0")
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("copy", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_estimate_seconds", sa.Float(), nullable=True))
    with op.batch_alter_table("calibrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("copy", sa.Integer(), server_default="0", nullable=False))
        batch_op.drop_constraint("uq_calibrations_run_prepared", type_="unique")
        batch_op.create_unique_constraint("uq_calibrations_run_copy_prepared", ["run_id", "copy", "prepared"])


def downgrade() -> None:
    with op.batch_alter_table("calibrations", schema=None) as batch_op:
        batch_op.drop_constraint("uq_calibrations_run_copy_prepared", type_="unique")
        batch_op.create_unique_constraint("uq_calibrations_run_prepared", ["run_id", "prepared"])
        batch_op.drop_column("copy")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("provider_estimate_seconds")
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_column("copy")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_runs_copies_positive"), type_="check")
        batch_op.drop_column("packing")
        batch_op.drop_column("copies")
