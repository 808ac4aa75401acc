from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from queue_app.core.models import Base, UTCDateTime

# `skipped`: an SMS to a number that opted out (notifications/sms.py); never sent, never retried.
NOTIFICATION_STATES = ("pending", "sending", "sent", "failed", "cancelled", "skipped")
# What the SMS gateway last reported about a sent message (its status callbacks).
DELIVERY_STATES = ("queued", "sent", "delivered", "failed", "undelivered")


class Notification(Base):
    """Outbox row: a message to send once (mail or SMS), retried with backoff until it goes out."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # "email" or "sms"
    recipient: Mapped[str] = mapped_column(String(254))
    template: Mapped[str] = mapped_column(String(64))  # e.g. "booking_confirmed", "reminder"
    language: Mapped[str] = mapped_column(String(16), default="en")
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    # One message per purpose: a second insert with the same key is a no-op (idempotent jobs).
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointment.id"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # SMS: the gateway that took it ("twilio", "http"), its id there (status callbacks name it),
    # what the gateway last said about delivery, and how many parts the text was billed as.
    provider: Mapped[str] = mapped_column(String(16), default="", server_default="")
    provider_message_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    delivery_status: Mapped[str] = mapped_column(String(16), default="", server_default="")
    delivery_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    segments: Mapped[int | None] = mapped_column(Integer, nullable=True)


class SmsOptOut(Base):
    """A phone number (E.164) that said STOP (to us or at its carrier), or that staff opted out: no
    SMS goes to it while `opted_out`. START/UNSTOP (or staff) turns it back on; the row stays as the
    record of who did."""

    __tablename__ = "sms_opt_out"

    number: Mapped[str] = mapped_column(String(40), primary_key=True)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=True)
    # "reply" (the number's own message), "staff", or "carrier" (a gateway refused it as opted out)
    source: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(200), default="")  # the keyword, or the staff member
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
