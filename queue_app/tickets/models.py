from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from queue_app.core.models import Base, UTCDateTime

TICKET_STATES = ("waiting", "called", "serving", "done", "no_show", "cancelled")
ACTIVE_STATES = ("waiting", "called", "serving")


class TicketSequence(Base):
    """Last number issued per branch, prefix and branch-local day (the upsert row of numbering)."""

    __tablename__ = "ticket_sequence"

    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), primary_key=True)
    local_date: Mapped[date] = mapped_column(Date, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(4), primary_key=True)
    last_number: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    __tablename__ = "ticket"
    __table_args__ = (
        # Backstop for numbering: a label is unique per branch, prefix and local day.
        UniqueConstraint("branch_id", "local_date", "prefix", "number"),
        # call_next scans waiting tickets of some services by sort key.
        Index("ix_ticket_queue", "branch_id", "status", "service_id", "sort_key"),
        # The played queue picks up the waiting tickets issued since its run by id, on every issue:
        # without it, a scan of the branch's whole line (played_queue._JOINED_SINCE).
        Index("ix_ticket_waiting_since", "branch_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    local_date: Mapped[date] = mapped_column(Date)
    prefix: Mapped[str] = mapped_column(String(4))
    number: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    priority: Mapped[str] = mapped_column(String(32), default="normal")
    # Effective time: issue time for walk-ins, booked start for appointments.
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Queue order: effective time minus the priority credit (queue_order.PRIORITY_CREDITS).
    sort_key: Mapped[datetime] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counter.id"), nullable=True, index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), nullable=True)
    # Contacts and language given with this ticket: its messages go here (see Appointment.phone).
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    kiosk_id: Mapped[int | None] = mapped_column(ForeignKey("kiosk_device.id"), nullable=True)
    # SHA-256 of the holder's tracking token (the QR link); the token is returned once.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    recalls: Mapped[int] = mapped_column(Integer, default=0)
    # "I need more time" is allowed once per ticket.
    postponed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The wait estimate given when the ticket was issued (minutes, 80 % range), kept so that
    # estimates can be judged against the waits that followed.
    estimate_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    estimate_low: Mapped[int | None] = mapped_column(Integer, nullable=True)
    estimate_high: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The estimator's own figures behind it, before the branch's calibration (unrounded minutes):
    # what estimate_calibration.py learns the correction from.
    model_mean: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_low: Mapped[float | None] = mapped_column(Float, nullable=True)
    model_high: Mapped[float | None] = mapped_column(Float, nullable=True)
    # When "almost your turn" was sent; it is sent once per ticket.
    almost_turn_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Joined from a phone away from the branch (tickets/remote.py): the trip it said it needs,
    # when "time to set off" was sent (once), when the holder said "I'm here", and how many times
    # a call found it not yet arrived (the first time it is held a few places back, then a no-show).
    remote: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    travel_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    set_off_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    held_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # Every ticket response needs these: load them with the ticket, in the same statement.
    service = relationship("Service", lazy="joined", innerjoin=True)
    counter = relationship("Counter", lazy="joined")
    branch = relationship("Branch", lazy="joined", innerjoin=True)


class TicketEvent(Base):
    """Append-only log of every ticket state change; reports, estimates and audit read it."""

    __tablename__ = "ticket_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("ticket.id"), index=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    counter_id: Mapped[int | None] = mapped_column(ForeignKey("counter.id"), nullable=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
