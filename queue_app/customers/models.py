"""Customer records and what the customer side of the system keeps about them.

A customer is one person across branches (one normalised phone and/or e-mail). What a branch
knows of that person (visits, spend, segment, tier, usual interval) lives in CustomerStanding,
per branch, because thresholds and churn rules are a branch manager's. Feedback, churn alerts and
the audit log reference customers by id; erasure (customers/operations.py) removes the person and
keeps anonymous rows.
"""
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from queue_app.core.models import NEVER_REUSED_IDS, Base, UTCDateTime

SEGMENTS = ("core", "at_risk_valuable", "loyal_regular", "occasional")


class Customer(Base):
    __tablename__ = "customer"
    __table_args__ = NEVER_REUSED_IDS  # an erased customer's id is never another person's

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True, nullable=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(16), default="en")
    # When the person proved control of the phone / e-mail (a proof link sent there); None means
    # the value was typed by someone and is shown to staff as unverified (customers/identity.py).
    phone_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Best tier over the customer's branches (CustomerStanding has the per-branch tier).
    tier: Mapped[str] = mapped_column(String(32), default="standard")
    strikes: Mapped[int] = mapped_column(Integer, default=0)
    last_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Online booking is refused until then (too many no-shows); staff can lift it.
    booking_blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Staff lifted a pause then: missed visits before it no longer count (booking/operations.py).
    strikes_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CustomerStanding(Base):
    """What one branch knows of one customer, recomputed from history (nightly and on demand)."""

    __tablename__ = "customer_standing"
    __table_args__ = (Index("ix_customer_standing_segment", "branch_id", "segment"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), primary_key=True)
    visits: Mapped[int] = mapped_column(Integer, default=0)  # finished tickets in the value window
    spend_cents: Mapped[int] = mapped_column(Integer, default=0)  # priced services in the window
    no_shows: Mapped[int] = mapped_column(Integer, default=0)
    first_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Median days between visits (needs three visits), the customer's own rhythm.
    usual_interval_days: Mapped[float | None] = mapped_column(Float, nullable=True)
    value_score: Mapped[float] = mapped_column(Float, default=0.0)
    loyalty_score: Mapped[float] = mapped_column(Float, default=0.0)
    segment: Mapped[str] = mapped_column(String(32), default="occasional")
    tier: Mapped[str] = mapped_column(String(32), default="standard")
    computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    customer = relationship("Customer")


class Feedback(Base):
    """One answer per visit (finished ticket): a 1-5 rating, a comment, the 0-10 recommend score.

    The row exists once the customer is asked (invited_at; token_hash is the mailed link's) and is
    answered once (answered_at).
    """

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), unique=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counter.id"), nullable=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), nullable=True, index=True)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    nps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str] = mapped_column(String(16), default="")  # "tracking" or "mail"
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ChurnAlert(Base):
    """A customer a branch may be losing; one row per absence (customer, branch, last visit)."""

    __tablename__ = "churn_alert"
    __table_args__ = (UniqueConstraint("branch_id", "customer_id", "last_visit_at"), NEVER_REUSED_IDS)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))  # "interval_exceeded" or "valued_unseen"
    last_visit_at: Mapped[datetime] = mapped_column(UTCDateTime)
    usual_interval_days: Mapped[float | None] = mapped_column(Float, nullable=True)
    segment: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    contacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    contacted_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    # Set when the customer came back (a later visit) or their record was erased.
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    customer = relationship("Customer")


class ContactProof(Base):
    """A one-time link sent to a phone or e-mail typed on a booking; opening it proves control."""

    __tablename__ = "contact_proof"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(8))  # "email" or "sms"
    contact: Mapped[str] = mapped_column(String(254))  # normalised
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ContactCode(Base):
    """A six-digit code sent to a phone or e-mail (customers/contact_codes.py): typing it back
    proves control of the contact, for joining a queue from home. One live code per contact."""

    __tablename__ = "contact_code"
    __table_args__ = (Index("ix_contact_code_contact", "contact", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))  # "email" or "sms"
    contact: Mapped[str] = mapped_column(String(254))  # normalised
    code_hash: Mapped[str] = mapped_column(String(64))  # keyed with the app's secret: see contact_codes.py
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branch.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    wrong_tries: Mapped[int] = mapped_column(Integer, default=0)
    # Used (a ticket was joined with it) or void (a newer code replaced it, or too many wrong tries).
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
