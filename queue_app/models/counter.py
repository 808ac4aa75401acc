from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from queue_app.core.models import Base

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
