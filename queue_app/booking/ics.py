"""iCalendar (RFC 5545) text for one appointment, written by hand: one event, a few properties.

Calendars match updates by UID and keep the highest SEQUENCE, so the UID is stable per
appointment and SEQUENCE is the appointment's own counter (it grows on every reschedule and on
the cancel). Times are UTC (`...Z`), which every client understands without a VTIMEZONE block.
"""
from datetime import datetime, timezone

from queue_app.booking.models import Appointment

PRODID = "-//queue-app//booking//EN"
FOLD_AT = 75  # octets per line, CRLF excluded (RFC 5545 3.1)


def escape_text(value: str) -> str:
    """TEXT value escaping: backslash first, then ; , and newlines."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n"))


def fold(line: str) -> str:
    """Fold a content line at 75 octets without splitting a UTF-8 sequence (Chinese names)."""
    out, current, size = [], "", 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > FOLD_AT:
            out.append(current)
            current, size = " ", 1  # a continuation line starts with one space, which counts
        current += char
        size += width
    out.append(current)
    return "\r\n".join(out)


def utc_stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def uid_for(appointment_id: int, host: str) -> str:
    return f"appointment-{appointment_id}@{host}"


def appointment_calendar(
    appointment: Appointment, *, host: str, now: datetime, cancelled: bool = False,
    summary: str | None = None, description: str = "", attendee: str | None = None,
) -> str:
    """The .ics text: METHOD:REQUEST for a new or moved booking, METHOD:CANCEL for a cancelled one."""
    branch, service = appointment.branch, appointment.service
    summary = summary or f"{service.name} at {branch.name}"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        f"METHOD:{'CANCEL' if cancelled else 'REQUEST'}",
        "BEGIN:VEVENT",
        f"UID:{uid_for(appointment.id, host)}",
        f"SEQUENCE:{appointment.sequence}",
        f"DTSTAMP:{utc_stamp(now)}",
        f"DTSTART:{utc_stamp(appointment.start_at)}",
        f"DTEND:{utc_stamp(appointment.end_at)}",
        f"SUMMARY:{escape_text(summary)}",
        f"LOCATION:{escape_text(branch.name)}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
    ]
    if description:
        lines.append(f"DESCRIPTION:{escape_text(description)}")
    if attendee:
        # A quoted parameter value cannot hold a double quote or a line break (no escapes there).
        name = " ".join(appointment.name.replace('"', "'").split())
        lines.append(f'ATTENDEE;CN="{name}";ROLE=REQ-PARTICIPANT:mailto:{attendee}')
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "".join(fold(line) + "\r\n" for line in lines)
