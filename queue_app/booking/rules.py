"""A branch's booking settings: defaults, and the overrides a manager stores on the branch."""
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from queue_app.catalogue.models import Branch
from queue_app.core.errors import Invalid


@dataclass(frozen=True)
class BookingRules:
    """A branch's booking settings (Branch.booking_rules overrides any of them)."""

    slot_minutes: int = 15  # grid of start times, independent of service length
    min_notice_minutes: int = 60  # earliest booking: now + notice
    max_days_ahead: int = 30  # latest booking day: today + this
    change_cutoff_minutes: int = 60  # reschedule until start - cutoff (cancel until the start)
    check_in_early_minutes: int = 30  # kiosk check-in opens this long before the start
    check_in_late_minutes: int = 10  # and closes this long after it (later: a walk-in ticket)
    no_show_grace_minutes: int = 15  # not checked in by start + grace: no-show
    max_active_bookings: int = 3  # per customer, upcoming and not cancelled
    strike_limit: int = 3  # no-shows within the window that block online booking
    strike_window_days: int = 90
    block_days: int = 30  # how long online booking stays blocked


@dataclass(frozen=True)
class ChangeWindow:
    """What the holder of a booking may still do online, and until when (aware UTC).

    Rescheduling closes at start - change_cutoff_minutes (the branch plans its day by then);
    cancelling stays open until the start, since a freed time helps the branch even late."""

    reschedule_until: datetime
    cancel_until: datetime
    can_reschedule: bool
    can_cancel: bool


def change_window(start: datetime, rules: BookingRules, now: datetime) -> ChangeWindow:
    reschedule_until = start - timedelta(minutes=rules.change_cutoff_minutes)
    return ChangeWindow(reschedule_until, start, can_reschedule=now <= reschedule_until, can_cancel=now < start)


def rules_for(branch: Branch) -> BookingRules:
    known = {f.name for f in fields(BookingRules)}
    overrides = {k: int(v) for k, v in (branch.booking_rules or {}).items() if k in known}
    return BookingRules(**overrides)


def check_rules(values: dict) -> dict:
    """Validate overrides a manager sets: known names, whole numbers in a sane range."""
    known = {f.name for f in fields(BookingRules)}
    clean = {}
    for key, value in (values or {}).items():
        if key not in known:
            raise Invalid("invalid_field", f"booking_rules: unknown setting '{key}'.",
                          {"booking_rules": [f"Unknown setting '{key}'."]})
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10_000:
            raise Invalid("invalid_field", f"booking_rules: {key} must be a whole number 0-10000.",
                          {"booking_rules": [f"{key} must be a whole number 0-10000."]})
        clean[key] = value
    if clean.get("slot_minutes", BookingRules.slot_minutes) < 5:
        raise Invalid("invalid_field", "booking_rules: slot_minutes must be at least 5.",
                      {"booking_rules": ["slot_minutes must be at least 5."]})
    return clean
