"""identity: contacts kept on bookings and tickets, verified contacts on customers, proof links

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('appointment') as batch:
        batch.add_column(sa.Column('phone', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('email', sa.String(length=254), nullable=True))
        batch.add_column(sa.Column('contact_proven_at', sa.DateTime(), nullable=True))
        batch.create_index('ix_appointment_phone', ['phone'])
        batch.create_index('ix_appointment_email', ['email'])
    with op.batch_alter_table('ticket') as batch:
        batch.add_column(sa.Column('phone', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('email', sa.String(length=254), nullable=True))
        batch.add_column(sa.Column('language', sa.String(length=16), nullable=True))
    with op.batch_alter_table('customer') as batch:
        batch.add_column(sa.Column('phone_verified_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('email_verified_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('strikes_reset_at', sa.DateTime(), nullable=True))
    op.create_table(
        'contact_proof',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('token_hash', sa.String(length=64), nullable=False, unique=True),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('contact', sa.String(length=254), nullable=False),
        sa.Column('appointment_id', sa.Integer(), sa.ForeignKey('appointment.id'), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
    )
    op.create_index('ix_contact_proof_appointment_id', 'contact_proof', ['appointment_id'])
    # Existing bookings and open tickets keep messaging the contacts they were made with. Nothing
    # already stored was proven, so no contact starts verified.
    op.execute("UPDATE appointment SET phone = (SELECT phone FROM customer WHERE customer.id = appointment.customer_id),"
               " email = (SELECT email FROM customer WHERE customer.id = appointment.customer_id)"
               " WHERE customer_id IS NOT NULL")
    op.execute("UPDATE ticket SET phone = (SELECT phone FROM customer WHERE customer.id = ticket.customer_id),"
               " email = (SELECT email FROM customer WHERE customer.id = ticket.customer_id),"
               " language = (SELECT language FROM customer WHERE customer.id = ticket.customer_id)"
               " WHERE customer_id IS NOT NULL AND status IN ('waiting', 'called', 'serving')")


def downgrade():
    op.drop_index('ix_contact_proof_appointment_id', table_name='contact_proof')
    op.drop_table('contact_proof')
    with op.batch_alter_table('customer') as batch:
        batch.drop_column('strikes_reset_at')
        batch.drop_column('email_verified_at')
        batch.drop_column('phone_verified_at')
    with op.batch_alter_table('ticket') as batch:
        batch.drop_column('language')
        batch.drop_column('email')
        batch.drop_column('phone')
    with op.batch_alter_table('appointment') as batch:
        batch.drop_index('ix_appointment_email')
        batch.drop_index('ix_appointment_phone')
        batch.drop_column('contact_proven_at')
        batch.drop_column('email')
        batch.drop_column('phone')
