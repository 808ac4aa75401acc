"""Staff sign-in with a lockout that grows with repeated failures.

After LOCK_AFTER failures in a row an account refuses sign-in for BASE_LOCK, doubling with each
further failure up to MAX_LOCK, so guessing a password is slow even from many addresses (the
rate limiter covers one address). A success resets the count.
"""
import math
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from queue_app.accounts.models import Staff
from queue_app.core.errors import Locked, Unauthorized
from queue_app.core.models import utcnow
from queue_app.core.security import DEFAULT_HASH_COST, verify_password
from queue_app.core.transaction import write_transaction

LOCK_AFTER = 5
BASE_LOCK = timedelta(minutes=1)
MAX_LOCK = timedelta(hours=1)


def lock_length(failures: int) -> timedelta:
    return min(BASE_LOCK * 2 ** (failures - LOCK_AFTER), MAX_LOCK)


def authenticate(session: Session, email: str, password: str, *, now: datetime | None = None,
                 hash_cost: str = DEFAULT_HASH_COST) -> Staff:
    """`hash_cost`: the app's PASSWORD_HASH_COST, the cost of the hash verified for an unknown account."""
    now = now or utcnow()
    # populate_existing: the session may hold this account as a kept copy (core/row_cache.py), whose
    # failed attempts and lockout are not kept fresh.
    staff = session.scalar(select(Staff).where(Staff.email == (email or "").strip().lower())
                           .execution_options(populate_existing=True))
    if staff is not None and staff.locked_until and staff.locked_until > now:
        wait = math.ceil((staff.locked_until - now).total_seconds())
        raise Locked("account_locked",
                     f"Too many failed sign-ins; try again in {math.ceil(wait / 60)} minute(s).", wait)
    # Always verify a hash, so timing does not reveal whether the account exists.
    if verify_password(staff.password_hash if staff else None, password, hash_cost) and staff and staff.active:
        if staff.failed_logins or staff.locked_until:
            with write_transaction(session):
                staff = session.get(Staff, staff.id)
                staff.failed_logins, staff.locked_until = 0, None
        return staff
    if staff is not None:
        with write_transaction(session):
            staff = session.get(Staff, staff.id)
            staff.failed_logins += 1
            if staff.failed_logins >= LOCK_AFTER:
                staff.locked_until = now + lock_length(staff.failed_logins)
    raise Unauthorized("bad_credentials", "Wrong e-mail or password.")
