"""Readout mitigation: calibration counts, mitigated quasi-probabilities, job purposes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 06:03:27.625087
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mitigated_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(length=8), nullable=False),
    sa.Column('sample_index', sa.Integer(), nullable=False),
    sa.Column('circuit', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('quasi', sa.LargeBinary(), nullable=False),
    sa.CheckConstraint("split IN ('train', 'test')", name=op.f('ck_mitigated_results_split_valid')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_mitigated_results_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mitigated_results')),
    sa.UniqueConstraint('run_id', 'split', 'sample_index', 'circuit', 'method', name='uq_mitigated_results_sample')
    )
    with op.batch_alter_table('mitigated_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mitigated_results_run_id'), ['run_id'], unique=False)

    op.create_table('calibrations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('prepared', sa.Integer(), nullable=False),
    sa.Column('shots', sa.Integer(), nullable=False),
    sa.Column('counts', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_calibrations_job_id_jobs')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_calibrations_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calibrations')),
    sa.UniqueConstraint('run_id', 'prepared', name='uq_calibrations_run_prepared')
    )
    with op.batch_alter_table('calibrations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calibrations_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_calibrations_run_id'), ['run_id'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purpose', sa.String(length=16), server_default='samples', nullable=False))
        # Autogenerate does not see CHECK constraints; these match the models.
        batch_op.create_check_constraint(op.f('ck_jobs_purpose_valid'), "purpose IN ('samples', 'calibration')")

    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mitigation', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('calibration_qpy', sa.LargeBinary(), nullable=True))
        batch_op.create_check_constraint(
            op.f('ck_runs_mitigation_valid'), "mitigation IS NULL OR mitigation IN ('readout')"
        )



def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_runs_mitigation_valid'), type_='check')
        batch_op.drop_column('calibration_qpy')
        batch_op.drop_column('mitigation')

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_jobs_purpose_valid'), type_='check')
        batch_op.drop_column('purpose')

    with op.batch_alter_table('calibrations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calibrations_run_id'))
        batch_op.drop_index(batch_op.f('ix_calibrations_job_id'))

    op.drop_table('calibrations')
    with op.batch_alter_table('mitigated_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mitigated_results_run_id'))

    op.drop_table('mitigated_results')
