"""client delivery: rubrics, blind reviews, delivery decisions, report versions, share links

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
TS = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'rubrics',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('name', sa.String(length=200), nullable=False, unique=True),
        sa.Column('client', sa.String(length=200), nullable=True),
        sa.Column('characteristics', JSON, nullable=False),
        sa.Column('created_by', sa.String(length=32), sa.ForeignKey('users.id', ondelete='SET NULL'), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('archived_at', TS, nullable=True),
    )
    with op.batch_alter_table('training_jobs') as batch:
        batch.add_column(sa.Column('rubric_id', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('delivery_status', sa.String(length=16), nullable=True))
        batch.create_foreign_key('fk_training_jobs_rubric_id', 'rubrics', ['rubric_id'], ['id'])
        batch.create_index('ix_training_jobs_delivery_status', ['delivery_status'])
    op.create_table(
        'reviews',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('training_job_id', sa.String(length=32),
                  sa.ForeignKey('training_jobs.id', ondelete='CASCADE'), nullable=False),
        sa.Column('run_id', sa.String(length=32), nullable=False),
        sa.Column('reviewer_id', sa.String(length=32), sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=False),
        sa.Column('suite', sa.String(length=16), nullable=False),
        sa.Column('item_id', sa.String(length=128), nullable=False),
        sa.Column('scores', JSON, nullable=False),
        sa.Column('preference', sa.String(length=8), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
        sa.UniqueConstraint('training_job_id', 'run_id', 'reviewer_id', 'suite', 'item_id', name='uq_reviews_item'),
    )
    op.create_index('ix_reviews_job_run', 'reviews', ['training_job_id', 'run_id'])
    op.create_table(
        'delivery_decisions',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('training_job_id', sa.String(length=32),
                  sa.ForeignKey('training_jobs.id', ondelete='CASCADE'), nullable=False),
        sa.Column('decision', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('run_id', sa.String(length=32), nullable=True),
        sa.Column('gate', JSON, nullable=False),
        sa.Column('measures', JSON, nullable=False),
        sa.Column('decided_by', sa.String(length=32), sa.ForeignKey('users.id', ondelete='SET NULL'), nullable=True),
        sa.Column('decided_at', TS, nullable=False),
    )
    op.create_index('ix_delivery_decisions_training_job_id', 'delivery_decisions', ['training_job_id'])
    op.create_table(
        'validation_reports',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('training_job_id', sa.String(length=32),
                  sa.ForeignKey('training_jobs.id', ondelete='CASCADE'), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('storage_key', sa.String(length=512), nullable=False),
        sa.Column('size_bytes', sa.Integer(), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('trigger', sa.String(length=32), nullable=False),
        sa.Column('build_seconds', sa.Float(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.UniqueConstraint('training_job_id', 'version', name='uq_validation_reports_version'),
    )
    op.create_index('ix_validation_reports_training_job_id', 'validation_reports', ['training_job_id'])
    op.create_table(
        'share_links',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('training_job_id', sa.String(length=32),
                  sa.ForeignKey('training_jobs.id', ondelete='CASCADE'), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False, unique=True),
        sa.Column('created_by', sa.String(length=32), sa.ForeignKey('users.id', ondelete='SET NULL'), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('expires_at', TS, nullable=False),
        sa.Column('revoked_at', TS, nullable=True),
        sa.Column('view_count', sa.Integer(), nullable=False),
        sa.Column('last_viewed_at', TS, nullable=True),
    )
    op.create_index('ix_share_links_training_job_id', 'share_links', ['training_job_id'])


def downgrade():
    op.drop_index('ix_share_links_training_job_id', 'share_links')
    op.drop_table('share_links')
    op.drop_index('ix_validation_reports_training_job_id', 'validation_reports')
    op.drop_table('validation_reports')
    op.drop_index('ix_delivery_decisions_training_job_id', 'delivery_decisions')
    op.drop_table('delivery_decisions')
    op.drop_index('ix_reviews_job_run', 'reviews')
    op.drop_table('reviews')
    with op.batch_alter_table('training_jobs') as batch:
        batch.drop_index('ix_training_jobs_delivery_status')
        batch.drop_constraint('fk_training_jobs_rubric_id', type_='foreignkey')
        batch.drop_column('delivery_status')
        batch.drop_column('rubric_id')
    op.drop_table('rubrics')
