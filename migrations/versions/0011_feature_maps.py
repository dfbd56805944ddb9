"""Feature maps: a feature set names its map (a built-in or a user's file),
its qubits and parameters, the range its components are scaled to, and keeps
its template (QPY, and OpenQASM 3). Existing feature sets are the paper's
5-qubit map over [-pi/2, pi/2], whose template is rebuilt from its name.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

PAPER_ANGLE_LOW, PAPER_ANGLE_HIGH = "-1.5707963267948966", "1.5707963267948966"


def upgrade() -> None:
    with op.batch_alter_table("feature_sets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("feature_map", sa.String(length=300), server_default="paper", nullable=False))
        batch_op.add_column(sa.Column("num_qubits", sa.Integer(), server_default="5", nullable=False))
        batch_op.add_column(sa.Column("num_parameters", sa.Integer(), server_default="5", nullable=False))
        batch_op.add_column(sa.Column("reps", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("angle_low", sa.Float(), server_default=PAPER_ANGLE_LOW, nullable=False))
        batch_op.add_column(sa.Column("angle_high", sa.Float(), server_default=PAPER_ANGLE_HIGH, nullable=False))
        batch_op.add_column(sa.Column("template_qpy", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("template_qasm3", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("source_sha256", sa.String(length=64), nullable=True))
        batch_op.create_check_constraint(op.f("ck_feature_sets_map_qubits_in_range"), "num_qubits BETWEEN 2 AND 12")
        batch_op.create_check_constraint(
            op.f("ck_feature_sets_components_fill_circuits"), "num_parameters > 0 AND components % num_parameters = 0"
        )
        batch_op.create_check_constraint(op.f("ck_feature_sets_angle_range_ordered"), "angle_low < angle_high")


def downgrade() -> None:
    with op.batch_alter_table("feature_sets", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_feature_sets_angle_range_ordered"), type_="check")
        batch_op.drop_constraint(op.f("ck_feature_sets_components_fill_circuits"), type_="check")
        batch_op.drop_constraint(op.f("ck_feature_sets_map_qubits_in_range"), type_="check")
        for column in ("source_sha256", "template_qasm3", "template_qpy", "angle_high", "angle_low", "reps",
                       "num_parameters", "num_qubits", "feature_map"):
            batch_op.drop_column(column)
