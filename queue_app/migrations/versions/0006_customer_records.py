"""customer records: standings per branch, feedback, churn alerts, audit log, prices, rules

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_rules', sa.JSON(), server_default='{}', nullable=False))
    with op.batch_alter_table('service', schema=None) as batch_op:
        batch_op.add_column(sa.Column('price_cents', sa.Integer(), nullable=True))
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('created_at', sa.DateTime(), nullable=True))

    op.create_table(
        'customer_standing',
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=False),
        sa.Column('visits', sa.Integer(), nullable=False),
        sa.Column('spend_cents', sa.Integer(), nullable=False),
        sa.Column('no_shows', sa.Integer(), nullable=False),
        sa.Column('first_visit_at', sa.DateTime(), nullable=True),
        sa.Column('last_visit_at', sa.DateTime(), nullable=True),
        sa.Column('usual_interval_days', sa.Float(), nullable=True),
        sa.Column('value_score', sa.Float(), nullable=False),
        sa.Column('loyalty_score', sa.Float(), nullable=False),
        sa.Column('segment', sa.String(length=32), nullable=False),
        sa.Column('tier', sa.String(length=32), nullable=False),
        sa.Column('computed_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], name=op.f('fk_customer_standing_branch_id_branch')),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_customer_standing_customer_id_customer')),
        sa.PrimaryKeyConstraint('customer_id', 'branch_id', name=op.f('pk_customer_standing')),
    )
    with op.batch_alter_table('customer_standing', schema=None) as batch_op:
        batch_op.create_index('ix_customer_standing_segment', ['branch_id', 'segment'], unique=False)

    op.create_table(
        'feedback',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=False),
        sa.Column('service_id', sa.Integer(), nullable=False),
        sa.Column('counter_id', sa.Integer(), nullable=True),
        sa.Column('staff_id', sa.Integer(), nullable=True),
        sa.Column('customer_id', sa.Integer(), nullable=True),
        sa.Column('token_hash', sa.String(length=64), nullable=True),
        sa.Column('rating', sa.Integer(), nullable=True),
        sa.Column('nps', sa.Integer(), nullable=True),
        sa.Column('comment', sa.Text(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('invited_at', sa.DateTime(), nullable=True),
        sa.Column('answered_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], name=op.f('fk_feedback_branch_id_branch')),
        sa.ForeignKeyConstraint(['counter_id'], ['counter.id'], name=op.f('fk_feedback_counter_id_counter')),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_feedback_customer_id_customer')),
        sa.ForeignKeyConstraint(['service_id'], ['service.id'], name=op.f('fk_feedback_service_id_service')),
        sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_feedback_staff_id_staff')),
        sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], name=op.f('fk_feedback_ticket_id_ticket')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback')),
        sa.UniqueConstraint('ticket_id', name=op.f('uq_feedback_ticket_id')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_feedback_token_hash')),
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feedback_branch_id'), ['branch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_feedback_customer_id'), ['customer_id'], unique=False)

    op.create_table(
        'churn_alert',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=False),
        sa.Column('customer_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('last_visit_at', sa.DateTime(), nullable=False),
        sa.Column('usual_interval_days', sa.Float(), nullable=True),
        sa.Column('segment', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('contacted_at', sa.DateTime(), nullable=True),
        sa.Column('contacted_by_id', sa.Integer(), nullable=True),
        sa.Column('resolved_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['branch_id'], ['branch.id'], name=op.f('fk_churn_alert_branch_id_branch')),
        sa.ForeignKeyConstraint(['contacted_by_id'], ['staff.id'], name=op.f('fk_churn_alert_contacted_by_id_staff')),
        sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_churn_alert_customer_id_customer')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_churn_alert')),
        sa.UniqueConstraint('branch_id', 'customer_id', 'last_visit_at',
                            name=op.f('uq_churn_alert_branch_id_customer_id_last_visit_at')),
    )
    with op.batch_alter_table('churn_alert', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_churn_alert_branch_id'), ['branch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_churn_alert_customer_id'), ['customer_id'], unique=False)

    op.create_table(
        'audit_log',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('target_type', sa.String(length=32), nullable=False),
        sa.Column('target_id', sa.Integer(), nullable=True),
        sa.Column('branch_id', sa.Integer(), nullable=True),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['staff.id'], name=op.f('fk_audit_log_actor_id_staff')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index('ix_audit_log_target', ['target_type', 'target_id'], unique=False)


def downgrade():
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_target')
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))
    op.drop_table('audit_log')
    with op.batch_alter_table('churn_alert', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_churn_alert_customer_id'))
        batch_op.drop_index(batch_op.f('ix_churn_alert_branch_id'))
    op.drop_table('churn_alert')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_customer_id'))
        batch_op.drop_index(batch_op.f('ix_feedback_branch_id'))
    op.drop_table('feedback')
    with op.batch_alter_table('customer_standing', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_standing_segment')
    op.drop_table('customer_standing')
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_column('created_at')
    with op.batch_alter_table('service', schema=None) as batch_op:
        batch_op.drop_column('price_cents')
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.drop_column('customer_rules')
