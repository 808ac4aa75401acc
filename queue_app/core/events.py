"""Publishing of queue changes after commit (the bus); the ticket event log is tickets/event_log.py.

Domain functions announce changes inside their transaction (tickets.event_log.record does it for
every ticket event). Subscribers (the Socket.IO layer, later
webhooks) are called once the transaction has committed, from `_publish_after_commit` only, so a
rolled-back change is never announced.
"""
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

PENDING_KEY = "queue_app_pending_changes"
BIND_KEY = "queue_app_pending_bind"
# A session whose info has this key set announces nothing (the branch simulator's sessions).
QUIET_KEY = "queue_app_quiet"


@dataclass(frozen=True)
class QueueChange:
    type: str
    branch_id: int
    ticket_id: int | None  # None: a change to the branch's counters, not to one ticket
    label: str
    service_id: int | None
    status: str
    counter_id: int | None
    at: datetime
    data: dict = field(default_factory=dict)
    # A ticket event: the row written to the event log (tickets/event_log.py), as its columns. Read
    # inside the transaction by the webhooks' outbox, which writes it out with the change.
    logged: dict | None = field(default=None, compare=False, repr=False)


# A subscriber gets the committed changes and the engine they were committed to (to read more).
Subscriber = Callable[[list[QueueChange], Engine], None]
# Per engine, that is per app: a second app in the same process (tests, the simulator) announces to
# its own subscribers only. Weak keys: a disposed app's engine takes its subscribers with it.
_subscribers: "weakref.WeakKeyDictionary[Engine, list[Subscriber]]" = weakref.WeakKeyDictionary()


def subscribe(engine: Engine, callback: Subscriber) -> None:
    """Call `callback` after every commit on `engine` that announced changes (an app's init_app)."""
    callbacks = _subscribers.setdefault(engine, [])
    if callback not in callbacks:
        callbacks.append(callback)


def unsubscribe(engine: Engine, callback: Subscriber) -> None:
    callbacks = _subscribers.get(engine, [])
    if callback in callbacks:
        callbacks.remove(callback)


def announce(session: Session, change: QueueChange) -> None:
    """Queue a change to be published once this session's transaction commits."""
    session.info.setdefault(BIND_KEY, session.get_bind())
    session.info.setdefault(PENDING_KEY, []).append(change)


def pending(session: Session) -> list[QueueChange]:
    """The changes announced so far in this session's transaction, in order (not yet published)."""
    return session.info.get(PENDING_KEY, [])


def counters_changed(session: Session, branch_id: int, at: datetime) -> None:
    """A counter opened, paused, closed or changed its services: no ticket moved, but displays and
    staff consoles show counter states and every waiting ticket's estimate may have changed."""
    announce(session, QueueChange(type="counters", branch_id=branch_id, ticket_id=None, label="", service_id=None,
                                  status="", counter_id=None, at=at))


def _publish_after_commit(session: Session) -> None:
    changes = session.info.pop(PENDING_KEY, None)
    bind = session.info.pop(BIND_KEY, None)
    if not changes or session.info.get(QUIET_KEY):
        return
    for callback in list(_subscribers.get(bind, ())):
        callback(changes, bind)


def _forget_after_rollback(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)
    session.info.pop(BIND_KEY, None)


def install() -> None:
    """Publish after every commit of every Session, forget on rollback (idempotent; create_app calls it)."""
    if not event.contains(Session, "after_commit", _publish_after_commit):
        event.listen(Session, "after_commit", _publish_after_commit)
        event.listen(Session, "after_rollback", _forget_after_rollback)
