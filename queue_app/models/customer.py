from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from queue_app.models.base import Base, UTCDateTime


class Customer(Base):
    __tablename__ = "customer"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True, nullable=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(16), default="en")
    tier: Mapped[str] = mapped_column(String(32), default="standard")
    strikes: Mapped[int] = mapped_column(Integer, default=0)
    last_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Online booking is refused until then (too many no-shows); staff can lift it.
    booking_blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
