"""planning: arrival forecasts, staffing plan, branch planning rules

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'arrival_forecast',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=False),
        sa.Column('service_id', sa.Integer(), nullable=False),
        sa.Column('local_date', sa.Date(), nullable=False),
        sa.Column('starts_at', sa.DateTime(), nullable=False),
        sa.Column('minutes', sa.Integer(), nullable=False),
        sa.Column('walk_in_mean', sa.Float(), nullable=False),
        sa.Column('walk_in_p10', sa.Float(), nullable=False),
        sa.Column('walk_in_p90', sa.Float(), nullable=False),
        sa.Column('booking_mean', sa.Float(), nullable=False),
        sa.Column('computed_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['branch_id'], ['branch.id']),
        sa.ForeignKeyConstraint(['service_id'], ['service.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('branch_id', 'service_id', 'starts_at'),
    )
    op.create_index('ix_arrival_forecast_branch_id', 'arrival_forecast', ['branch_id'])
    op.create_table(
        'staffing_plan',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=False),
        sa.Column('local_date', sa.Date(), nullable=False),
        sa.Column('starts_at', sa.DateTime(), nullable=False),
        sa.Column('minutes', sa.Integer(), nullable=False),
        sa.Column('forecast_arrivals', sa.Float(), nullable=False),
        sa.Column('offered_load', sa.Float(), nullable=False),
        sa.Column('counters_planned', sa.Integer(), nullable=False),
        sa.Column('counters_override', sa.Integer(), nullable=True),
        sa.Column('booking_slots', sa.Integer(), nullable=False),
        sa.Column('booking_slots_override', sa.Integer(), nullable=True),
        sa.Column('computed_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['branch_id'], ['branch.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('branch_id', 'starts_at'),
    )
    op.create_index('ix_staffing_plan_branch_id', 'staffing_plan', ['branch_id'])
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('planning_rules', sa.JSON(), server_default='{}', nullable=False))


def downgrade():
    with op.batch_alter_table('branch', schema=None) as batch_op:
        batch_op.drop_column('planning_rules')
    op.drop_index('ix_staffing_plan_branch_id', table_name='staffing_plan')
    op.drop_table('staffing_plan')
    op.drop_index('ix_arrival_forecast_branch_id', table_name='arrival_forecast')
    op.drop_table('arrival_forecast')
