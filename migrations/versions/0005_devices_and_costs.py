"""Runs say what ran them and keep their price table; device calibration snapshots; job costs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_KINDS = "('simulator', 'emulation', 'managed simulator', 'hardware')"


def _described(backend: str) -> tuple[str, str]:
    """What ran a run from before this revision, from its backend's name
    (the adapters' own words since; a migration cannot build adapters)."""
    if backend == "aer_simulator":
        return "simulator", "Qiskit Aer, ideal"
    if backend.startswith("fake_"):
        return "emulation", f"emulation of ibm_{backend.removeprefix('fake_')} (calibrated noise model)"
    if backend in ("braket_local", "braket_dm"):
        return "simulator", f"Amazon Braket's local {'density-matrix' if backend == 'braket_dm' else 'state-vector'} simulator, ideal"
    if backend in ("braket_sv1", "braket_dm1") or "/quantum-simulator/" in backend:
        return "managed simulator", f"Amazon Braket managed simulator {backend}"
    return "hardware", f"{backend} (QPU)"


def upgrade() -> None:
    op.create_table(
        "device_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=255), nullable=False),
        sa.Column("calibrated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("qubits", sa.Text(), nullable=False),
        sa.Column("pairs", sa.Text(), nullable=False),
        sa.Column("properties", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_device_snapshots_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_snapshots")),
        sa.UniqueConstraint("run_id", name=op.f("uq_device_snapshots_run_id")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("duration_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("cost_usd", sa.Float(), nullable=True))
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device_kind", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("device_label", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("prices_json", sa.Text(), nullable=True))

    connection = op.get_bind()
    runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("backend", sa.String),
                    sa.column("device_kind", sa.String), sa.column("device_label", sa.Text))
    for run_id, backend in connection.execute(sa.select(runs.c.id, runs.c.backend)).all():
        kind, label = _described(backend)
        connection.execute(runs.update().where(runs.c.id == run_id).values(device_kind=kind, device_label=label))

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("device_kind", existing_type=sa.String(length=32), nullable=False)
        batch_op.alter_column("device_label", existing_type=sa.Text(), nullable=False)
        # Autogenerate does not see CHECK constraints; this one matches the models.
        batch_op.create_check_constraint(op.f("ck_runs_device_kind_valid"), f"device_kind IN {_KINDS}")


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_runs_device_kind_valid"), type_="check")
        batch_op.drop_column("prices_json")
        batch_op.drop_column("device_label")
        batch_op.drop_column("device_kind")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("cost_usd")
        batch_op.drop_column("duration_seconds")
    op.drop_table("device_snapshots")
