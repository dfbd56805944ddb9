"""braket_emulator: runs on qhw's noisy engine ("density") by default, or on
Braket's LocalEmulator ("braket"). Existing braket_emulator: runs ran on
LocalEmulator, and their remaining jobs and retries keep running there: their
engine is recorded as such.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE runs SET engine = 'braket' WHERE provider = 'braket' AND device_kind = 'emulation' AND engine IS NULL")


def downgrade() -> None:
    op.execute("UPDATE runs SET engine = NULL WHERE provider = 'braket' AND device_kind = 'emulation' AND engine = 'braket'")
