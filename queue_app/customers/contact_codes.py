"""Proof of a contact by a six-digit code: joining a queue from home (tickets/remote.py).

The identity rule (identity.py) holds: a typed phone or e-mail proves nothing. Before a phone may
join a queue remotely, the contact it gives gets a code (SMS to a phone, mail to an address,
through the outbox), and only the person who reads it there can type it back.

- One live code per contact: a new one voids the earlier ones. It lives CODE_VALID (10 min).
- The code is stored as an HMAC with the app's secret key, so a copy of the database does not
  reveal live codes (a plain hash of six digits is undone by trying all million).
- MAX_WRONG_TRIES wrong tries void it. Each wrong try is committed before the refusal is raised:
  a rolled-back counter would allow unlimited guesses.
- Sending is rate limited per contact and per client address by the web layer (flask-limiter,
  tickets/remote_api.py); used codes prove the contact on its customer record (`verify_contact`).
"""
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from queue_app.core.errors import Conflict, Invalid, Locked
from queue_app.core.transaction import write_transaction
from queue_app.customers.identity import Contacts
from queue_app.customers.models import ContactCode, Customer
from queue_app.notifications import texts
from queue_app.notifications.models import Notification
from queue_app.notifications.texts import N_

CODE_VALID = timedelta(minutes=10)
MAX_WRONG_TRIES = 5
TEMPLATE = "contact_code"  # the outbox row's template (the text is in its payload)
TEXTS = (
    N_("Your code for %(branch)s: %(code)s"),
    N_("%(code)s is your code to join the queue at %(branch)s. It is valid for 10 minutes. "
       "If you did not ask for it, ignore this message."),
)


@dataclass(frozen=True)
class Proven:
    """A contact proven by a code just now: the channel and the normalised value."""

    channel: str
    contact: str


def channel_of(contacts: Contacts) -> tuple[str, str]:
    """SMS when a phone was given (people look at it), else mail."""
    if contacts.phone:
        return "sms", contacts.phone
    if contacts.email:
        return "email", contacts.email
    raise Invalid("contact_missing", "Give a phone number or an e-mail address.",
                  {"phone": ["A phone number or an e-mail address is needed."]})


def _digest(secret: str, contact: str, code: str) -> str:
    return hmac.new(secret.encode("utf-8"), f"contact-code:{contact}:{code}".encode(),
                    hashlib.sha256).hexdigest()


def send_code(session: Session, contacts: Contacts, *, secret: str, branch_id: int | None, branch_name: str,
              language: str, now: datetime) -> str:
    """A new code for the contact, in the outbox in the same transaction; earlier codes are void.
    Returns the channel ("sms" or "email")."""
    channel, contact = channel_of(contacts)
    code = f"{secrets.randbelow(1_000_000):06d}"
    language = language if language in texts.LANGUAGES else "en"
    values = {"code": code, "branch": branch_name}
    with write_transaction(session):
        session.execute(update(ContactCode).where(ContactCode.contact == contact, ContactCode.used_at.is_(None))
                        .values(used_at=now).execution_options(synchronize_session=False))
        row = ContactCode(channel=channel, contact=contact, code_hash=_digest(secret, contact, code),
                          branch_id=branch_id, created_at=now, expires_at=now + CODE_VALID, wrong_tries=0)
        session.add(row)
        session.flush()
        subject, body = TEXTS
        # The code only in the outbox row, which the sender needs; it is void in ten minutes.
        session.add(Notification(
            channel=channel, recipient=contact, template=TEMPLATE, language=language,
            payload={"subject": texts.gettext(language, subject, **values),
                     "body": texts.gettext(language, body, **values)},
            dedupe_key=f"contact_code:{row.id}", status="pending", attempts=0, next_attempt_at=now,
            last_error="", created_at=now,
        ))
    return channel


def use_code(session: Session, contacts: Contacts, code: str, *, secret: str, now: datetime) -> Proven:
    """Check and spend the contact's live code, inside the caller's write transaction.

    A wrong code raises `WrongCode`; the caller commits its count (see `count_wrong_try`)."""
    channel, contact = channel_of(contacts)
    row = session.scalar(
        select(ContactCode).where(ContactCode.contact == contact, ContactCode.used_at.is_(None))
        .order_by(ContactCode.created_at.desc(), ContactCode.id.desc()).limit(1).with_for_update()
    )
    if row is None or now > row.expires_at:
        raise Conflict("code_expired", "There is no valid code for this contact; ask for a new one.",
                       {"code": ["Ask for a new code."]})
    typed = "".join(ch for ch in (code or "") if ch.isdigit())
    if not hmac.compare_digest(row.code_hash, _digest(secret, contact, typed)):
        raise WrongCode(row.id, MAX_WRONG_TRIES - row.wrong_tries - 1)
    # Spent once: a second join with the same code finds no live code.
    spent = session.execute(update(ContactCode).where(ContactCode.id == row.id, ContactCode.used_at.is_(None))
                            .values(used_at=now).execution_options(synchronize_session=False)).rowcount
    if not spent:
        raise Conflict("code_expired", "This code was already used; ask for a new one.", {"code": ["Ask for a new code."]})
    return Proven(channel, contact)


class WrongCode(Invalid):
    def __init__(self, code_id: int, tries_left: int):
        super().__init__("code_wrong", f"The code is not right ({max(tries_left, 0)} tries left).",
                         {"code": ["The code is not right."]})
        self.code_id = code_id
        self.tries_left = tries_left


def count_wrong_try(session: Session, error: WrongCode, now: datetime) -> None:
    """After the joining transaction rolled back: count the wrong try in its own transaction, and
    void the code at the limit. Raises what the caller should answer."""
    with write_transaction(session):
        row = session.get(ContactCode, error.code_id, with_for_update=True, populate_existing=True)
        if row is None or row.used_at is not None:
            raise Conflict("code_expired", "This code is no longer valid; ask for a new one.",
                           {"code": ["Ask for a new code."]})
        row.wrong_tries += 1
        if row.wrong_tries >= MAX_WRONG_TRIES:
            row.used_at = now
    if row.wrong_tries >= MAX_WRONG_TRIES:
        raise Locked("too_many_tries", "Too many wrong codes; ask for a new one.", retry_after=0)
    raise WrongCode(row.id, MAX_WRONG_TRIES - row.wrong_tries)


def verify_contact(session: Session, proven: Proven, *, language: str, now: datetime) -> Customer:
    """The record holding the proven contact, with it verified (as identity.prove does for a link);
    created when none holds it. Inside the caller's transaction."""
    field = "phone" if proven.channel == "sms" else "email"
    holder = session.scalar(select(Customer).where(getattr(Customer, field) == proven.contact))
    if holder is None:
        holder = Customer(name="", language=language, tier="standard", strikes=0, created_at=now,
                          **{field: proven.contact})
        session.add(holder)
        session.flush()
    if getattr(holder, f"{field}_verified_at") is None:
        setattr(holder, f"{field}_verified_at", now)
    return holder
