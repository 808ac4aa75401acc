from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from queue_app.core.models import Base, UTCDateTime

NOTIFICATION_STATES = ("pending", "sending", "sent", "failed", "cancelled")


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
