"""wait estimates: counter shifts, estimate given at issue, almost-your-turn settings

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('almost_turn_minutes', sa.Integer(), server_default='5', nullable=False))
        batch_op.add_column(sa.Column('almost_turn_position', sa.Integer(), server_default='2', nullable=False))
    with op.batch_alter_table('counter', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shifts', sa.JSON(), server_default='{}', nullable=False))
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.add_column(sa.Column('estimate_minutes', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('estimate_low', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('estimate_high', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('almost_turn_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_column('almost_turn_at')
        batch_op.drop_column('estimate_high')
        batch_op.drop_column('estimate_low')
        batch_op.drop_column('estimate_minutes')
    with op.batch_alter_table('counter', schema=None) as batch_op:
        batch_op.drop_column('shifts')
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.drop_column('almost_turn_position')
        batch_op.drop_column('almost_turn_minutes')
