"""the estimator's uncorrected figures kept on each ticket at issue (self-correcting estimates)

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ticket') as batch:
        batch.add_column(sa.Column('model_mean', sa.Float(), nullable=True))
        batch.add_column(sa.Column('model_low', sa.Float(), nullable=True))
        batch.add_column(sa.Column('model_high', sa.Float(), nullable=True))


def downgrade():
    with op.batch_alter_table('ticket') as batch:
        batch.drop_column('model_high')
        batch.drop_column('model_low')
        batch.drop_column('model_mean')
