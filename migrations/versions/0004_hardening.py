"""hardening: server-side console sessions, token expiry, user deactivation, datasets
validated off the request path, registered base models

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade():
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('api_tokens') as batch:
        batch.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'console_sessions',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('user_id', sa.String(length=32), sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False, unique=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('client_address', sa.String(length=64), nullable=True),
        sa.Column('user_agent', sa.String(length=255), nullable=True),
    )
    op.create_index('ix_console_sessions_user_id', 'console_sessions', ['user_id'])
    with op.batch_alter_table('training_files') as batch:
        # Files uploaded before this revision were validated in the request: they are ready.
        batch.add_column(sa.Column('status', sa.String(length=16), nullable=False, server_default='ready'))
        batch.add_column(sa.Column('problems', JSON, nullable=True))
        batch.add_column(sa.Column('problem_count', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('preview', JSON, nullable=True))
        batch.add_column(sa.Column('validated_at', sa.DateTime(timezone=True), nullable=True))
        batch.alter_column('statistics', existing_type=JSON, nullable=True)
        batch.alter_column('format', existing_type=sa.String(length=32), nullable=True)
    op.create_table(
        'base_models',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('name', sa.String(length=255), nullable=False, unique=True),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('added_by', sa.String(length=32), sa.ForeignKey('users.id', ondelete='SET NULL'), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade():
    op.drop_table('base_models')
    with op.batch_alter_table('training_files') as batch:
        batch.alter_column('format', existing_type=sa.String(length=32), nullable=False)
        batch.alter_column('statistics', existing_type=JSON, nullable=False)
        batch.drop_column('validated_at')
        batch.drop_column('preview')
        batch.drop_column('problems')
        batch.drop_column('problem_count')
        batch.drop_column('status')
    op.drop_index('ix_console_sessions_user_id', table_name='console_sessions')
    op.drop_table('console_sessions')
    with op.batch_alter_table('api_tokens') as batch:
        batch.drop_column('expires_at')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('deactivated_at')
