"""The calendar the system works in: 2000-01-01 to 2100-12-31.

A day or time outside it is refused where it comes in (queue_app/web/input_rules.py) and again by
the domain functions that compute with user-given days, so adding a week or an offset to a date
never runs past what Python's `date` holds (year 1 to 9999) and raises OverflowError.
"""
from datetime import date, datetime

FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)


def in_range(day: date | datetime | None) -> bool:
    """True for a day (or the local day of a time) from FIRST_DAY to LAST_DAY."""
    if day is None:
        return False
    if isinstance(day, datetime):
        day = day.date()
    return FIRST_DAY <= day <= LAST_DAY
