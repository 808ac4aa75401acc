"""One write transaction per domain operation.

SQLite must take its write lock up front (BEGIN IMMEDIATE): a transaction that reads first and
writes later fails with SQLITE_BUSY instead of waiting when another writer got in between. The
engine's `begin` hook (queue_app/database.py) reads the execution option set here. PostgreSQL
ignores it and relies on row locks (FOR UPDATE, SKIP LOCKED) in the statements themselves.
"""
from contextlib import contextmanager

from sqlalchemy.orm import Session, scoped_session

WRITE_OPTION = "queue_app_write"


@contextmanager
def write_transaction(session: Session | scoped_session):
    if isinstance(session, scoped_session):
        session = session()  # Flask-SQLAlchemy's db.session is a proxy; work on the real one
    if session.in_transaction():
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("write_transaction entered with unsaved changes in the session")
        # End the read-only transaction a view may have opened (e.g. for authentication).
        session.commit()
    session.connection(execution_options={WRITE_OPTION: True})
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
