"""kiosk pairing codes: one-time codes a manager hands to a new kiosk device

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'kiosk_pairing_code',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=False),
        sa.Column('device_name', sa.String(length=100), nullable=False),
        sa.Column('code_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.Column('device_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], name=op.f('fk_kiosk_pairing_code_branch_id_branch')),
        sa.ForeignKeyConstraint(['created_by_id'], ['staff.id'], name=op.f('fk_kiosk_pairing_code_created_by_id_staff')),
        sa.ForeignKeyConstraint(['device_id'], ['kiosk_device.id'], name=op.f('fk_kiosk_pairing_code_device_id_kiosk_device')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_kiosk_pairing_code')),
        sa.UniqueConstraint('code_hash', name=op.f('uq_kiosk_pairing_code_code_hash')),
    )
    with op.batch_alter_table('kiosk_pairing_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kiosk_pairing_code_branch_id'), ['branch_id'], unique=False)


def downgrade():
    with op.batch_alter_table('kiosk_pairing_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kiosk_pairing_code_branch_id'))
    op.drop_table('kiosk_pairing_code')
