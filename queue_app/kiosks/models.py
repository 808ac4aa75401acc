from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from queue_app.core.models import Base, UTCDateTime


class KioskDevice(Base):
    __tablename__ = "kiosk_device"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # SHA-256 of the device token; the token itself is shown once and never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The kiosk page's own pings; last_seen_at is the print bridge's heartbeat.
    page_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    printer_state: Mapped[dict] = mapped_column(JSON, default=dict)

    branch = relationship("Branch")


class KioskPairingCode(Base):
    """A one-time code a manager hands to a new kiosk; `queue-kiosk pair CODE` turns it into a device.

    Only the SHA-256 of the code is kept. It is used once (`used_at`, `device_id`) and expires.
    """

    __tablename__ = "kiosk_pairing_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    device_name: Mapped[str] = mapped_column(String(100))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("kiosk_device.id"), nullable=True)

    branch = relationship("Branch")
