"""Samples a shot on the same qubits, rep_delay, and usage in the provider's own unit:
a run keeps how many samples each copy's qubits run in a shot (``reuse``) and
the rep_delay it asked for; a result and a calibration state, the position
that measured it; a job, its provider's usage figure and unit (IBM's resource
units). Existing runs reused nothing (1) at the device's default rep_delay;
existing results and calibrations were measured at position 0.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reuse", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("rep_delay", sa.Float(), nullable=True))
        batch_op.create_check_constraint(op.f("ck_runs_reuse_positive"), "reuse > 0")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("usage_value", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("usage_unit", sa.String(length=16), nullable=True))
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("position", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("calibrations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("position", sa.Integer(), server_default="0", nullable=False))
        batch_op.drop_constraint(op.f("uq_calibrations_run_copy_prepared"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_calibrations_run_copy_position_prepared"), ["run_id", "copy", "position", "prepared"])


def downgrade() -> None:
    with op.batch_alter_table("calibrations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_calibrations_run_copy_position_prepared"), type_="unique")
        batch_op.create_unique_constraint(op.f("uq_calibrations_run_copy_prepared"), ["run_id", "copy", "prepared"])
        batch_op.drop_column("position")
    with op.batch_alter_table("results", schema=None) as batch_op:
        batch_op.drop_column("position")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("usage_unit")
        batch_op.drop_column("usage_value")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_runs_reuse_positive"), type_="check")
        batch_op.drop_column("rep_delay")
        batch_op.drop_column("reuse")
