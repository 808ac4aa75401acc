"""One write transaction per domain operation.

SQLite must take its write lock up front (BEGIN IMMEDIATE): a transaction that reads first and
writes later fails with SQLITE_BUSY instead of waiting when another writer got in between. The
engine's `begin` hook (queue_app/core/database.py) reads the execution option set here.

SQLite's own wait for a busy lock polls with sleeps of up to 100 ms, which wrecks tail latency
when many threads of one process write at once; so threads of one process first queue on an
in-process lock per database file and hand over without polling. Other processes on the same
file still wait in SQLite's busy handler, correctly if more slowly. PostgreSQL needs neither and
relies on row locks (FOR UPDATE, SKIP LOCKED) in the statements themselves.
"""
import threading
from contextlib import contextmanager, nullcontext

from sqlalchemy.orm import Session, scoped_session

WRITE_OPTION = "queue_app_write"

_sqlite_writer_locks: dict[str, threading.Lock] = {}
_registry_lock = threading.Lock()


def _writer_lock(session: Session):
    engine = session.get_bind()
    if engine.dialect.name != "sqlite":
        return nullcontext()
    key = str(engine.url)
    with _registry_lock:
        return _sqlite_writer_locks.setdefault(key, threading.Lock())


@contextmanager
def write_transaction(session: Session | scoped_session):
    if isinstance(session, scoped_session):
        session = session()  # Flask-SQLAlchemy's db.session is a proxy; work on the real one
    if session.in_transaction():
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("write_transaction entered with unsaved changes in the session")
        # End the read-only transaction a view may have opened (e.g. for authentication).
        session.commit()
    with _writer_lock(session):
        session.connection(execution_options={WRITE_OPTION: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
