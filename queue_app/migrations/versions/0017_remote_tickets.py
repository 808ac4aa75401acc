"""remote tickets (join from home): travel time, set-off message, arrival, holds; contact codes

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ticket') as batch:
        batch.add_column(sa.Column('remote', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column('travel_minutes', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('set_off_sent_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('arrived_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('held_count', sa.Integer(), server_default='0', nullable=False))
    op.create_table(
        'contact_code',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('channel', sa.String(8), nullable=False),
        sa.Column('contact', sa.String(254), nullable=False),
        sa.Column('code_hash', sa.String(64), nullable=False),
        sa.Column('branch_id', sa.Integer(), sa.ForeignKey('branch.id'), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('wrong_tries', sa.Integer(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_contact_code_contact', 'contact_code', ['contact', 'created_at'])


def downgrade():
    op.drop_index('ix_contact_code_contact', table_name='contact_code')
    op.drop_table('contact_code')
    with op.batch_alter_table('ticket') as batch:
        for column in ('held_count', 'arrived_at', 'set_off_sent_at', 'travel_minutes', 'remote'):
            batch.drop_column(column)
