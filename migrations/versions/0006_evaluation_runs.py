"""evaluation: re-evaluations of finished jobs, and the automatic judge's verdicts

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    op.create_table(
        'evaluation_runs',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('training_job_id', sa.String(length=32),
                  sa.ForeignKey('training_jobs.id', ondelete='CASCADE'), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('settings', JSON, nullable=False),
        sa.Column('runpod_job_id', sa.String(length=128), nullable=True),
        sa.Column('summary', JSON, nullable=True),
        sa.Column('judge', JSON, nullable=True),
        sa.Column('error', JSON, nullable=True),
        sa.Column('created_by', sa.String(length=32), sa.ForeignKey('users.id', ondelete='SET NULL'), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_evaluation_runs_training_job_id', 'evaluation_runs', ['training_job_id'])
    with op.batch_alter_table('model_artifacts') as batch:
        batch.add_column(sa.Column('judge', JSON, nullable=True))


def downgrade():
    with op.batch_alter_table('model_artifacts') as batch:
        batch.drop_column('judge')
    op.drop_index('ix_evaluation_runs_training_job_id', 'evaluation_runs')
    op.drop_table('evaluation_runs')
