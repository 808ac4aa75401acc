"""A domain operation's write transaction, entered after the view read in its own (authentication,
the branch): it goes on in that transaction and connection, and must still see what others
committed meanwhile and hold SQLite's write lock from its first statement."""
import sqlite3

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from queue_app.core.transaction import write_transaction
from queue_app.tickets.models import TicketSequence

NEW_SEQUENCE = ("INSERT INTO ticket_sequence (branch_id, local_date, prefix, last_number) "
                "SELECT id, '2030-01-02', 'Q', 1 FROM branch WHERE slug = 'demo'")


def _sequences(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(TicketSequence))


def test_a_write_after_a_read_sees_what_another_connection_committed_meanwhile(session):
    """On SQLite a read transaction keeps its snapshot; a write begun on it would fail with
    SQLITE_BUSY_SNAPSHOT or decide on stale rows. The write transaction ends the snapshot first."""
    before = _sequences(session)  # the view's read transaction, now open
    other_engine = create_engine(session.get_bind().url)
    try:
        with other_engine.begin() as other:
            other.execute(text(NEW_SEQUENCE))
    finally:
        other_engine.dispose()
    assert session.in_transaction()
    with write_transaction(session):
        assert _sequences(session) == before + 1
        session.execute(text("UPDATE ticket_sequence SET last_number = 7 WHERE prefix = 'Q'"))
    assert not session.in_transaction()
    assert session.scalar(select(TicketSequence.last_number).where(TicketSequence.prefix == "Q")) == 7


def test_a_write_after_a_read_holds_the_sqlite_write_lock_from_its_start(session):
    """BEGIN IMMEDIATE, as for a write transaction begun afresh: another writer cannot get in
    between this transaction's reads and its writes."""
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("SQLite's database-wide write lock")
    _sequences(session)
    path = session.get_bind().url.database
    outsider = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with write_transaction(session):
            _sequences(session)  # no write yet: the lock is held all the same
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                outsider.execute("BEGIN IMMEDIATE")
        outsider.execute("BEGIN IMMEDIATE")  # released with the commit
        outsider.execute("ROLLBACK")
    finally:
        outsider.close()


def test_a_failed_write_after_a_read_changes_nothing(session):
    before = _sequences(session)
    with pytest.raises(RuntimeError, match="refused"), write_transaction(session):
        session.execute(text(NEW_SEQUENCE))
        assert _sequences(session) == before + 1
        raise RuntimeError("refused")
    assert _sequences(session) == before
