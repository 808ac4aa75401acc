"""Booking mail and SMS through an outbox table: enqueue inside the booking's transaction, send later.

Enqueueing (`booking_confirmed`, `booking_changed`, `booking_cancelled`) runs inside the caller's
write transaction, so a rolled-back booking leaves no message behind and a committed one always
has its messages. Nothing is sent there (DESIGN: no mail inside a transaction).

`send_due` is the only sender. Each due row is claimed with one conditional UPDATE
(`pending -> sending` while still pending), so however many senders run at once, one wins each
row. Then it re-checks the booking (a reminder for a booking that was cancelled, moved, checked in
or missed is dropped), renders the text from the booking as it is now, sends it, and marks it
`sent`. A driver error puts the row back to `pending` with exponential backoff. While a row is
`sending`, `next_attempt_at` is the end of the sender's lease: a sender that died mid-send leaves
the row to be taken again after the lease (at least once, never silently lost).

SMS rows: one to a number on the opt-out list (a STOP reply or staff, notifications/sms.py) is marked
`skipped` instead of sent; a gateway refusing a number as opted out at the carrier (Twilio 21610,
`RecipientOptedOut`) fails that row and puts the number on the list in the same transaction; the
others get their segment count stored, and the gateway's message id (`Accepted`) is kept on the
row for its delivery reports (sms_api.py).

Texts are marked here in English and translated from the shared catalogs (queue_app/translations)
into the booking's language when the message is written (notifications/texts.py: the sender runs in a
scheduler thread, with no request for Flask-Babel to take a language from).
"""
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from queue_app.booking import ics
from queue_app.booking.models import Appointment
from queue_app.booking.rules import change_window, rules_for
from queue_app.catalogue.operations import localized_name
from queue_app.core.transaction import write_transaction
from queue_app.notifications import outbox, sms, texts
from queue_app.notifications.models import Notification
from queue_app.notifications.outcomes import (
    Accepted,
    PermanentFailure,
    RecipientOptedOut,
)
from queue_app.notifications.texts import N_
from queue_app.tickets.models import Ticket

log = logging.getLogger(__name__)

CONFIRMED, CHANGED, CANCELLED, REMINDER = "booking_confirmed", "booking_changed", "booking_cancelled", "reminder"
ALMOST_TURN = "almost_turn"  # written by tickets/turn_alerts.py; the text is in its payload
# Messages about a waiting ticket (text in the payload), dropped once it was called or left: the
# above, and a remote ticket's "time to set off" and "held" (tickets/remote_rules.py).
WAITING_TICKET_MESSAGES = (ALMOST_TURN, "remote_set_off", "remote_held")
# Longest lead first. A reminder is worth sending from start - lead until the next shorter
# reminder is due (or the visit starts): a 24 h reminder delayed past start - 2 h is dropped.
REMINDER_LEADS = (timedelta(hours=24), timedelta(hours=2))
LEASE = timedelta(minutes=10)  # a row `sending` for longer than this: its sender died
MAX_ATTEMPTS = 10
MAX_BACKOFF = timedelta(hours=1)
LANGUAGES = ("en", "zh_Hant", "zh_Hans")


# --- texts ---------------------------------------------------------------------------------------

WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
             "October", "November", "December")
WEEKDAYS_ZH = "一二三四五六日"

# What the holder may still change, worded once for the mail and the booking's page
# (booking/pages.py shows the same sentences): booking_rules.change_window decides which.
CHANGE_TEXTS = {
    "open": N_("You can reschedule until %(until)s, and cancel until the visit starts."),
    "closed": N_("You can cancel until the visit starts; changes are no longer possible online."),
    "started": N_("Your visit time has begun; it can no longer be changed or cancelled online."),
    "call": N_("To change it, call the branch at %(phone)s."),
}


def _state(window) -> str:
    return "open" if window.can_reschedule else "closed" if window.can_cancel else "started"


def change_state(appointment: Appointment, now: datetime) -> str:
    """The key of CHANGE_TEXTS for a booked visit: open, closed (cancel only) or started."""
    return _state(change_window(appointment.start_at, rules_for(appointment.branch), now))


# Messages in English, the catalogs' source language; the customer's language at send time
# (notifications/texts.py). Translations live with every other text in queue_app/translations.
MESSAGES = {
    "subject": {
        CONFIRMED: N_("Booking confirmed: %(service)s at %(branch)s, %(short)s"),
        CHANGED: N_("Booking changed: %(service)s at %(branch)s, now %(short)s"),
        CANCELLED: N_("Booking cancelled: %(service)s at %(branch)s, %(short)s"),
        REMINDER: N_("Reminder: %(service)s at %(branch)s, %(short)s"),
    },
    "body": {
        CONFIRMED: N_("Hello %(name)s,\n\nyour booking is confirmed.\n\n%(details)s\n\n"
                      "When you arrive, enter your check-in code at the kiosk.\n"
                      "%(manage)sThe attached calendar file adds the visit to your calendar.\n"),
        CHANGED: N_("Hello %(name)s,\n\nyour booking has been changed. The new time:\n\n%(details)s\n\n"
                    "The attached calendar file updates the visit in your calendar. %(changes)s\n"),
        CANCELLED: N_("Hello %(name)s,\n\nyour booking has been cancelled:\n\n%(details)s\n\n"
                      "The attached calendar file removes the visit from your calendar. "
                      "You are welcome to book again.\n"),
        REMINDER: N_("Hello %(name)s,\n\na reminder of your booking:\n\n%(details)s\n\n"
                     "When you arrive, enter your check-in code at the kiosk. If you cannot come, "
                     "please cancel with the link in your booking confirmation, so someone else can "
                     "have the time.\n"),
    },
    "sms": {
        CONFIRMED: N_("%(branch)s: booking confirmed, %(service)s, %(short)s. Check-in code %(code)s.%(manage_sms)s"),
        CHANGED: N_("%(branch)s: your booking for %(service)s is now %(short)s. Check-in code %(code)s."),
        CANCELLED: N_("%(branch)s: your booking for %(service)s on %(short)s is cancelled."),
        REMINDER: N_("%(branch)s: reminder, %(service)s %(short)s. Check-in code %(code)s."),
    },
    "details": N_("  Service:        %(service)s\n  Branch:         %(branch)s\n  When:           %(when)s\n"
                  "  Check-in code:  %(code)s"),
    "manage": N_("See, change or cancel your booking: %(url)s\n"),
    "manage_closed": N_("See or cancel your booking: %(url)s\n"),
    "change_again": N_("To change your booking again, use the link in your booking confirmation."),
    "manage_sms": N_(" Manage: %(url)s"),
    "summary": N_("%(service)s at %(branch)s"),
    "ics_description": N_("Check-in code: %(code)s"),
}


def language_of(appointment: Appointment) -> str:
    return appointment.language if appointment.language in LANGUAGES else "en"


def _offset(local: datetime) -> str:
    minutes = int(local.utcoffset().total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_when(moment: datetime, zone, language: str) -> tuple[str, str]:
    """(long, short) branch-local time with the zone's name, written by hand so no locale is needed."""
    local = moment.astimezone(zone)
    clock = local.strftime("%H:%M")
    name = zone.key
    if language == "en":
        long = (f"{WEEKDAYS_EN[local.weekday()]} {local.day} {MONTHS_EN[local.month - 1]} {local.year}, "
                f"{clock} ({name}, {_offset(local)})")
        short = (f"{WEEKDAYS_EN[local.weekday()][:3]} {local.day} {MONTHS_EN[local.month - 1][:3]} "
                 f"{local.year} {clock} ({name})")
        return long, short
    weekday = WEEKDAYS_ZH[local.weekday()]
    long = f"{local.year}年{local.month}月{local.day}日（星期{weekday}）{clock}（{name}，{_offset(local)}）"
    short = f"{local.year}年{local.month}月{local.day}日（{weekday}）{clock}（{name}）"
    return long, short


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    ics: str | None
    ics_method: str | None


def render(notification: Notification, appointment: Appointment, now: datetime) -> Rendered:
    """The message as the booking is now: times, service and code read at send time."""
    language = language_of(appointment)
    long, short = format_when(appointment.start_at, appointment.branch.zone, language)

    def text(message: str, **extra) -> str:
        return texts.gettext(language, message, **{**values, **extra})

    values = {
        "name": appointment.name, "service": localized_name(appointment.service, language), "branch": appointment.branch.name,
        "when": long, "short": short, "code": appointment.check_in_code,
    }
    url = (notification.payload or {}).get("manage_url") or ""
    window = change_window(appointment.start_at, rules_for(appointment.branch), now)
    state = _state(window)
    until = format_when(window.reschedule_until, appointment.branch.zone, language)[1]
    changes = text(CHANGE_TEXTS[state], until=until)
    if state != "open" and appointment.branch.phone:
        changes += " " + text(CHANGE_TEXTS["call"], phone=appointment.branch.phone)
    # The same sentences as the booking's page, as things stand when the message is written.
    values["manage"] = (text(MESSAGES["manage" if state == "open" else "manage_closed"], url=url)
                        + changes + "\n") if url else ""
    values["changes"] = text(MESSAGES["change_again"]) if state == "open" else changes
    values["manage_sms"] = text(MESSAGES["manage_sms"], url=url) if url else ""
    values["details"] = text(MESSAGES["details"])
    template = notification.template
    subject = text(MESSAGES["subject"][template])
    if notification.channel == "sms":
        return Rendered(subject, text(MESSAGES["sms"][template]), None, None)
    body = text(MESSAGES["body"][template])
    calendar, method = None, None
    if template in (CONFIRMED, CHANGED, CANCELLED):
        cancelled = template == CANCELLED
        method = "CANCEL" if cancelled else "REQUEST"
        calendar = ics.appointment_calendar(
            appointment, host=(notification.payload or {}).get("host") or "localhost", now=now,
            cancelled=cancelled, summary=text(MESSAGES["summary"]),
            description=text(MESSAGES["ics_description"]), attendee=notification.recipient,
        )
    return Rendered(subject, body, calendar, method)


# --- enqueueing (inside the caller's transaction) -------------------------------------------------

def _recipient(appointment: Appointment) -> tuple[str, str] | None:
    """E-mail when the booking has one, else SMS to its phone; None when there is neither.

    The booking's own contacts, as typed on it: never the linked record's (customers/identity.py)."""
    if appointment.email:
        return "email", appointment.email
    if appointment.phone:
        return "sms", appointment.phone
    return None


def _host(base_url: str) -> str:
    """The host in calendar UIDs. Every caller passes the configured base URL, so it stays stable."""
    return (urlsplit(base_url).hostname if base_url else None) or "localhost"


def _insert(session: Session, appointment: Appointment, template: str, key: str, due: datetime,
            now: datetime, payload: dict) -> None:
    to = _recipient(appointment)
    if to is None:
        log.warning("appointment %s has no e-mail or phone: no %s sent", appointment.id, template)
        return
    channel, recipient = to
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[session.get_bind().dialect.name]
    # One message per purpose: the same key again (a retried operation) inserts nothing.
    session.execute(insert(Notification).values(
        channel=channel, recipient=recipient, template=template, language=language_of(appointment),
        payload={"sequence": appointment.sequence, **payload}, dedupe_key=key, appointment_id=appointment.id,
        status="pending", attempts=0, next_attempt_at=due, last_error="", created_at=now,
    ).on_conflict_do_nothing(index_elements=["dedupe_key"]))


def _supersede(session: Session, appointment: Appointment, templates: tuple[str, ...], reason: str) -> None:
    """Pending messages of these kinds for the booking will never go out."""
    session.execute(
        update(Notification)
        .where(Notification.appointment_id == appointment.id, Notification.status == "pending",
               Notification.template.in_(templates))
        .values(status="cancelled", last_error=reason)
        .execution_options(synchronize_session=False)
    )


def _reminders(session: Session, appointment: Appointment, base: dict, now: datetime) -> None:
    for lead in REMINDER_LEADS:
        due = appointment.start_at - lead
        if due <= now:
            continue  # booked inside the lead time: that reminder's moment has passed
        hours = int(lead.total_seconds() // 3600)
        _insert(session, appointment, REMINDER, f"reminder-{hours}h:{appointment.id}:{appointment.sequence}",
                due, now, {**base, "lead_hours": hours})


def booking_confirmed(session: Session, appointment: Appointment, manage_token: str, *,
                      base_url: str = "", now: datetime, proof_token: str | None = None) -> None:
    """Confirmation with the manage link, and the reminders. Call inside `book`'s transaction.

    The raw manage token exists only here (the database keeps its hash); the confirmation's
    payload is the one place it is kept, because it is the link the mail carries.
    """
    base = {"host": _host(base_url)}
    payload = dict(base)
    if base_url:
        # Opening the mailed link also proves the contact it went to (identity.prove).
        proof = f"proof={proof_token}&" if proof_token else ""
        # The booking's language: the page opens in it, whatever the phone's browser prefers.
        payload["manage_url"] = f"{base_url.rstrip('/')}/a/{manage_token}?{proof}lang={language_of(appointment)}"
    _insert(session, appointment, CONFIRMED, f"confirmation:{appointment.id}:{appointment.sequence}",
            now, now, payload)
    _reminders(session, appointment, base, now)


def booking_changed(session: Session, appointment: Appointment, *, base_url: str = "", now: datetime) -> None:
    """A change notice and fresh reminders; earlier pending reminders and notices are superseded.

    Call after `appointment.sequence` was increased, inside `reschedule`'s transaction.
    """
    _supersede(session, appointment, (REMINDER, CHANGED), f"superseded by change {appointment.sequence}")
    base = {"host": _host(base_url)}
    _insert(session, appointment, CHANGED, f"change:{appointment.id}:{appointment.sequence}", now, now, base)
    _reminders(session, appointment, base, now)


def booking_cancelled(session: Session, appointment: Appointment, *, base_url: str = "", now: datetime) -> None:
    """A cancellation notice; every other pending message of the booking is dropped."""
    _supersede(session, appointment, (CONFIRMED, CHANGED, REMINDER), "booking cancelled")
    _insert(session, appointment, CANCELLED, f"cancel:{appointment.id}:{appointment.sequence}", now, now,
            {"host": _host(base_url)})


# --- sending ---------------------------------------------------------------------------------------

@dataclass
class SendReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0  # marked cancelled at send time: the booking moved on
    skipped: int = 0  # SMS to a number that opted out (notifications/sms.py)

    @property
    def handled(self) -> int:
        return self.sent + self.retried + self.failed + self.dropped + self.skipped


def backoff(attempts: int) -> timedelta:
    """1, 2, 4, 8 ... minutes after the 1st, 2nd, 3rd ... failure, at most an hour."""
    return outbox.backoff(attempts, timedelta(minutes=1), MAX_BACKOFF)


def _stale_reason(notification: Notification, appointment: Appointment | None, now: datetime) -> str | None:
    """Why this message must not go out now, or None. The booking may have changed since enqueue."""
    if appointment is None:
        return None
    template = notification.template
    sequence = (notification.payload or {}).get("sequence")
    if template == CONFIRMED:
        return None if appointment.status in ("booked", "checked_in") else f"booking is {appointment.status}"
    if template == CANCELLED:
        return None
    if appointment.status != "booked":
        return f"booking is {appointment.status}"
    if sequence != appointment.sequence:
        return f"booking changed (sequence {sequence} -> {appointment.sequence})"
    if template == REMINDER:
        lead = timedelta(hours=(notification.payload or {}).get("lead_hours", 0))
        shorter = [other for other in REMINDER_LEADS if other < lead]
        until = appointment.start_at - (max(shorter) if shorter else timedelta(0))
        if now >= until:
            return "too late for this reminder"
    return None


def _too_late_for_ticket(session: Session, notification: Notification) -> str | None:
    """An "almost your turn" (or "set off", "held") message whose ticket was called (or left)
    before it went out: sent now it would send the customer back to the waiting area."""
    ticket_id = (notification.payload or {}).get("ticket_id")
    if notification.template not in WAITING_TICKET_MESSAGES or ticket_id is None:
        return None
    ticket = session.get(Ticket, ticket_id)
    return f"ticket is {ticket.status}" if ticket is not None and ticket.status != "waiting" else None


def _finish(session: Session, notification_id: int, values: dict) -> None:
    with write_transaction(session):
        outbox.settle(session, Notification, notification_id, values)


def send_due(session: Session, driver, now: datetime, batch: int = 20) -> SendReport:
    """Send the messages due at `now` (at most `batch`). Safe to run from several threads or processes."""
    report = SendReport()
    outbox.recover_stuck(session, Notification, now, MAX_ATTEMPTS, "sender stopped while sending (lease expired)")
    for notification_id in outbox.due_ids(session, Notification, now, batch):
        with write_transaction(session):
            if not outbox.claim(session, Notification, notification_id, now, LEASE):
                continue  # another sender has it, or it changed since the read
            notification = session.get(Notification, notification_id, populate_existing=True)
            appointment = session.get(Appointment, notification.appointment_id) if notification.appointment_id else None
            reason = _stale_reason(notification, appointment, now) or _too_late_for_ticket(session, notification)
            opted_out = (not reason and notification.channel == "sms"
                         and sms.is_opted_out(session, notification.recipient))
            if reason:
                notification.status, notification.last_error = "cancelled", reason
            elif opted_out:
                notification.status, notification.last_error = "skipped", "the number opted out of SMS (STOP)"
            elif appointment is not None:
                rendered = render(notification, appointment, now)
                # A new dict: the JSON column only notices assignment, not in-place changes.
                notification.payload = {**notification.payload, "subject": rendered.subject,
                                        "body": rendered.body, "ics": rendered.ics, "ics_method": rendered.ics_method}
            if notification.channel == "sms" and not reason and not opted_out:
                # Gateways bill per part: kept on the row; the driver refuses texts over the limit.
                counted = sms.segments((notification.payload or {}).get("body", ""))
                notification.segments = counted.parts
                log.info("SMS %s to %s: %s part(s), %s, %s units", notification_id, notification.recipient,
                         counted.parts, counted.encoding, counted.units)
            # Written now, then detached with its values loaded: the driver reads it after the
            # commit without opening another read transaction for the length of a mail delivery.
            session.flush()
            session.expunge(notification)
        if reason:
            report.dropped += 1
            continue
        if opted_out:
            report.skipped += 1
            continue
        # Sent outside any transaction: a slow mail server must not hold the database's write lock.
        try:
            accepted = driver.send(notification)
        except Exception as error:  # any driver failure is retried; only PermanentFailure is final
            attempts = notification.attempts + 1
            message = f"{type(error).__name__}: {error}"[:1000]
            final = isinstance(error, PermanentFailure) or attempts >= MAX_ATTEMPTS
            log.warning("notification %s (%s to %s) failed, attempt %s: %s", notification_id,
                        notification.template, notification.recipient, attempts, message)
            with write_transaction(session):
                outbox.settle(session, Notification, notification_id, {
                    "status": "failed" if final else "pending", "attempts": attempts, "last_error": message,
                    "next_attempt_at": now if final else now + backoff(attempts),
                })
                if isinstance(error, RecipientOptedOut) and notification.channel == "sms":
                    # Said STOP at the carrier: on our list with the failed row (one transaction), so
                    # the number's other messages are skipped rather than each refused.
                    sms.refused_as_opted_out(session, notification.recipient, detail=message, now=now)
            if final:
                report.failed += 1
            else:
                report.retried += 1
            continue
        values = {"status": "sent", "sent_at": now, "next_attempt_at": now, "attempts": notification.attempts + 1}
        if isinstance(accepted, Accepted):  # an SMS gateway's id: its status callbacks find the row by it
            values.update(provider=accepted.provider, provider_message_id=accepted.message_id,
                          delivery_status=accepted.status, delivery_updated_at=now)
        _finish(session, notification_id, values)
        report.sent += 1
    return report
