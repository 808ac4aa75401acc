"""Model to JSON-ready dicts. Times are ISO 8601 in the branch's local time, with the offset."""
from datetime import datetime
from zoneinfo import ZoneInfo

from queue_app.accounts.models import Staff
from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.tickets.models import Ticket


def local_iso(moment: datetime | None, zone: ZoneInfo) -> str | None:
    return moment.astimezone(zone).isoformat(timespec="seconds") if moment else None


def branch_dict(branch: Branch) -> dict:
    return {
        "slug": branch.slug, "name": branch.name, "timezone": branch.timezone,
        "language": branch.language, "country": branch.country,
        "opening_hours": branch.opening_hours or {}, "closed_dates": branch.closed_dates or [],
        "allow_remote_tickets": branch.allow_remote_tickets, "postpone_places": branch.postpone_places,
        "set_off_margin_minutes": branch.set_off_margin_minutes,
        "booking_rules": branch.booking_rules or {}, "phone": branch.phone,
        "latitude": branch.latitude, "longitude": branch.longitude,
    }


def service_dict(service: Service) -> dict:
    return {
        "id": service.id, "code": service.code, "name": service.name, "names": dict(service.names or {}),
        "expected_minutes": service.expected_minutes, "walk_in_enabled": service.walk_in_enabled,
        "booking_enabled": service.booking_enabled, "checklist": service.checklist or "",
        "active": service.active,
    }


def counter_dict(counter: Counter) -> dict:
    return {"id": counter.id, "name": counter.name, "names": dict(counter.names or {}), "state": counter.state,
            "services": [s.code for s in counter.services]}


def staff_dict(staff: Staff) -> dict:
    return {"id": staff.id, "email": staff.email, "name": staff.name, "role": staff.role,
            "active": staff.active, "branches": [b.slug for b in staff.branches]}


def staff_ticket_dict(ticket: Ticket) -> dict:
    zone = ticket.branch.zone
    return {
        "id": ticket.id, "label": ticket.label, "status": ticket.status, "priority": ticket.priority,
        "service": ticket.service.code, "service_name": ticket.service.name,
        "service_names": dict(ticket.service.names or {}),
        "checklist": ticket.service.checklist or "",
        "counter_id": ticket.counter_id, "counter": ticket.counter.name if ticket.counter else None,
        "recalls": ticket.recalls,
        "issued_at": local_iso(ticket.issued_at, zone), "called_at": local_iso(ticket.called_at, zone),
        "started_at": local_iso(ticket.started_at, zone), "finished_at": local_iso(ticket.finished_at, zone),
        # Joined from home (tickets/remote.py), and when its holder said "I'm here".
        "remote": ticket.remote, "arrived_at": local_iso(ticket.arrived_at, zone),
    }
