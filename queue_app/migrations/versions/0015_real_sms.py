"""real SMS: gateway message ids and delivery status on the outbox, segment counts, SMS opt-outs

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notification') as batch:
        batch.add_column(sa.Column('provider', sa.String(length=16), server_default='', nullable=False))
        batch.add_column(sa.Column('provider_message_id', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('delivery_status', sa.String(length=16), server_default='', nullable=False))
        batch.add_column(sa.Column('delivery_updated_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('segments', sa.Integer(), nullable=True))
        batch.create_index(batch.f('ix_notification_provider_message_id'), ['provider_message_id'], unique=False)
    op.create_table(
        'sms_opt_out',
        sa.Column('number', sa.String(length=40), nullable=False),
        sa.Column('opted_out', sa.Boolean(), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('detail', sa.String(length=200), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('number', name=op.f('pk_sms_opt_out')),
    )


def downgrade():
    op.drop_table('sms_opt_out')
    with op.batch_alter_table('notification') as batch:
        batch.drop_index(batch.f('ix_notification_provider_message_id'))
        batch.drop_column('segments')
        batch.drop_column('delivery_updated_at')
        batch.drop_column('delivery_status')
        batch.drop_column('provider_message_id')
        batch.drop_column('provider')
