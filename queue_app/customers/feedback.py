"""Feedback after a visit: the invitation, the answer (stars, 0-10, a comment) and the branch's summary."""
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app.accounts.models import Staff
from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.catalogue.operations import localized_name
from queue_app.core.errors import Conflict, Invalid, NotFound
from queue_app.core.models import utcnow
from queue_app.core.security import new_token, token_hash
from queue_app.core.transaction import write_transaction
from queue_app.customers.models import (
    Customer,
    Feedback,
)
from queue_app.customers.standing import _insert_ignore
from queue_app.notifications import texts
from queue_app.notifications.models import Notification
from queue_app.notifications.texts import N_
from queue_app.tickets.models import Ticket

FEEDBACK_DAYS = 14  # a visit can be rated this long after it ended


def _check_answer(rating, nps, comment) -> str:
    problems = {}
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        problems["rating"] = ["A whole number from 1 to 5."]
    if nps is not None and (isinstance(nps, bool) or not isinstance(nps, int) or not 0 <= nps <= 10):
        problems["nps"] = ["A whole number from 0 to 10."]
    comment = (comment or "").strip()
    if len(comment) > 2000:
        problems["comment"] = ["At most 2000 characters."]
    if problems:
        raise Invalid("invalid_field", "The answer is not valid: " + ", ".join(problems) + ".", problems)
    return comment


def feedback_state(session: Session, ticket: Ticket, now: datetime | None = None) -> str:
    """'not_finished', 'open', 'answered' or 'closed' (too long after the visit)."""
    if ticket.status != "done" or ticket.finished_at is None:
        return "not_finished"
    answered = session.scalar(select(Feedback.answered_at).where(Feedback.ticket_id == ticket.id))
    if answered is not None:
        return "answered"
    if (now or utcnow()) - ticket.finished_at > timedelta(days=FEEDBACK_DAYS):
        return "closed"
    return "open"


def submit_feedback(session: Session, ticket_id: int, rating: int, nps: int | None = None, comment: str = "", *,
                    channel: str = "tracking", now: datetime | None = None) -> Feedback:
    """The one answer for a finished visit; a second is refused (409 feedback_given)."""
    comment = _check_answer(rating, nps, comment)
    now = now or utcnow()
    with write_transaction(session):
        ticket = session.scalar(select(Ticket).where(Ticket.id == ticket_id).with_for_update(of=Ticket))
        if ticket is None:
            raise NotFound("ticket_not_found", f"No ticket {ticket_id}.")
        state = feedback_state(session, ticket, now)
        if state == "not_finished":
            raise Conflict("not_finished", "Feedback opens when the visit is over.")
        if state == "answered":
            raise Conflict("feedback_given", "This visit was rated already; thank you.")
        if state == "closed":
            raise Conflict("feedback_closed", f"Visits can be rated for {FEEDBACK_DAYS} days.")
        answer = session.scalar(select(Feedback).where(Feedback.ticket_id == ticket.id))
        if answer is None:
            answer = Feedback(ticket_id=ticket.id, branch_id=ticket.branch_id, service_id=ticket.service_id,
                              counter_id=ticket.counter_id, staff_id=ticket.staff_id, customer_id=ticket.customer_id)
            session.add(answer)
        answer.rating, answer.nps, answer.comment = rating, nps, comment
        answer.channel, answer.answered_at = channel, now
        session.flush()
    return answer


def ticket_for_feedback_token(session: Session, token: str) -> Ticket:
    answer = session.scalar(select(Feedback).where(Feedback.token_hash == token_hash(token or "")))
    if answer is None:
        raise NotFound("feedback_not_found", "No visit for this link.")
    return session.get(Ticket, answer.ticket_id)


# The feedback mail in English, translated into the customer's language from the shared catalogs
# when it is written (notifications/texts.py).
FEEDBACK_TEXTS = (
    N_("How was your visit to %(branch)s?"),
    N_("Hello %(name)s,\n\nthank you for visiting %(branch)s (%(service)s, ticket %(label)s).\n\n"
       "Would you tell us how it went? It takes half a minute:\n%(url)s\n\n"
       "The link works for %(days)s days.\n"),
)


def invite_feedback(session: Session, base_url: str, *, now: datetime | None = None,
                    since: timedelta = timedelta(days=1)) -> int:
    """Mail a feedback link (through the outbox) after each finished visit that left an e-mail
    address (the ticket's own, identity.py). Idempotent: one Feedback row per ticket, one message
    per dedupe key."""
    now = now or utcnow()
    with write_transaction(session):
        rows = session.execute(
            select(Ticket, Customer).join(Customer, Customer.id == Ticket.customer_id)
            .outerjoin(Feedback, Feedback.ticket_id == Ticket.id)
            .where(Ticket.status == "done", Ticket.finished_at >= now - since, Ticket.finished_at <= now,
                   Ticket.email.is_not(None), Feedback.id.is_(None))
        ).all()
        for ticket, customer in rows:
            token = new_token()
            session.add(Feedback(ticket_id=ticket.id, branch_id=ticket.branch_id, service_id=ticket.service_id,
                                 counter_id=ticket.counter_id, staff_id=ticket.staff_id, customer_id=customer.id,
                                 token_hash=token_hash(token), channel="mail", invited_at=now))
            language = ticket.language if ticket.language in texts.LANGUAGES else "en"
            subject, body = FEEDBACK_TEXTS
            values = {"branch": ticket.branch.name, "service": localized_name(ticket.service, language),
                      "label": ticket.label,
                      # The record's name only when the record holds this address (identity.py).
                      "name": (customer.name or "") if customer.email == ticket.email else "",
                      "url": f"{base_url.rstrip('/')}/f/{token}", "days": FEEDBACK_DAYS}
            session.execute(_insert_ignore(session)(Notification).values(
                channel="email", recipient=ticket.email, template="feedback_request", language=language,
                payload={"subject": texts.gettext(language, subject, **values),
                         "body": texts.gettext(language, body, **values)},
                dedupe_key=f"feedback:{ticket.id}", status="pending", attempts=0, next_attempt_at=now,
                last_error="", created_at=now,
            ).on_conflict_do_nothing(index_elements=["dedupe_key"]))
    return len(rows)


def _aggregate(rows: list[tuple]) -> dict:
    ratings = [r for r, _n in rows if r is not None]
    scores = [n for _r, n in rows if n is not None]
    nps = None
    if scores:
        promoters = sum(1 for n in scores if n >= 9)
        detractors = sum(1 for n in scores if n <= 6)
        nps = round(100 * (promoters - detractors) / len(scores), 1)
    return {"answers": len(rows), "average_rating": round(sum(ratings) / len(ratings), 2) if ratings else None,
            "nps": nps, "nps_answers": len(scores)}


def feedback_summary(session: Session, branch: Branch, *, start: datetime | None = None,
                     end: datetime | None = None) -> dict:
    """Average rating and NPS (% promoters 9-10 minus % detractors 0-6) overall, per service, counter, staff."""
    query = select(Feedback).where(Feedback.branch_id == branch.id, Feedback.answered_at.is_not(None))
    if start:
        query = query.where(Feedback.answered_at >= start)
    if end:
        query = query.where(Feedback.answered_at < end)
    answers = session.scalars(query).all()
    names = {
        "service": {s.id: f"{s.code} {s.name}" for s in session.scalars(select(Service).where(Service.branch_id == branch.id))},
        "counter": {c.id: c.name for c in session.scalars(select(Counter).where(Counter.branch_id == branch.id))},
        "staff": {s.id: s.name or f"#{s.id}" for s in session.scalars(select(Staff)).unique()},
    }
    result = {"overall": _aggregate([(a.rating, a.nps) for a in answers])}
    for key, attr in (("service", "service_id"), ("counter", "counter_id"), ("staff", "staff_id")):
        groups: dict = {}
        for answer in answers:
            groups.setdefault(getattr(answer, attr), []).append((answer.rating, answer.nps))
        result[f"by_{key}"] = [{"id": ident, "name": names[key].get(ident, "—"), **_aggregate(rows)}
                               for ident, rows in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))]
    result["comments"] = [{"rating": a.rating, "nps": a.nps, "comment": a.comment, "answered_at": a.answered_at}
                          for a in sorted(answers, key=lambda a: a.answered_at, reverse=True) if a.comment][:20]
    return result
