from datetime import date, datetime

from sqlalchemy import Date, Float, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from queue_app.core.models import Base, UTCDateTime


class ArrivalForecast(Base):
    """Forecast arrivals of one service in one interval (walk-ins with a 10-90 % band, and bookings)."""

    __tablename__ = "arrival_forecast"
    __table_args__ = (UniqueConstraint("branch_id", "service_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("service.id"))
    local_date: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    minutes: Mapped[int] = mapped_column(Integer)
    walk_in_mean: Mapped[float] = mapped_column(Float)
    walk_in_p10: Mapped[float] = mapped_column(Float)
    walk_in_p90: Mapped[float] = mapped_column(Float)
    booking_mean: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaffingPlan(Base):
    """Counters planned and booking slots offered in one interval of a branch's day.

    `counters_override` / `booking_slots_override` are a manager's; recomputing never touches them.
    """

    __tablename__ = "staffing_plan"
    __table_args__ = (UniqueConstraint("branch_id", "starts_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branch.id"), index=True)
    local_date: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    minutes: Mapped[int] = mapped_column(Integer)
    forecast_arrivals: Mapped[float] = mapped_column(Float)  # walk-ins + bookings, all services
    offered_load: Mapped[float] = mapped_column(Float)  # erlangs: arrivals x mean visit / interval
    counters_planned: Mapped[int] = mapped_column(Integer)
    counters_override: Mapped[int | None] = mapped_column(Integer, nullable=True)
    booking_slots: Mapped[int] = mapped_column(Integer)
    booking_slots_override: Mapped[int | None] = mapped_column(Integer, nullable=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def counters(self) -> int:
        return self.counters_override if self.counters_override is not None else self.counters_planned

    @property
    def slots(self) -> int:
        return self.booking_slots_override if self.booking_slots_override is not None else self.booking_slots
