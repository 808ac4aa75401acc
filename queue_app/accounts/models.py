from datetime import datetime

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from queue_app.core.models import Base, UTCDateTime

ROLES = ("admin", "manager", "staff")

staff_branch = Table(
    "staff_branch",
    Base.metadata,
    Column("staff_id", ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True),
    Column("branch_id", ForeignKey("branch.id", ondelete="CASCADE"), primary_key=True),
)


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="staff")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped on password change so older API tokens stop working.
    token_version: Mapped[int] = mapped_column(Integer, default=1)
    # Failed sign-ins in a row, and until when sign-in is refused (accounts/operations.py).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    # Checked on every staff request (branch access): load with the staff row.
    branches = relationship("Branch", secondary=staff_branch, lazy="joined")

    # Flask-Login protocol.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.token_version}"

    def can_access_branch(self, branch_id: int) -> bool:
        return self.role == "admin" or any(b.id == branch_id for b in self.branches)

    def has_role(self, *roles: str) -> bool:
        """Admin includes manager includes staff."""
        rank = {"staff": 0, "manager": 1, "admin": 2}
        return rank.get(self.role, -1) >= min(rank[r] for r in roles)
