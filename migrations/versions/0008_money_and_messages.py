"""money and messages: notices, the notification outbox and preferences, the team budget,
outgoing webhooks and their deliveries; jobs' spend cap, projection, alerts, override,
approval and stop request; attempts' billed times and completion-webhook token

Revision ID: 0008
Revises: 0007
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
TS = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'notices',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('training_job_id', sa.String(length=32),
                  sa.ForeignKey('training_jobs.id', ondelete='SET NULL'), nullable=True),
        sa.Column('user_id', sa.String(length=32), sa.ForeignKey('users.id', ondelete='SET NULL'), nullable=True),
        sa.Column('dedupe_key', sa.String(length=200), nullable=True, unique=True),
        sa.Column('payload', JSON, nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('fanned_out_at', TS, nullable=True),
    )
    op.create_index('ix_notices_training_job_id', 'notices', ['training_job_id'])
    op.create_index('ix_notices_created_at', 'notices', ['created_at'])
    op.create_index('ix_notices_fanned_out_at', 'notices', ['fanned_out_at'])
    op.create_table(
        'notification_outbox',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('notice_id', BigId, sa.ForeignKey('notices.id', ondelete='CASCADE'), nullable=False),
        sa.Column('user_id', sa.String(length=32), sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=True),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('destination', sa.String(length=320), nullable=False),
        sa.Column('subject', sa.String(length=300), nullable=False),
        sa.Column('body', JSON, nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', TS, nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('sent_at', TS, nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.UniqueConstraint('notice_id', 'channel', 'destination', name='uq_outbox_once'),
    )
    op.create_index('ix_notification_outbox_notice_id', 'notification_outbox', ['notice_id'])
    op.create_index('ix_notification_outbox_status', 'notification_outbox', ['status'])
    op.create_table(
        'notification_preferences',
        sa.Column('user_id', sa.String(length=32), sa.ForeignKey('users.id', ondelete='CASCADE'),
                  primary_key=True),
        sa.Column('events', JSON, nullable=False),
        sa.Column('channels', JSON, nullable=False),
        sa.Column('slack_channel', sa.String(length=80), nullable=True),
        sa.Column('digest', sa.Boolean(), nullable=False),
        sa.Column('updated_at', TS, nullable=False),
    )
    op.create_table(
        'budget_settings',
        sa.Column('id', sa.String(length=16), primary_key=True),
        sa.Column('limit_usd', sa.Float(), nullable=False),
        sa.Column('alerts', JSON, nullable=False),
        sa.Column('recipients', JSON, nullable=False),
        sa.Column('updated_by', sa.String(length=32), sa.ForeignKey('users.id', ondelete='SET NULL'), nullable=True),
        sa.Column('updated_at', TS, nullable=False),
    )
    op.create_table(
        'webhook_endpoints',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('user_id', sa.String(length=32), sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=False),
        sa.Column('url', sa.String(length=2048), nullable=False),
        sa.Column('events', JSON, nullable=False),
        sa.Column('description', sa.String(length=200), nullable=True),
        sa.Column('secret_encrypted', sa.Text(), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('deleted_at', TS, nullable=True),
    )
    op.create_index('ix_webhook_endpoints_user_id', 'webhook_endpoints', ['user_id'])
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('endpoint_id', sa.String(length=32),
                  sa.ForeignKey('webhook_endpoints.id', ondelete='CASCADE'), nullable=False),
        sa.Column('notice_id', BigId, sa.ForeignKey('notices.id', ondelete='CASCADE'), nullable=False),
        sa.Column('event_type', sa.String(length=40), nullable=False),
        sa.Column('message_id', sa.String(length=40), nullable=False, unique=True),
        sa.Column('payload', JSON, nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', TS, nullable=True),
        sa.Column('response_status', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('delivered_at', TS, nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.UniqueConstraint('endpoint_id', 'notice_id', name='uq_webhook_delivery_once'),
    )
    op.create_index('ix_webhook_deliveries_endpoint_id', 'webhook_deliveries', ['endpoint_id'])
    op.create_index('ix_webhook_deliveries_status', 'webhook_deliveries', ['status'])
    with op.batch_alter_table('training_jobs') as batch:
        batch.add_column(sa.Column('max_cost_usd', sa.Float(), nullable=True))
        batch.add_column(sa.Column('projected_cost_usd', sa.Float(), nullable=True))
        batch.add_column(sa.Column('cost_alerts', JSON, nullable=True))
        batch.add_column(sa.Column('budget_override', JSON, nullable=True))
        batch.add_column(sa.Column('approval', JSON, nullable=True))
        batch.add_column(sa.Column('stop_request', JSON, nullable=True))
    with op.batch_alter_table('training_job_attempts') as batch:
        batch.add_column(sa.Column('execution_ms', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('delay_ms', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('webhook_token_hash', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('training_job_attempts') as batch:
        for c in ('webhook_token_hash', 'delay_ms', 'execution_ms'):
            batch.drop_column(c)
    with op.batch_alter_table('training_jobs') as batch:
        for c in ('stop_request', 'approval', 'budget_override', 'cost_alerts', 'projected_cost_usd',
                  'max_cost_usd'):
            batch.drop_column(c)
    for t in ('webhook_deliveries', 'webhook_endpoints', 'budget_settings', 'notification_preferences',
              'notification_outbox', 'notices'):
        op.drop_table(t)
