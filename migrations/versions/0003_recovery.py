"""recovery: interruptions per attempt, stalls, classified errors, checkpoint requests

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    with op.batch_alter_table('training_job_attempts') as batch:
        batch.add_column(sa.Column('monitored_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('monitor_token', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('resumed_from_step', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('last_step', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('steps_lost', sa.Integer(), nullable=True))
    with op.batch_alter_table('training_jobs') as batch:
        batch.add_column(sa.Column('error_cause', sa.Text(), nullable=True))
        batch.add_column(sa.Column('error_user', sa.Boolean(), nullable=True))
        batch.add_column(sa.Column('error_adjustment', JSON, nullable=True))
        batch.add_column(sa.Column('stalled_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('checkpoint_requested_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('retried_from_id', sa.String(length=32), nullable=True))


def downgrade():
    with op.batch_alter_table('training_jobs') as batch:
        for name in ('retried_from_id', 'checkpoint_requested_at', 'stalled_at', 'error_adjustment',
                     'error_user', 'error_cause'):
            batch.drop_column(name)
    with op.batch_alter_table('training_job_attempts') as batch:
        for name in ('steps_lost', 'last_step', 'resumed_from_step', 'monitor_token', 'monitored_at'):
            batch.drop_column(name)
