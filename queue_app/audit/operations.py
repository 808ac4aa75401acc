"""The audit log: who viewed or changed which customer record, and who changed roles, counters,
services and branch policies.

Append-only: the session refuses to update or delete an AuditEntry (ORM changes and bulk
statements alike). Entries hold ids, field names, roles and states, never names, phone numbers or
e-mail addresses, so erasing a customer leaves nothing personal here.

Customer actions are recorded explicitly by customers/operations.py (`record`). Changes to staff
accounts, counters, services and branch settings are recorded by a flush hook (`watch`) whatever
code path makes them; the web layer tells it who is acting (`actor_provider`).
"""
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from queue_app.accounts.models import Staff
from queue_app.audit.models import AuditEntry
from queue_app.catalogue.models import Branch, Counter, CounterService, Service
from queue_app.core.models import utcnow

# Returns the id of the staff member acting in this request, or None (jobs, CLI, anonymous).
actor_provider: Callable[[], int | None] = lambda: None  # noqa: E731

# Per watched model: the fields whose changes are recorded, and whether values may be logged.
# Staff e-mail and name are personal data: only "changed" is logged for them.
_WATCHED: dict[type, dict[str, bool]] = {
    Staff: {"role": True, "active": True, "email": False, "name": False, "password_hash": False},
    Counter: {"state": True, "name": True, "staff_id": True},
    Service: {"name": True, "expected_minutes": True, "walk_in_enabled": True, "booking_enabled": True,
              "active": True, "checklist": False, "price_cents": True},
    Branch: {"name": True, "timezone": True, "opening_hours": True, "closed_dates": True, "country": True,
             "language": True, "allow_remote_tickets": True, "postpone_places": True, "booking_rules": True,
             "customer_rules": True, "almost_turn_minutes": True, "almost_turn_position": True,
             "set_off_margin_minutes": True},
}
_TARGET = {Staff: "staff", Counter: "counter", Service: "service", Branch: "branch"}


class AppendOnly(RuntimeError):
    pass


def record(session: Session, action: str, target_type: str, target_id: int | None, *,
           actor_id: int | None = None, branch_id: int | None = None, details: dict | None = None,
           now: datetime | None = None) -> AuditEntry:
    """Add an entry inside the caller's transaction. `details` must not hold personal data."""
    entry = AuditEntry(at=now or utcnow(), actor_id=actor_id if actor_id is not None else _actor(),
                       action=action, target_type=target_type, target_id=target_id, branch_id=branch_id,
                       details=details or {})
    session.add(entry)
    return entry


def _actor() -> int | None:
    try:
        return actor_provider()
    except Exception:  # outside a request, or before sign-in: a system action
        return None


def _branch_of(obj) -> int | None:
    if isinstance(obj, Branch):
        return obj.id
    return getattr(obj, "branch_id", None)


def _changes(obj, fields: dict[str, bool]) -> dict:
    state = inspect(obj)
    changed = {}
    for name, loggable in fields.items():
        history = state.attrs[name].history
        if not history.has_changes():
            continue
        if loggable:
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
            changed[name] = {"from": old, "to": new}
        else:
            changed[name] = "changed"
    return changed


def _before_flush(session: Session, _context, _instances) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEntry):
            raise AppendOnly("the audit log is append-only")
    for obj in list(session.dirty):
        fields = _WATCHED.get(type(obj))
        if fields is None or not session.is_modified(obj):
            continue
        changed = _changes(obj, fields)
        if isinstance(obj, Staff):
            branches = inspect(obj).attrs["branches"].history
            if branches.has_changes():
                changed["branches"] = {"from": sorted(b.id for b in branches.deleted + branches.unchanged
                                                      if b not in branches.added),
                                       "to": sorted(b.id for b in branches.added + branches.unchanged)}
        if changed:
            record(session, f"{_TARGET[type(obj)]}.changed", _TARGET[type(obj)], obj.id,
                   branch_id=_branch_of(obj), details={"fields": changed})
    for obj in list(session.new):
        if type(obj) in _TARGET:
            # New rows have no id before the flush: record them after it (see _after_flush).
            session.info.setdefault("audit_new", []).append(obj)
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if isinstance(obj, CounterService):
            session.info.setdefault("audit_counter_services", set()).add(obj.counter_id)


def _after_flush(session: Session, _context) -> None:
    created = session.info.pop("audit_new", [])
    counters = session.info.pop("audit_counter_services", set())
    if not created and not counters:
        return
    actor = _actor()
    rows = []
    for obj in created:
        target = _TARGET[type(obj)]
        details = {"role": obj.role} if isinstance(obj, Staff) else {}
        rows.append({"at": utcnow(), "actor_id": actor, "action": f"{target}.created", "target_type": target,
                     "target_id": obj.id, "branch_id": _branch_of(obj), "details": details})
    for counter_id in sorted(c for c in counters if c is not None):
        rows.append({"at": utcnow(), "actor_id": actor, "action": "counter.services_changed",
                     "target_type": "counter", "target_id": counter_id, "branch_id": None, "details": {}})
    if not rows:
        return
    # Inserted through the connection: adding objects to the session after a flush is not allowed.
    session.connection().execute(AuditEntry.__table__.insert(), rows)


def _refuse_bulk(execute_state) -> None:
    statement = execute_state.statement
    if (execute_state.is_update or execute_state.is_delete) and execute_state.bind_mapper is not None \
            and execute_state.bind_mapper.class_ is AuditEntry:
        raise AppendOnly("the audit log is append-only")
    del statement


def watch() -> None:
    """Install the hooks on every Session (idempotent)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "do_orm_execute", _refuse_bulk)


def entries(session: Session, *, action: str | None = None, actor_id: int | None = None,
            start: datetime | None = None, end: datetime | None = None, target_type: str | None = None,
            target_id: int | None = None, limit: int = 300) -> list[AuditEntry]:
    """Entries newest first, narrowed by action, acting staff member and a UTC range [start, end)."""
    statement = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action:
        statement = statement.where(AuditEntry.action == action)
    if actor_id is not None:
        statement = statement.where(AuditEntry.actor_id == actor_id)
    if start is not None:
        statement = statement.where(AuditEntry.at >= start)
    if end is not None:
        statement = statement.where(AuditEntry.at < end)
    if target_type:
        statement = statement.where(AuditEntry.target_type == target_type)
    if target_id is not None:
        statement = statement.where(AuditEntry.target_id == target_id)
    return list(session.scalars(statement))


def actions_in_use(session: Session) -> list[str]:
    return sorted(session.scalars(select(AuditEntry.action).distinct()))
