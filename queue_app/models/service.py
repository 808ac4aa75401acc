from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from queue_app.core.models import Base


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
