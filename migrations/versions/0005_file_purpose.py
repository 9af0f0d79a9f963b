"""file purpose: a training file is a dataset to train on ("fine-tune") or the customer's
own prompts to evaluate on ("evaluation")

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('training_files') as batch:
        # Every file uploaded before this revision is a dataset.
        batch.add_column(sa.Column('purpose', sa.String(length=16), nullable=False,
                                   server_default='fine-tune'))


def downgrade():
    with op.batch_alter_table('training_files') as batch:
        batch.drop_column('purpose')
