"""branch coordinates (latitude, longitude) for the branch list's distances

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('branch') as batch:
        # WGS 84 degrees; both or neither (catalogue.check_coordinates).
        batch.add_column(sa.Column('latitude', sa.Float(), nullable=True))
        batch.add_column(sa.Column('longitude', sa.Float(), nullable=True))


def downgrade():
    with op.batch_alter_table('branch') as batch:
        batch.drop_column('longitude')
        batch.drop_column('latitude')
