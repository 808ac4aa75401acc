"""Branches, their services and counters (which services a counter serves)."""
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from queue_app.core.models import Base

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Branch(Base):
    __tablename__ = "branch"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    # Wall-clock hours per weekday: {"mon": [["08:30", "12:00"], ["13:00", "17:00"]], ...}.
    opening_hours: Mapped[dict] = mapped_column(JSON, default=dict)
    # ISO dates (local) the branch is closed.
    closed_dates: Mapped[list] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(16), default="en")
    country: Mapped[str] = mapped_column(String(2), default="US")
    # Whether phones may take a walk-in ticket remotely (rate limited), not only kiosks.
    allow_remote_tickets: Mapped[bool] = mapped_column(Boolean, default=False)
    # How many places "I need more time" moves a waiting ticket back.
    postpone_places: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    # Booking settings that differ from domain.booking.DEFAULT_RULES (minutes, days, counts).
    booking_rules: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    # "Almost your turn" is sent once when a waiting ticket's estimate falls to this many minutes
    # or its people-ahead count to this many, whichever comes first.
    almost_turn_minutes: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    almost_turn_position: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    # A remote customer (joined from home) is told to set off when the estimate's low end is at
    # most the trip plus this many minutes: slack for parking, the door, a late bus.
    set_off_margin_minutes: Mapped[int] = mapped_column(Integer, default=5, server_default="5")
    # Staffing and forecast settings that differ from domain.planning.DEFAULT_PLANNING (target,
    # wait, abandonment cap, walk-in reserve, interval).
    planning_rules: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    # Customer settings that differ from domain.customers.DEFAULT_RULES (value window, segment
    # thresholds, named tiers, churn days, segment priority credit).
    customer_rules: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")

    # Shown where a booking can no longer be changed online.
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Languages the lobby display announces calls in, in turn; empty: the display's own language.
    announcement_languages: Mapped[list] = mapped_column(JSON, default=list, server_default="[]")
    # Where the branch is (WGS 84 degrees), for "distance from me" on the branch list; the distance
    # is worked out in the visitor's browser. Both or neither.
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)

    services = relationship("Service", back_populates="branch", order_by="Service.code")
    counters = relationship("Counter", back_populates="branch", order_by="Counter.name")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_closed_on(self, day: date) -> bool:
        return day.isoformat() in (self.closed_dates or [])


class Service(Base):
    __tablename__ = "service"
    __table_args__ = (UniqueConstraint("branch_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    # The ticket prefix: "A" gives A001, A002...
    code: Mapped[str] = mapped_column(String(4))
    name: Mapped[str] = mapped_column(String(200))
    # The name in other languages, {"zh_Hant": ..., "zh_Hans": ...}; missing ones fall back to `name`.
    names: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    expected_minutes: Mapped[int] = mapped_column(Integer, default=10)
    walk_in_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    booking_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # What staff ask for when the ticket is called (documents needed, questions).
    checklist: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Price in the branch currency's minor unit (cents); counts towards a customer's value.
    price_cents: Mapped[int | None] = mapped_column(Integer, nullable=True)

    branch = relationship("Branch", back_populates="services")


COUNTER_STATES = ("open", "paused", "closed")


class CounterService(Base):
    """Which services a counter serves, in the counter's order."""

    __tablename__ = "counter_service"

    counter_id: Mapped[int] = mapped_column(ForeignKey("counter.id", ondelete="CASCADE"), primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    service = relationship("Service")


class Counter(Base):
    __tablename__ = "counter"
    __table_args__ = (UniqueConstraint("branch_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # The name in other languages, like Service.names.
    names: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")
    state: Mapped[str] = mapped_column(String(16), default="closed")
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), nullable=True)
    # Planned hours per weekday, like Branch.opening_hours; empty means the branch's hours.
    # Estimates use them: a counter that closes soon is not capacity for a long service.
    shifts: Mapped[dict] = mapped_column(JSON, default=dict, server_default="{}")

    branch = relationship("Branch", back_populates="counters", lazy="joined", innerjoin=True)
    service_links = relationship(
        "CounterService", order_by="CounterService.position", cascade="all, delete-orphan"
    )
    staff = relationship("Staff")

    @property
    def services(self):
        return [link.service for link in self.service_links]

    @property
    def service_ids(self) -> list[int]:
        return [link.service_id for link in self.service_links]
