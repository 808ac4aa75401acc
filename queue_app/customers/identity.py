"""Who a customer is, and what may change a customer record.

The rule. Anyone can type anyone's phone number into a booking form or a remote ticket, so typed
contacts are evidence of nothing:

- A booking's and a ticket's messages go to the contacts typed on that booking or ticket (kept on
  the row), never to the addresses of the customer record it is linked to.
- A typed contact links the booking or ticket to the record holding that phone (first) or e-mail,
  for history only; a new record is created from the typed contacts when none holds them. A linked
  record's name, phone, e-mail and language are never changed by typed input. A contact that was
  typed but never proven is shown to staff as unverified.
- A record changes only through staff (attach at the counter, merge) or through proof: the
  confirmation of a booking carries a one-time link to the contact it was sent to (mail or SMS);
  opening it proves control of that contact (`prove`). The proven contact is then verified on the
  record holding it, or replaces an unverified value on the booking's record; the first proven
  contact of a record also sets its name and language from that booking.
- Limits and strikes (booking/operations.py) count a record's proven bookings and, for unproven ones,
  only bookings typed with the same phone and e-mail, so a stranger who knows a phone number cannot
  use up or block its owner's bookings.
"""
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from queue_app.booking.models import Appointment
from queue_app.core.errors import Conflict, Invalid, NotFound
from queue_app.core.security import new_token, token_hash
from queue_app.core.transaction import write_transaction
from queue_app.customers.models import ContactProof, Customer
from queue_app.tickets.models import Ticket

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PROOF_VALID = timedelta(days=14)  # the confirmation link proves the contact for this long


def _bad_phone() -> Invalid:
    return Invalid("invalid_field", "phone: not a phone number.", {"phone": ["Not a phone number."]})


def normalise_phone(phone: str, region: str | None = None) -> str:
    """E.164 ("+886912345678"); a number without country code is read in `region` (the branch's)."""
    raw = (phone or "").strip()
    if not raw or len(raw) > 40:
        raise _bad_phone()
    try:
        parsed = phonenumbers.parse(raw, (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        raise _bad_phone() from None
    if not phonenumbers.is_valid_number(parsed):
        raise _bad_phone()
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(email: str) -> str:
    cleaned = (email or "").strip().lower()
    if len(cleaned) > 254 or not _EMAIL.match(cleaned):
        raise Invalid("invalid_field", "email: not an e-mail address.", {"email": ["Not an e-mail address."]})
    return cleaned


@dataclass(frozen=True)
class Contacts:
    """Contacts as typed on one booking or ticket, normalised."""

    phone: str | None = None
    email: str | None = None

    def __bool__(self) -> bool:
        return bool(self.phone or self.email)


def typed(phone: str | None, email: str | None, region: str | None = None) -> Contacts:
    return Contacts(normalise_phone(phone, region) if phone else None, normalise_email(email) if email else None)


def link(session: Session, contacts: Contacts, *, name: str = "", language: str = "en",
         now: datetime) -> Customer | None:
    """The record holding this phone (first) or e-mail, for history; inside the caller's transaction.

    An existing record is returned unchanged. With none, a record is created from the typed
    contacts, unverified (its first proof names it, see `prove`).
    """
    if not contacts:
        return None
    by_phone = session.scalar(select(Customer).where(Customer.phone == contacts.phone)) if contacts.phone else None
    if by_phone is not None:
        return by_phone
    by_email = session.scalar(select(Customer).where(Customer.email == contacts.email)) if contacts.email else None
    if by_email is not None:
        return by_email
    customer = Customer(phone=contacts.phone, email=contacts.email, name=(name or "")[:200], language=language,
                        tier="standard", strikes=0, created_at=now)
    session.add(customer)
    session.flush()
    return customer


def verified(customer: Customer) -> dict:
    """What staff see next to the contacts: proven or only typed."""
    return {"phone": customer.phone_verified_at is not None if customer.phone else None,
            "email": customer.email_verified_at is not None if customer.email else None}


def new_proof(session: Session, appointment: Appointment, now: datetime) -> str | None:
    """A proof link's token for the contact the booking's messages go to (e-mail first, as notify
    sends). Inside the booking's transaction; the raw token lives only in the mailed link."""
    channel, contact = ("email", appointment.email) if appointment.email else ("sms", appointment.phone)
    if not contact:
        return None
    token = new_token()
    session.add(ContactProof(token_hash=token_hash(token), channel=channel, contact=contact,
                             appointment_id=appointment.id, created_at=now, expires_at=now + PROOF_VALID))
    return token


def prove(session: Session, token: str, *, now: datetime) -> ContactProof:
    """The holder of the link controls its contact: verify it on the record (idempotent)."""
    with write_transaction(session):
        proof = session.scalar(select(ContactProof).where(ContactProof.token_hash == token_hash(token or ""))
                               .with_for_update())
        if proof is None:
            raise NotFound("proof_not_found", "This confirmation link is not known.")
        if proof.used_at is not None:
            return proof
        if now > proof.expires_at:
            raise Conflict("proof_expired", "This confirmation link has expired.")
        proof.used_at = now
        appointment = session.get(Appointment, proof.appointment_id) if proof.appointment_id else None
        field = "email" if proof.channel == "email" else "phone"
        holder = session.scalar(select(Customer).where(getattr(Customer, field) == proof.contact))
        if holder is None:
            candidate = appointment.customer if appointment is not None else None
            if candidate is not None and getattr(candidate, f"{field}_verified_at") is None:
                holder = candidate  # an unverified value typed by someone gives way to the proven one
                setattr(holder, field, proof.contact)
            else:
                holder = Customer(name="", language="en", tier="standard", strikes=0, created_at=now,
                                  **{field: proof.contact})
                session.add(holder)
                session.flush()
        first_proof = holder.phone_verified_at is None and holder.email_verified_at is None
        setattr(holder, f"{field}_verified_at", now)
        if appointment is not None:
            appointment.contact_proven_at = appointment.contact_proven_at or now
            if first_proof:
                holder.name = appointment.name[:200] or holder.name
                holder.language = appointment.language
            if appointment.customer_id != holder.id:
                # The booking belongs to whoever proved its contact.
                appointment.customer_id = holder.id
                if appointment.ticket_id is not None:
                    session.execute(update(Ticket).where(Ticket.id == appointment.ticket_id)
                                    .values(customer_id=holder.id).execution_options(synchronize_session=False))
    return proof
