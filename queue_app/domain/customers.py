"""Customer records: one per phone number and/or e-mail address.

Minimal for now: tickets attach the customer who left a contact. The customer issue adds E.164
normalisation with the branch's region, merging, history, tiers and erasure.
"""
import re

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from queue_app.domain.errors import Invalid
from queue_app.models import Customer

_PHONE_JUNK = re.compile(r"[\s().-]")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_phone(phone: str) -> str:
    cleaned = _PHONE_JUNK.sub("", phone or "")
    if not _PHONE.match(cleaned):
        raise Invalid("invalid_field", "phone: not a phone number.", {"phone": ["Not a phone number."]})
    return cleaned


def normalise_email(email: str) -> str:
    cleaned = (email or "").strip().lower()
    if not _EMAIL.match(cleaned):
        raise Invalid("invalid_field", "email: not an e-mail address.", {"email": ["Not an e-mail address."]})
    return cleaned


def find_or_create(session: Session, phone: str | None = None, email: str | None = None) -> Customer | None:
    """The customer with this phone or e-mail, created if new. Runs inside the caller's transaction."""
    phone = normalise_phone(phone) if phone else None
    email = normalise_email(email) if email else None
    if not phone and not email:
        return None
    conditions = []
    if phone:
        conditions.append(Customer.phone == phone)
    if email:
        conditions.append(Customer.email == email)
    customer = session.scalar(select(Customer).where(or_(*conditions)).order_by(Customer.id).limit(1))
    if customer is None:
        customer = Customer(phone=phone, email=email, name="", language="en", tier="standard", strikes=0)
        session.add(customer)
        session.flush()
    else:
        customer.phone = customer.phone or phone
        customer.email = customer.email or email
    return customer
