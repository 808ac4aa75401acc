from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from queue_app.core.models import Base, UTCDateTime

APPOINTMENT_STATES = ("booked", "checked_in", "done", "cancelled", "no_show")


class Appointment(Base):
    __tablename__ = "appointment"
    __table_args__ = (Index("ix_appointment_branch_day", "branch_id", "local_date", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(16), default="en")
    # The contacts typed on this booking (normalised): its messages go here, never to whatever
    # the linked customer record holds, so typing someone's phone number redirects nothing.
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True, index=True)
    # When the booker opened the proof link sent to that contact (customers/identity.py).
    contact_proven_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    local_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default="booked")
    # SHA-256 of the manage link's token (128+ bits); the token is returned once.
    manage_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Short code for the kiosk (typed or scanned); unguessable enough with rate limits.
    check_in_code: Mapped[str] = mapped_column(String(16), unique=True)
    # A double tap with the same Idempotency-Key returns the same booking. A hash of the key and
    # its caller (the staff member, or nobody), and of the request: the same key with another
    # body is refused, never answered with this booking (booking/operations.py).
    idempotency_key: Mapped[str | None] = mapped_column(String(100), unique=True, nullable=True)
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The manage token, kept only so a replay of that key can answer with the same link (as
    # payment APIs replay their stored response); the no-show sweep clears it after a day.
    idempotency_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # iCalendar SEQUENCE: grows on every change so calendars replace the old event.
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("ticket.id"), nullable=True)
    booked_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    branch = relationship("Branch", lazy="joined", innerjoin=True)
    service = relationship("Service", lazy="joined", innerjoin=True)
    customer = relationship("Customer")


class BookingSlot(Base):
    """Capacity of one slot interval for one service: the row a booking locks and counts on."""

    __tablename__ = "booking_slot"

    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"), primary_key=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    capacity: Mapped[int] = mapped_column(Integer, default=0)
    booked: Mapped[int] = mapped_column(Integer, default=0)
