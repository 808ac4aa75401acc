"""branch setting: minutes of slack a remote customer is asked to arrive before the earliest likely call

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('branch') as batch:
        batch.add_column(sa.Column('set_off_margin_minutes', sa.Integer(), server_default='5', nullable=False))


def downgrade():
    with op.batch_alter_table('branch') as batch:
        batch.drop_column('set_off_margin_minutes')
