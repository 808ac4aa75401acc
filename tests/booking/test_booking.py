"""Booking domain on a real SQLite file: slots, DST, capacity under real concurrency, check-in, no-shows."""
import json
import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from helpers import NY, TAIPEI, local, make_branch, race, utc
from sqlalchemy import select

from queue_app.accounts.models import Staff
from queue_app.booking import operations as booking
from queue_app.booking.models import Appointment, BookingSlot
from queue_app.catalogue import operations as catalogue
from queue_app.core.errors import Conflict, DomainError, Invalid, NotFound
from queue_app.tickets import queueing
from queue_app.tickets.models import Ticket


def slot_starts(session, slug, day, now):
    days = booking.availability(session, slug, "A", day, 1, now=now)["days"]
    return [s.start for s in days[0]["slots"]]


def test_slots_follow_wall_clock_hours_and_fit_before_closing(session):
    make_branch(session, "tp", "Asia/Taipei", [["09:00", "10:00"], ["13:00", "14:00"]], minutes=20)
    now = local(TAIPEI, 2026, 6, 1, 7, 0)
    starts = [s.astimezone(TAIPEI).strftime("%H:%M") for s in slot_starts(session, "tp", date(2026, 6, 1), now)]
    # 15-minute grid, 20-minute service: 09:45 would end at 10:05, after closing.
    assert starts == ["09:00", "09:15", "09:30", "13:00", "13:15", "13:30"]


def test_minimum_notice_and_closed_dates(session):
    make_branch(session, "tp", "Asia/Taipei", [["09:00", "12:00"]])
    catalogue.update_branch(session, "tp", closed_dates=["2026-06-02"])
    now = local(TAIPEI, 2026, 6, 1, 10, 10)
    starts = slot_starts(session, "tp", date(2026, 6, 1), now)
    assert starts[0] == local(TAIPEI, 2026, 6, 1, 11, 15)  # 60 minutes' notice, next grid point
    assert slot_starts(session, "tp", date(2026, 6, 2), now) == []


def test_spring_forward_day_skips_the_missing_hour(session):
    make_branch(session, "ny", "America/New_York", [["00:00", "04:00"]])
    now = utc(2026, 3, 1, 0, 0)
    starts = slot_starts(session, "ny", date(2026, 3, 8), now)
    walls = [s.astimezone(NY).strftime("%H:%M") for s in starts]
    assert "02:00" not in walls and "02:45" not in walls
    assert walls[:8] == ["00:00", "00:15", "00:30", "00:45", "01:00", "01:15", "01:30", "01:45"]
    assert walls[8] == "03:00" and walls[-1] == "03:45"
    assert len(starts) == 12  # four wall-clock hours, one of which does not exist
    assert starts[8] - starts[7] == timedelta(minutes=15)  # 01:45 EST to 03:00 EDT is 15 real minutes


def test_fall_back_day_takes_the_repeated_hour_once(session):
    make_branch(session, "ny", "America/New_York", [["00:00", "04:00"]])
    starts = slot_starts(session, "ny", date(2026, 11, 1), utc(2026, 10, 25, 0, 0))
    assert len(starts) == 16 and len(set(starts)) == 16
    # The first 01:00 (EDT, 05:00 UTC); the second 01:00 (EST, 06:00 UTC) is not offered again.
    assert starts[4] == utc(2026, 11, 1, 5, 0)
    assert starts[8] == utc(2026, 11, 1, 7, 0)  # 02:00 EST
    assert starts[8] - starts[7] == timedelta(minutes=75)


def test_slots_are_the_same_whatever_the_process_time_zone(app, session, db_path):
    make_branch(session, "ny", "America/New_York", [["00:00", "04:00"], ["09:00", "17:00"]])
    script = """
import json, sys
from datetime import date, datetime, timedelta, timezone
sys.path.insert(0, sys.argv[2])
from helpers import make_app
from queue_app.booking import operations as booking
from queue_app.core.extensions import db
app = make_app(sys.argv[1])
with app.app_context():
    out = {}
    for day in (date(2026, 3, 8), date(2026, 11, 1), date(2026, 6, 10)):
        now = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) - timedelta(days=2)
        days = booking.availability(db.session, "ny", "A", day, 1, now=now)
        out[day.isoformat()] = [s.start.isoformat() for s in days["days"][0]["slots"]]
    print(json.dumps(out))
"""
    tests_dir = str(Path(__file__).resolve().parents[1])
    results = []
    for tz in ("UTC", "Asia/Kolkata", "America/Los_Angeles"):
        done = subprocess.run([sys.executable, "-c", script, str(db_path), tests_dir], env={**os.environ, "TZ": tz},
                              capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert results[0] == results[1] == results[2]
    assert len(results[0]["2026-03-08"]) == 12 + 32


def book(session, slug, start, phone, **kwargs):
    return booking.book(session, slug, "A", start, name="Test Person", phone=phone, now=kwargs.pop("now"), **kwargs)


@pytest.mark.parametrize(("capacity", "attempts", "winners"), [(1, 20, 1), (3, 10, 3)])
def test_simultaneous_bookings_never_exceed_capacity(app, session, capacity, attempts, winners):
    make_branch(session, "ny", "America/New_York", [["09:00", "17:00"]], counters=capacity)
    now = utc(2026, 6, 1, 12, 0)
    start = local(NY, 2026, 6, 2, 10, 0)
    engine = session.get_bind()
    outcomes = race(engine, [
        (lambda own, i=i: book(own, "ny", start, f"+1212555{i:04d}", now=now).appointment.id)
        for i in range(attempts)
    ])
    assert sum(isinstance(o, int) for o in outcomes) == winners
    assert outcomes.count("slot_full") == attempts - winners
    session.expire_all()
    row = session.scalar(select(BookingSlot).where(BookingSlot.start_at == start))
    assert (row.booked, row.capacity) == (winners, capacity)
    remaining = booking.availability(session, "ny", "A", date(2026, 6, 2), 1, now=now)["days"][0]["slots"]
    assert next(s for s in remaining if s.start == start).remaining == 0


def test_two_reschedules_into_the_last_seat_leave_the_loser_untouched(app, session):
    make_branch(session, "ny", "America/New_York", [["09:00", "17:00"]], counters=1)
    now = utc(2026, 6, 1, 12, 0)
    first = book(session, "ny", local(NY, 2026, 6, 2, 9, 0), "+12125550001", now=now)
    second = book(session, "ny", local(NY, 2026, 6, 2, 9, 30), "+12125550002", now=now)
    target = local(NY, 2026, 6, 2, 11, 0)
    outcomes = race(session.get_bind(), [
        lambda own: booking.reschedule(own, first.manage_token, target, now=now).id,
        lambda own: booking.reschedule(own, second.manage_token, target, now=now).id,
    ])
    assert sorted(map(str, outcomes)) == sorted([str(first.appointment.id), "slot_full"]) or \
        sorted(map(str, outcomes)) == sorted([str(second.appointment.id), "slot_full"])
    session.expire_all()
    rows = {r.start_at: r.booked for r in session.scalars(select(BookingSlot))}
    assert rows[target] == 1
    loser = first if outcomes[0] == "slot_full" else second
    kept = session.get(Appointment, loser.appointment.id)
    assert kept.start_at == loser.appointment.start_at and kept.status == "booked" and kept.sequence == 0
    assert rows[kept.start_at] == 1


def test_cancel_then_rebook_and_move_by_one_interval_at_capacity_one(session):
    make_branch(session, "ny", "America/New_York", [["09:00", "17:00"]], counters=1, minutes=30)
    now = utc(2026, 6, 1, 12, 0)
    start = local(NY, 2026, 6, 2, 10, 0)
    made = book(session, "ny", start, "+12125550001", now=now)
    with pytest.raises(Conflict) as full:
        book(session, "ny", start, "+12125550002", now=now)
    assert full.value.code == "slot_full"
    # A 30-minute visit covers 10:00 and 10:15; moving it to 10:15 must not be blocked by itself.
    moved = booking.reschedule(session, made.manage_token, local(NY, 2026, 6, 2, 10, 15), now=now)
    assert moved.start_at == local(NY, 2026, 6, 2, 10, 15) and moved.sequence == 1
    assert book(session, "ny", local(NY, 2026, 6, 2, 9, 45), "+12125550003", now=now).appointment.status == "booked"
    with pytest.raises(Conflict):  # 10:00-10:30 overlaps the moved 10:15 booking
        book(session, "ny", start, "+12125550004", now=now)
    cancelled = booking.cancel(session, made.manage_token, now=now)
    assert (cancelled.status, cancelled.sequence) == ("cancelled", 2)
    rebooked = book(session, "ny", local(NY, 2026, 6, 2, 10, 15), "+12125550002", now=now)
    assert rebooked.appointment.status == "booked"
    with pytest.raises(Conflict) as again:
        booking.cancel(session, made.manage_token, now=now)
    assert again.value.code == "not_booked"


def test_change_cutoff_in_a_negative_offset_zone(session):
    make_branch(session, "ny", "America/New_York", [["09:00", "17:00"]], counters=2,
                rules={"change_cutoff_minutes": 120})
    made = book(session, "ny", local(NY, 2026, 12, 3, 14, 0), "+12125550001", now=utc(2026, 12, 1, 12, 0))
    # 11:59 EST (16:59 UTC) is still two hours before 14:00 EST (19:00 UTC): it moves to 14:15...
    booking.reschedule(session, made.manage_token, local(NY, 2026, 12, 3, 14, 15), now=local(NY, 2026, 12, 3, 11, 59))
    # ...and from 12:16 EST on, two hours before 14:15, it cannot move any more...
    with pytest.raises(Conflict) as late:
        booking.reschedule(session, made.manage_token, local(NY, 2026, 12, 3, 15, 0),
                           now=local(NY, 2026, 12, 3, 12, 16))
    assert late.value.code == "cutoff_passed"
    # ...but it can still be cancelled until the visit starts.
    assert booking.cancel(session, made.manage_token, now=local(NY, 2026, 12, 3, 14, 14)).status == "cancelled"


def test_cancel_stays_open_until_the_start_and_refusals_name_the_branch_phone(session):
    make_branch(session, "tp", "Asia/Taipei", [["09:00", "17:00"]], counters=2,
                rules={"change_cutoff_minutes": 60, "min_notice_minutes": 0})
    now = local(TAIPEI, 2026, 6, 1, 9, 10)
    inside = book(session, "tp", local(TAIPEI, 2026, 6, 1, 9, 30), "+886912000001", now=now)
    with pytest.raises(Conflict) as moved:
        booking.reschedule(session, inside.manage_token, local(TAIPEI, 2026, 6, 1, 15, 0), now=now)
    assert moved.value.code == "cutoff_passed" and moved.value.message.endswith("contact the branch.")
    catalogue.update_branch(session, "tp", phone="(212) 555-0123")  # read in the branch's country, US
    assert catalogue.get_branch(session, "tp").phone == "+12125550123"
    with pytest.raises(Invalid) as bad:
        catalogue.update_branch(session, "tp", phone="12345")
    assert bad.value.fields == {"phone": ["not a phone number; write it with its country code, e.g. +886 2 2345 6789."]}
    catalogue.update_branch(session, "tp", phone="+886 2 2345 6789")
    with pytest.raises(Conflict) as moved:
        booking.reschedule(session, inside.manage_token, local(TAIPEI, 2026, 6, 1, 15, 0), now=now)
    assert moved.value.message.endswith("call the branch at +886223456789.")
    started = book(session, "tp", local(TAIPEI, 2026, 6, 1, 9, 45), "+886912000002", now=now)
    with pytest.raises(Conflict) as late:
        booking.cancel(session, started.manage_token, now=local(TAIPEI, 2026, 6, 1, 9, 45))
    assert late.value.code == "visit_started" and "+886223456789" in late.value.message
    assert booking.cancel(session, inside.manage_token, now=local(TAIPEI, 2026, 6, 1, 9, 29)).status == "cancelled"
    catalogue.update_branch(session, "tp", phone="")
    assert catalogue.get_branch(session, "tp").phone is None


def test_slots_inside_the_change_cut_off_are_flagged(session):
    make_branch(session, "tp", "Asia/Taipei", [["09:00", "12:00"]],
                rules={"change_cutoff_minutes": 60, "min_notice_minutes": 0})
    now = local(TAIPEI, 2026, 6, 1, 9, 10)
    [day] = booking.availability(session, "tp", "A", date(2026, 6, 1), 1, now=now)["days"]
    flags = {s.start.astimezone(TAIPEI).strftime("%H:%M"): s.inside_cutoff for s in day["slots"][:6]}
    # 10:15 can be moved until 09:15, after now; 10:00 only until 09:00, before it.
    assert flags == {"09:15": True, "09:30": True, "09:45": True, "10:00": True, "10:15": False, "10:30": False}


def test_booking_refusals_have_their_codes(session):
    make_branch(session, "tp", "Asia/Taipei", [["09:00", "17:00"]], counters=1,
                rules={"max_days_ahead": 10, "max_active_bookings": 2})
    now = local(TAIPEI, 2026, 6, 1, 9, 0)
    cases = {
        "not_a_slot": local(TAIPEI, 2026, 6, 2, 9, 7),
        "too_soon": local(TAIPEI, 2026, 6, 1, 9, 30),
        "outside_window": local(TAIPEI, 2026, 6, 20, 10, 0),
    }
    for code, start in cases.items():
        with pytest.raises(DomainError) as refused:
            book(session, "tp", start, "+886912000000", now=now)
        assert refused.value.code == code
    with pytest.raises(Invalid) as naive:
        book(session, "tp", datetime(2026, 6, 2, 10, 0), "+886912000000", now=now)
    assert naive.value.code == "naive_time"
    book(session, "tp", local(TAIPEI, 2026, 6, 2, 10, 0), "+886912000000", now=now)
    book(session, "tp", local(TAIPEI, 2026, 6, 2, 11, 0), "+886 912 000 000", now=now)
    with pytest.raises(Conflict) as limit:
        book(session, "tp", local(TAIPEI, 2026, 6, 2, 12, 0), "+886912000000", now=now)
    assert limit.value.code == "limit_reached"
    with pytest.raises(NotFound):
        booking.find_by_token(session, "nope")


def test_idempotency_key_returns_the_same_booking(session):
    make_branch(session, "tp", "Asia/Taipei", [["09:00", "17:00"]], counters=3)
    now = local(TAIPEI, 2026, 6, 1, 9, 0)
    first = book(session, "tp", local(TAIPEI, 2026, 6, 2, 10, 0), "+886912000001", now=now, idempotency_key="tap-1")
    again = book(session, "tp", local(TAIPEI, 2026, 6, 2, 10, 0), "+886912000001", now=now, idempotency_key="tap-1")
    assert again.replayed and again.appointment.id == first.appointment.id and again.manage_token == first.manage_token
    assert session.scalar(select(BookingSlot.booked)) == 1
    booking.sweep_no_shows(session, now=now + timedelta(days=2))
    session.expire_all()
    assert session.get(Appointment, first.appointment.id).idempotency_token is None


def checkin_setup(session):
    make_branch(session, "tp", "Asia/Taipei", [["09:00", "17:00"]], counters=2)
    made = book(session, "tp", local(TAIPEI, 2026, 6, 2, 10, 0), "+886912000001", now=local(TAIPEI, 2026, 6, 1, 9, 0))
    return made


def test_check_in_twice_and_five_at_once_gives_one_ticket(app, session):
    made = checkin_setup(session)
    code = made.appointment.check_in_code
    at = local(TAIPEI, 2026, 6, 2, 9, 45)
    outcomes = race(session.get_bind(), [
        lambda own: booking.check_in(own, "tp", code.lower(), now=at).ticket.id for _ in range(5)
    ])
    assert len(set(outcomes)) == 1 and isinstance(outcomes[0], int)
    again = booking.check_in(session, "tp", code, now=at + timedelta(minutes=1))
    assert again.ticket.id == outcomes[0] and again.tracking_token is None
    assert session.scalar(select(Ticket).where(Ticket.id == outcomes[0])).priority == "appointment"
    assert len(session.scalars(select(Ticket)).all()) == 1


def test_a_checked_in_booking_is_ordered_by_its_start_not_its_arrival(session):
    checkin_setup(session)
    early = booking.book(session, "tp", "A", local(TAIPEI, 2026, 6, 2, 10, 0), name="B", phone="+886912000002",
                         now=local(TAIPEI, 2026, 6, 1, 9, 0))
    walk_in = queueing.issue_ticket(session, "tp", "A", now=local(TAIPEI, 2026, 6, 2, 9, 50)).ticket
    arrived = booking.check_in(session, "tp", early.appointment.check_in_code, now=local(TAIPEI, 2026, 6, 2, 9, 40))
    counter = session.scalar(select(queueing.Counter.id).where(queueing.Counter.name == "Desk 1"))
    # The booking arrived first but waits for its 10:00 start; the 09:50 walk-in goes first.
    assert queueing.call_next(session, counter, now=local(TAIPEI, 2026, 6, 2, 9, 55)).id == walk_in.id
    queueing.finish(session, walk_in.id, now=local(TAIPEI, 2026, 6, 2, 9, 58))
    assert queueing.call_next(session, counter, now=local(TAIPEI, 2026, 6, 2, 10, 0)).id == arrived.ticket.id


def test_check_in_refusals_have_distinct_codes(session):
    made = checkin_setup(session)
    catalogue.create_branch(session, "other", "Other", "Asia/Taipei")
    code = made.appointment.check_in_code
    cases = [
        ("tp", "ZZZZZZZZ", local(TAIPEI, 2026, 6, 2, 10, 0), "unknown_code"),
        ("other", code, local(TAIPEI, 2026, 6, 2, 10, 0), "other_branch"),
        ("tp", code, local(TAIPEI, 2026, 6, 3, 10, 0), "other_day"),
        ("tp", code, local(TAIPEI, 2026, 6, 2, 9, 29), "too_early"),
        ("tp", code, local(TAIPEI, 2026, 6, 2, 10, 11), "too_late"),
    ]
    for slug, tried, at, expected in cases:
        with pytest.raises(DomainError) as refused:
            booking.check_in(session, slug, tried, now=at)
        assert refused.value.code == expected, expected
    booking.cancel(session, made.manage_token, now=local(TAIPEI, 2026, 6, 1, 10, 0))
    with pytest.raises(Conflict) as cancelled:
        booking.check_in(session, "tp", code, now=local(TAIPEI, 2026, 6, 2, 10, 0))
    assert cancelled.value.code == "cancelled"


def test_no_show_sweep_counts_strikes_and_pauses_online_booking(session):
    make_branch(session, "tp", "Asia/Taipei", [["09:00", "17:00"]], counters=2,
                rules={"strike_limit": 2, "max_active_bookings": 5})
    now = local(TAIPEI, 2026, 6, 1, 8, 0)
    for hour in (10, 11):
        book(session, "tp", local(TAIPEI, 2026, 6, 1, hour, 0), "+886912000009", now=now)
    assert booking.sweep_no_shows(session, now=local(TAIPEI, 2026, 6, 1, 10, 14)) == 0  # within grace
    assert booking.sweep_no_shows(session, now=local(TAIPEI, 2026, 6, 1, 10, 16)) == 1
    assert booking.sweep_no_shows(session, now=local(TAIPEI, 2026, 6, 1, 10, 16)) == 0  # idempotent
    # Down for hours: the sweep catches up.
    assert booking.sweep_no_shows(session, now=local(TAIPEI, 2026, 6, 1, 16, 0)) == 1
    with pytest.raises(Conflict) as blocked:
        book(session, "tp", local(TAIPEI, 2026, 6, 3, 10, 0), "+886912000009", now=local(TAIPEI, 2026, 6, 1, 16, 0))
    assert blocked.value.code == "strikes_exceeded"
    # Unproven bookings (anyone may type a number): the pause is on these typed contacts only,
    # the record behind the phone gets no strikes (customers/identity.py).
    customer = session.scalar(select(Appointment)).customer
    assert customer.strikes == 0 and customer.booking_blocked_until is None
    admin = session.scalar(select(Staff).where(Staff.role == "admin"))
    booking.lift_block(session, customer.id, admin, now=local(TAIPEI, 2026, 6, 1, 16, 0))
    assert book(session, "tp", local(TAIPEI, 2026, 6, 3, 10, 0), "+886912000009",
                now=local(TAIPEI, 2026, 6, 1, 16, 1)).appointment.status == "booked"
