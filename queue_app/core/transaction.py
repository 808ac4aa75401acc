"""One write transaction per domain operation.

SQLite must take its write lock up front (BEGIN IMMEDIATE): a transaction that reads first and
writes later fails with SQLITE_BUSY instead of waiting when another writer got in between. The
engine's `begin` hook (queue_app/core/database.py) reads the execution option set here.

SQLite's own wait for a busy lock polls with sleeps of up to 100 ms, which wrecks tail latency
when many threads of one process write at once; so threads of one process first queue on an
in-process lock per database file and hand over without polling. Other processes on the same
file still wait in SQLite's busy handler, correctly if more slowly. PostgreSQL needs neither and
relies on row locks (FOR UPDATE, SKIP LOCKED) in the statements themselves.

A view usually reads first (who is calling, the branch) and then calls the domain operation: the
write transaction goes on in that transaction and connection (on SQLite after ending its read
snapshot and taking the write lock) rather than committing it and beginning another through the
session (tests/core/test_transactions.py).
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


def _go_on_writing(session: Session) -> None:
    """Turn the view's read transaction into the write transaction, in the same connection:
    committing it and beginning another through the session cost as much CPU as the statements of
    a call (bench/request_cost.py)."""
    if session.expire_on_commit:
        # What was read is read again under the lock, as after the commit of the read (the app's
        # own sessions keep loaded objects across commits and skip this).
        session.expire_all()
    if session.get_bind().dialect.name == "sqlite":
        # The read snapshot ends and the write lock is taken, as a new transaction would.
        driver = session.connection().connection.driver_connection
        if driver.in_transaction:
            driver.execute("COMMIT")
        driver.execute("BEGIN IMMEDIATE")
    # PostgreSQL goes on as it is: every statement reads what is committed, and the row locks are
    # taken by the statements themselves.


@contextmanager
def write_transaction(session: Session | scoped_session):
    if isinstance(session, scoped_session):
        session = session()  # Flask-SQLAlchemy's db.session is a proxy; work on the real one
    reading = session.in_transaction()  # a view read first (authentication, the branch, ...)
    if reading and (session.new or session.dirty or session.deleted):
        raise RuntimeError("write_transaction entered with unsaved changes in the session")
    with _writer_lock(session):
        if reading:
            _go_on_writing(session)
        else:
            session.connection(execution_options={WRITE_OPTION: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
