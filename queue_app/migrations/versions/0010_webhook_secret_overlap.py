"""webhook secret rotation: the previous secret keeps signing for an overlap window

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_endpoint') as batch:
        batch.add_column(sa.Column('previous_secret', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('previous_secret_until', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('webhook_endpoint') as batch:
        batch.drop_column('previous_secret_until')
        batch.drop_column('previous_secret')
