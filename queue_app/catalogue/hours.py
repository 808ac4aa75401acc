"""Wall-clock hours (a branch's opening hours, a counter's shifts) turned into UTC instants.

Hours are stored as {"mon": [["09:00", "12:00"], ["13:00", "17:00"]], ...} in the branch's IANA
zone. Wall-clock times that do not exist (the spring-forward gap) give no instant; times that occur
twice (fall-back) are taken at their first occurrence.
"""
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from queue_app.catalogue.models import WEEKDAYS


def wall_to_utc(day: date, wall: time, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a wall-clock time on a local day; None if it does not exist (DST gap)."""
    local = datetime.combine(day, wall).replace(tzinfo=zone)
    back = local.astimezone(timezone.utc).astimezone(zone)
    if back.replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return local.astimezone(timezone.utc)


def day_intervals(hours: dict, day: date, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    """One local day's intervals of `hours` as half-open UTC intervals, in order."""
    intervals = []
    for opens, closes in (hours or {}).get(WEEKDAYS[day.weekday()], []):
        start = wall_to_utc(day, time.fromisoformat(opens), zone)
        if closes == "24:00":
            end = wall_to_utc(day + timedelta(days=1), time(0, 0), zone)
        else:
            end = wall_to_utc(day, time.fromisoformat(closes), zone)
        if start is not None and end is not None and end > start:
            intervals.append((start, end))
    return sorted(intervals)


def open_now(hours: dict, closed_dates: list, now: datetime, zone: ZoneInfo,
             look_ahead_days: int = 14) -> tuple[bool, datetime | None]:
    """Whether the hours are open at `now`, and if not, when they next open (UTC; None when not
    within `look_ahead_days`). `closed_dates` are local ISO dates. An interval that runs past
    midnight ("24:00") counts for the day it starts on, so yesterday is looked at too."""
    today = now.astimezone(zone).date()
    closed = set(closed_dates or [])
    for offset in range(-1, look_ahead_days + 1):
        day = today + timedelta(days=offset)
        if day.isoformat() in closed:
            continue
        for start, end in day_intervals(hours, day, zone):
            if start <= now < end:
                return True, None
            if start > now:
                return False, start
    return False, None
