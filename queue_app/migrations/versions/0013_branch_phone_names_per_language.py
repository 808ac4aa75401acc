"""branch phone and announcement languages, names per language, kiosk page pings

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('branch') as batch:
        # Shown where a booking can no longer be changed online.
        batch.add_column(sa.Column('phone', sa.String(length=32), nullable=True))
        # Languages the lobby display announces calls in, in turn; empty: the display's language.
        batch.add_column(sa.Column('announcement_languages', sa.JSON(), nullable=False, server_default='[]'))
    with op.batch_alter_table('service') as batch:
        # {"zh_Hant": "...", "zh_Hans": "..."}; a missing language falls back to `name`.
        batch.add_column(sa.Column('names', sa.JSON(), nullable=False, server_default='{}'))
    with op.batch_alter_table('counter') as batch:
        batch.add_column(sa.Column('names', sa.JSON(), nullable=False, server_default='{}'))
    with op.batch_alter_table('kiosk_device') as batch:
        # The kiosk page's own pings (a browser kiosk without a print bridge still shows as alive).
        batch.add_column(sa.Column('page_seen_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('kiosk_device') as batch:
        batch.drop_column('page_seen_at')
    with op.batch_alter_table('counter') as batch:
        batch.drop_column('names')
    with op.batch_alter_table('service') as batch:
        batch.drop_column('names')
    with op.batch_alter_table('branch') as batch:
        batch.drop_column('announcement_languages')
        batch.drop_column('phone')
