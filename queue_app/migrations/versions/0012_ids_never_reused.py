"""trust rules: ids never reused (SQLite AUTOINCREMENT), idempotency keys scoped to caller and body

Revision ID: 0012
Revises: 0011

SQLite gives a new row the highest rowid + 1, so deleting the highest row (an erased or merged
customer, a deleted webhook endpoint) hands its id to the next row: audit entries and webhook
payloads of two people would share one id. AUTOINCREMENT (the sqlite_sequence table) never
reuses; it is a table option, so these tables are rebuilt on SQLite. PostgreSQL sequences never
reuse ids: nothing to do there.

Appointment.idempotency_key now holds a hash of the key and its caller, and
idempotency_fingerprint a hash of the request: the same key with another body is refused.
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# Tables whose ids leave the database (API paths, audit entries, webhook payloads) and whose rows
# are deleted. Tickets, bookings, staff, kiosks and audit entries are never deleted.
NEVER_REUSED = ('customer', 'churn_alert', 'webhook_endpoint', 'webhook_delivery')


def _rebuild(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'sqlite':
        return
    for table in NEVER_REUSED:
        with op.batch_alter_table(table, recreate='always',
                                  table_kwargs={'sqlite_autoincrement': autoincrement}):
            pass
    # The rebuild copies every row with its id, so every reference still holds.
    problems = bind.exec_driver_sql('PRAGMA foreign_key_check').fetchall()
    if problems:
        raise RuntimeError(f'foreign keys broken by the rebuild: {problems[:5]}')


def upgrade():
    with op.batch_alter_table('appointment') as batch:
        batch.add_column(sa.Column('idempotency_fingerprint', sa.String(length=64), nullable=True))
    _rebuild(autoincrement=True)


def downgrade():
    _rebuild(autoincrement=False)
    with op.batch_alter_table('appointment') as batch:
        batch.drop_column('idempotency_fingerprint')
