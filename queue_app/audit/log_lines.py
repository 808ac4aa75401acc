"""The admin audit log page (/manage/audit): one readable line per entry, branch-local times, filters.

Entries hold ids, field names and states (audit/operations.py); this module turns them into sentences
such as "Max Manager changed service A (Deposits): expected minutes 10 → 12", naming staff,
services, counters and branches from their rows, and customers only by number (their names are
personal data and may have been erased). Filters are GET parameters; a value that makes no sense
is ignored with a note on the page, never an error.
"""
from collections import Counter as Tally
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app.accounts.models import Staff
from queue_app.audit import operations as audit
from queue_app.audit.models import AuditEntry
from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.web.form_fields import COUNTER_STATE_LABELS, ROLE_LABELS

LIMIT = 300
NAME_CHARS = 60  # a name or value longer than this is cut in the one-line summary (the details keep it whole)

ACTION_LABELS = {
    "customer.viewed": _l("Customer record viewed"), "customer.exported": _l("Customer data exported"),
    "customer.erased": _l("Customer data erased"), "customer.merged": _l("Customers merged"),
    "customer.attached": _l("Customer attached to a ticket"), "customer.unblocked": _l("Booking block lifted"),
    "churn.contacted": _l("Churn alert contacted"),
    "staff.created": _l("Staff account created"), "staff.changed": _l("Staff account changed"),
    "counter.created": _l("Counter created"), "counter.changed": _l("Counter changed"),
    "counter.services_changed": _l("Counter services changed"),
    "service.created": _l("Service created"), "service.changed": _l("Service changed"),
    "branch.created": _l("Branch created"), "branch.changed": _l("Branch changed"),
}

FIELD_LABELS = {
    "role": _l("role"), "active": _l("active"), "email": _l("e-mail"), "name": _l("name"),
    "password_hash": _l("password"), "branches": _l("branches"), "state": _l("state"), "staff_id": _l("staff member"),
    "expected_minutes": _l("expected minutes"), "walk_in_enabled": _l("walk-ins"), "booking_enabled": _l("bookings"),
    "checklist": _l("checklist"), "price_cents": _l("price (cents)"), "timezone": _l("time zone"),
    "opening_hours": _l("opening hours"), "closed_dates": _l("closed dates"), "country": _l("country"),
    "language": _l("language"), "allow_remote_tickets": _l("tickets from phones"),
    "postpone_places": _l("places moved back on postpone"), "booking_rules": _l("booking rules"),
    "customer_rules": _l("customer rules"), "almost_turn_minutes": _l("almost-your-turn minutes"),
    "almost_turn_position": _l("almost-your-turn position"),
    "set_off_margin_minutes": _l("set-off margin (minutes)"),
}

TARGET_LABELS = {"customer": _l("customer"), "staff": _l("staff account"), "counter": _l("counter"),
                 "service": _l("service"), "branch": _l("branch")}


@dataclass
class Filters:
    action: str = ""
    actor_id: int | None = None
    start_day: date | None = None
    end_day: date | None = None
    target_type: str = ""
    target_id: int | None = None


@dataclass
class Row:
    entry: AuditEntry
    when: str
    zone_name: str
    who: str
    summary: str


def page_zone(session: Session) -> str:
    """The zone the page's dates are read in: the one most branches use (UTC before there is a branch)."""
    zones = Tally(session.scalars(select(Branch.timezone)))
    return zones.most_common(1)[0][0] if zones else "UTC"


def parse_filters(args, known_actions: list[str], staff_ids: set[int]) -> tuple[Filters, list[str]]:
    """Read the GET parameters; each value that cannot be used is dropped with a note saying so."""
    filters, notes = Filters(), []
    action = (args.get("action") or "").strip()
    if action and action not in known_actions and action not in ACTION_LABELS:
        notes.append(_("Unknown action; showing all actions."))
    else:
        filters.action = action
    staff = (args.get("staff") or "").strip()
    if staff:
        if staff.isdigit() and int(staff) in staff_ids:
            filters.actor_id = int(staff)
        else:
            notes.append(_("Unknown staff member; showing everyone."))
    for name, attribute in (("from", "start_day"), ("to", "end_day")):
        text = (args.get(name) or "").strip()
        if not text:
            continue
        try:
            setattr(filters, attribute, date.fromisoformat(text))
        except ValueError:
            notes.append(_("“%(value)s” is not a date (YYYY-MM-DD); that limit is ignored.", value=text[:40]))
    if filters.start_day and filters.end_day and filters.start_day > filters.end_day:
        notes.append(_("The start date is after the end date; the dates were swapped."))
        filters.start_day, filters.end_day = filters.end_day, filters.start_day
    filters.target_type = (args.get("target_type") or "").strip()
    filters.target_id = args.get("target_id", type=int)
    return filters, notes


def utc_range(filters: Filters, zone: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """Whole local days, from the start of the first to the end of the last."""
    start = datetime.combine(filters.start_day, time(), zone) if filters.start_day else None
    end = datetime.combine(filters.end_day + timedelta(days=1), time(), zone) if filters.end_day else None
    return start, end


def _short(text: str) -> str:
    return text if len(text) <= NAME_CHARS else text[:NAME_CHARS - 1] + "…"


def _value(field: str, value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if field == "role":
        return str(ROLE_LABELS.get(value, value))
    if field == "state":
        return str(COUNTER_STATE_LABELS.get(value, value))
    if isinstance(value, list) and all(isinstance(v, (int, str)) for v in value):
        return _short(", ".join(str(v) for v in value)) or "—"
    if isinstance(value, (dict, list)):
        return _("(details)")
    return _short(str(value))


def _changes(fields: dict) -> str:
    parts = []
    for field, change in fields.items():
        label = str(FIELD_LABELS.get(field, field.replace("_", " ")))
        if isinstance(change, dict) and "to" in change:
            old, new = _value(field, change.get("from")), _value(field, change.get("to"))
            if old == new == _("(details)"):
                parts.append(_("%(field)s changed", field=label))
            else:
                parts.append(f"{label} {old} → {new}")
        else:
            parts.append(_("%(field)s changed", field=label))
    return "; ".join(parts)


class _Names:
    """Names of the records the entries point at, loaded once per page."""

    def __init__(self, session: Session, entries: list[AuditEntry]):
        def ids(kind):
            return {e.target_id for e in entries if e.target_type == kind and e.target_id is not None}

        self.staff = {s.id: s.name or s.email for s in session.scalars(select(Staff)).unique()}
        self.services = {s.id: f"{s.code} ({s.name})" for s in
                         session.scalars(select(Service).where(Service.id.in_(ids("service"))))}
        self.counters = {c.id: c.name for c in session.scalars(select(Counter).where(Counter.id.in_(ids("counter"))))}
        self.branches = {b.id: b for b in session.scalars(select(Branch)).unique()}

    def target(self, entry: AuditEntry) -> str:
        kind, number = entry.target_type, entry.target_id
        found = {"staff": self.staff, "service": self.services, "counter": self.counters,
                 "branch": {i: b.name for i, b in self.branches.items()}}.get(kind, {}).get(number)
        return _short(found or f"#{number}") if number is not None else ""


def summary(entry: AuditEntry, who: str, names: _Names) -> str:
    details = entry.details or {}
    target = names.target(entry)
    kind = str(TARGET_LABELS.get(entry.target_type, entry.target_type))
    action = entry.action
    if action == "customer.viewed":
        return _("%(who)s viewed customer %(target)s", who=who, target=target)
    if action == "customer.exported":
        return _("%(who)s exported the data of customer %(target)s", who=who, target=target)
    if action == "customer.erased":
        return _("%(who)s erased customer %(target)s", who=who, target=target)
    if action == "customer.merged":
        return _("%(who)s merged customer #%(other)s into customer %(target)s", who=who,
                 other=details.get("merged", "?"), target=target)
    if action == "customer.attached":
        return _("%(who)s attached customer %(target)s to ticket #%(ticket)s", who=who, target=target,
                 ticket=details.get("ticket", "?"))
    if action == "customer.unblocked":
        return _("%(who)s lifted the booking block of customer %(target)s", who=who, target=target)
    if action == "churn.contacted":
        return _("%(who)s contacted customer %(target)s (churn list)", who=who, target=target)
    if action == "counter.services_changed":
        return _("%(who)s changed the services of counter %(target)s", who=who, target=target)
    if action.endswith(".created"):
        return _("%(who)s created %(kind)s %(target)s", who=who, kind=kind, target=target)
    if action.endswith(".changed") and isinstance(details.get("fields"), dict):
        return _("%(who)s changed %(kind)s %(target)s: %(changes)s", who=who, kind=kind, target=target,
                 changes=_changes(details["fields"]))
    return _("%(who)s: %(action)s, %(kind)s %(target)s", who=who, action=action, kind=kind, target=target)


def page_data(session: Session, args) -> dict:
    """Everything templates/audit/log.html shows."""
    zone_name = page_zone(session)
    staff = list(session.scalars(select(Staff).order_by(Staff.name, Staff.email)).unique())
    known_actions = audit.actions_in_use(session)
    filters, notes = parse_filters(args, known_actions, {s.id for s in staff})
    start, end = utc_range(filters, ZoneInfo(zone_name))
    entries = audit.entries(session, action=filters.action or None, actor_id=filters.actor_id, start=start,
                            end=end, target_type=filters.target_type or None, target_id=filters.target_id,
                            limit=LIMIT)
    names = _Names(session, entries)
    rows = []
    for entry in entries:
        branch = names.branches.get(entry.branch_id)
        row_zone = branch.timezone if branch is not None else zone_name
        who = _short(names.staff.get(entry.actor_id, _("Someone"))) if entry.actor_id else _("System")
        rows.append(Row(entry=entry, when=entry.at.astimezone(ZoneInfo(row_zone)).strftime("%Y-%m-%d %H:%M:%S"),
                        zone_name=row_zone, who=who, summary=summary(entry, who, names)))
    action_choices = sorted(set(known_actions) | set(ACTION_LABELS), key=lambda a: str(ACTION_LABELS.get(a, a)))
    return {"rows": rows, "filters": filters, "notes": notes, "zone_name": zone_name, "staff": staff,
            "actions": [(a, ACTION_LABELS.get(a, a)) for a in action_choices], "limit": LIMIT,
            "filtered": bool(filters.action or filters.actor_id or filters.start_day or filters.end_day)}
