"""the engineer's workbench: the audit trail, job templates (and the template a job started
from), jobs' perplexity gain, one-time set-password links

Revision ID: 0009
Revises: 0008
"""
import json

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')
TS = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'audit_entries',
        sa.Column('id', BigId, primary_key=True, autoincrement=True),
        sa.Column('at', TS, nullable=False),
        sa.Column('actor_id', sa.String(length=32), sa.ForeignKey('users.id', ondelete='SET NULL'), nullable=True),
        sa.Column('actor_email', sa.String(length=320), nullable=True),
        sa.Column('action', sa.String(length=48), nullable=False),
        sa.Column('target_type', sa.String(length=32), nullable=False),
        sa.Column('target_id', sa.String(length=64), nullable=True),
        sa.Column('training_job_id', sa.String(length=32), nullable=True),
        sa.Column('details', JSON, nullable=False),
        sa.Column('client_address', sa.String(length=64), nullable=True),
    )
    op.create_index('ix_audit_entries_at', 'audit_entries', ['at'])
    op.create_index('ix_audit_entries_actor_id_at', 'audit_entries', ['actor_id', 'at'])
    op.create_index('ix_audit_entries_action_at', 'audit_entries', ['action', 'at'])
    op.create_index('ix_audit_entries_training_job_id', 'audit_entries', ['training_job_id'])
    op.create_table(
        'job_templates',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('name', sa.String(length=200), nullable=False, unique=True),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('configuration', JSON, nullable=False),
        sa.Column('source_job_id', sa.String(length=32), nullable=True),
        sa.Column('created_by', sa.String(length=32), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
    )
    op.create_table(
        'password_links',
        sa.Column('id', sa.String(length=32), primary_key=True),
        sa.Column('user_id', sa.String(length=32), sa.ForeignKey('users.id', ondelete='CASCADE'), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False, unique=True),
        sa.Column('created_by', sa.String(length=32), sa.ForeignKey('users.id', ondelete='SET NULL'), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('expires_at', TS, nullable=False),
        sa.Column('used_at', TS, nullable=True),
        sa.Column('revoked_at', TS, nullable=True),
    )
    op.create_index('ix_password_links_user_id', 'password_links', ['user_id'])
    with op.batch_alter_table('training_jobs') as batch:
        batch.add_column(sa.Column('template_id', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('perplexity_gain_pct', sa.Float(), nullable=True))
        batch.create_index('ix_training_jobs_template_id', ['template_id'])
    # The jobs evaluated before: their adapter's gain, then the newest completed re-evaluation's.
    op.execute("UPDATE training_jobs SET perplexity_gain_pct = (SELECT a.perplexity_improvement_pct "
               "FROM model_artifacts a WHERE a.training_job_id = training_jobs.id)")
    conn = op.get_bind()
    runs = conn.execute(sa.text("SELECT training_job_id, summary FROM evaluation_runs "
                                "WHERE status = 'completed' AND summary IS NOT NULL ORDER BY completed_at"))
    newest = {}
    for job_id, summary in runs:
        summary = json.loads(summary) if isinstance(summary, str) else summary
        if isinstance(summary, dict) and summary.get("improvement_pct") is not None:
            newest[job_id] = summary["improvement_pct"]
    for job_id, gain in newest.items():
        conn.execute(sa.text("UPDATE training_jobs SET perplexity_gain_pct = :gain WHERE id = :id"),
                     {"gain": gain, "id": job_id})


def downgrade():
    with op.batch_alter_table('training_jobs') as batch:
        batch.drop_index('ix_training_jobs_template_id')
        batch.drop_column('perplexity_gain_pct')
        batch.drop_column('template_id')
    op.drop_index('ix_password_links_user_id', table_name='password_links')
    op.drop_table('password_links')
    op.drop_table('job_templates')
    for name in ('ix_audit_entries_training_job_id', 'ix_audit_entries_action_at',
                 'ix_audit_entries_actor_id_at', 'ix_audit_entries_at'):
        op.drop_index(name, table_name='audit_entries')
    op.drop_table('audit_entries')
