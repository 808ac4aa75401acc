"""Messages to a ticket's holder that go out once: "Almost your turn" (turn_alerts.py), "Time to
set off" and "Still coming?" (remote tickets). Both halves are shared: the claim that makes a
timed job send once even when two schedulers run, and the one outbox row per message."""
from datetime import date, datetime

from sqlalchemy import update
from sqlalchemy.orm import InstrumentedAttribute, Session

from queue_app.notifications import texts
from queue_app.notifications.models import Notification
from queue_app.tickets.models import Ticket


def claim_once(session: Session, ticket_id: int, stamp: InstrumentedAttribute, today: date, now: datetime,
               *conditions) -> Ticket | None:
    """Stamp `stamp` (a Ticket column) with `now` on a waiting ticket of `today` whose stamp is
    still empty and which meets `conditions`, in one conditional update inside the caller's
    transaction: of two schedulers, one claims it. The ticket, or None when it was called,
    changed or claimed meanwhile."""
    claimed = session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.status == "waiting", Ticket.local_date == today, stamp.is_(None),
               *conditions)
        .values({stamp.key: now})
        .execution_options(synchronize_session=False)
    ).rowcount
    return session.get(Ticket, ticket_id, populate_existing=True) if claimed else None


def to_holder(session: Session, ticket: Ticket, template: str, key: str, subject: str, body: str, values: dict,
              now: datetime) -> None:
    """One message to the contacts given with this ticket (or its booking; never the linked
    record's, identity.py) through the outbox, inside the caller's transaction: SMS first (the
    phone is what people look at), else mail; none without contacts. `key` makes it once per
    purpose; the texts are English msgids, translated into the ticket's language here."""
    language = ticket.language if ticket.language in texts.LANGUAGES else "en"
    for channel, recipient in (("sms", ticket.phone), ("email", ticket.email)):
        if not recipient:
            continue
        session.add(Notification(
            channel=channel, recipient=recipient, template=template, language=language,
            payload={"subject": texts.gettext(language, subject, **values),
                     "body": texts.gettext(language, body, **values), "ticket_id": ticket.id},
            dedupe_key=key, status="pending", attempts=0, next_attempt_at=now, last_error="", created_at=now,
        ))
        return
