"""Initial schema: feature sets, runs, jobs, results, models, evaluations.

Revision ID: 0001
Revises:
Create Date: 2026-11-27 04:57:26.257509
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('feature_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('dataset', sa.String(length=1024), nullable=False),
    sa.Column('dataset_fingerprint', sa.String(length=64), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('components', sa.Integer(), nullable=False),
    sa.Column('latent_dim', sa.Integer(), nullable=False),
    sa.Column('epochs', sa.Integer(), nullable=False),
    sa.Column('n_train', sa.Integer(), nullable=False),
    sa.Column('n_test', sa.Integer(), nullable=False),
    sa.Column('reconstruction_mse', sa.Float(), nullable=False),
    sa.Column('artifact_dir', sa.String(length=1024), nullable=False),
    sa.CheckConstraint('components > 0', name=op.f('ck_feature_sets_components_positive')),
    sa.CheckConstraint('n_train >= 0 AND n_test >= 0', name=op.f('ck_feature_sets_sizes_nonnegative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feature_sets'))
    )
    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('feature_set_id', sa.Integer(), nullable=False),
    sa.Column('backend', sa.String(length=255), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('split', sa.String(length=8), nullable=False),
    sa.Column('shots', sa.Integer(), nullable=False),
    sa.Column('num_qubits', sa.Integer(), nullable=False),
    sa.Column('circuits_per_sample', sa.Integer(), nullable=False),
    sa.Column('n_samples', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=True),
    sa.Column('sample_order', sa.LargeBinary(), nullable=False),
    sa.Column('transpiled_qasm3', sa.Text(), nullable=False),
    sa.Column('transpiled_qpy', sa.LargeBinary(), nullable=False),
    sa.Column('layout', sa.Text(), nullable=False),
    sa.Column('cost_estimate_usd', sa.Float(), nullable=True),
    sa.CheckConstraint("split IN ('train', 'test', 'all')", name=op.f('ck_runs_split_valid')),
    sa.CheckConstraint('shots > 0', name=op.f('ck_runs_shots_positive')),
    sa.ForeignKeyConstraint(['feature_set_id'], ['feature_sets.id'], name=op.f('fk_runs_feature_set_id_feature_sets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_feature_set_id'), ['feature_set_id'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('provider_job_id', sa.String(length=255), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('execution_start', sa.Integer(), nullable=False),
    sa.Column('execution_stop', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state IN ('pending', 'queued', 'running', 'done', 'collected', 'failed', 'cancelled')", name=op.f('ck_jobs_state_valid')),
    sa.CheckConstraint('execution_stop > execution_start', name=op.f('ck_jobs_executions_nonempty')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_jobs_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
    sa.UniqueConstraint('run_id', 'position', name='uq_jobs_run_position')
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_run_id'), ['run_id'], unique=False)

    op.create_table('models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('feature_set_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('train_samples', sa.Integer(), nullable=False),
    sa.Column('epochs', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('weights_path', sa.String(length=1024), nullable=False),
    sa.CheckConstraint("kind IN ('hybrid', 'classical')", name=op.f('ck_models_kind_valid')),
    sa.ForeignKeyConstraint(['feature_set_id'], ['feature_sets.id'], name=op.f('fk_models_feature_set_id_feature_sets')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_models_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_models'))
    )
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_models_feature_set_id'), ['feature_set_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_models_run_id'), ['run_id'], unique=False)

    op.create_table('evaluations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('model_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('accuracy', sa.Float(), nullable=False),
    sa.Column('test_samples', sa.Integer(), nullable=False),
    sa.CheckConstraint('accuracy >= 0 AND accuracy <= 1', name=op.f('ck_evaluations_accuracy_range')),
    sa.ForeignKeyConstraint(['model_id'], ['models.id'], name=op.f('fk_evaluations_model_id_models')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_evaluations_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluations'))
    )
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluations_model_id'), ['model_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluations_run_id'), ['run_id'], unique=False)

    op.create_table('results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('split', sa.String(length=8), nullable=False),
    sa.Column('sample_index', sa.Integer(), nullable=False),
    sa.Column('circuit', sa.Integer(), nullable=False),
    sa.Column('shots', sa.Integer(), nullable=False),
    sa.Column('counts', sa.LargeBinary(), nullable=False),
    sa.CheckConstraint("split IN ('train', 'test')", name=op.f('ck_results_split_valid')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_results_job_id_jobs')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_results_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_results')),
    sa.UniqueConstraint('run_id', 'split', 'sample_index', 'circuit', name='uq_results_sample')
    )
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_results_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_results_run_id'), ['run_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_results_run_id'))
        batch_op.drop_index(batch_op.f('ix_results_job_id'))

    op.drop_table('results')
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluations_run_id'))
        batch_op.drop_index(batch_op.f('ix_evaluations_model_id'))

    op.drop_table('evaluations')
    with op.batch_alter_table('models', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_models_run_id'))
        batch_op.drop_index(batch_op.f('ix_models_feature_set_id'))

    op.drop_table('models')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_run_id'))

    op.drop_table('jobs')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_feature_set_id'))

    op.drop_table('runs')
    op.drop_table('feature_sets')
