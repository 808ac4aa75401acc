"""The simulator books through the product's slot capacity (planning.py, booking.py).

With a week of history the branch has a staffing plan; the played day's bookings are claimed in
BookingSlot rows against the plan's booking slots (counters x (1 - walk-in reserve) - forecast
walk-in load), so no interval holds more bookings than the plan leaves room for; wanted times
that are full move to the nearest time with room or come as walk-ins.
"""
from helpers import lines, short_scenario
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from queue_app.booking.models import Appointment, BookingSlot
from queue_app.demo.scenarios import parse_scenario
from queue_app.demo.simulation import simulate
from queue_app.planning.models import StaffingPlan


def test_played_bookings_never_exceed_the_plans_booking_slots(tmp_path):
    wanted_per_30 = 6
    scenario = parse_scenario(short_scenario(days=1, appointments={
        "per_30_minutes": wanted_per_30, "no_show_rate": 0.0,
        "arrival_offset_minutes": {"distribution": "normal", "mean": -5, "sd": 3}}))
    simulate(scenario, 3, tmp_path / "r.jsonl", database=tmp_path / "sim.sqlite", history_days=7,
             within_capacity=True)
    played_day = scenario.open_days(1)[0]
    with Session(create_engine(f"sqlite:///{tmp_path / 'sim.sqlite'}")) as session:
        assert session.scalar(select(func.count(StaffingPlan.id)).where(StaffingPlan.local_date == played_day))
        slots = session.execute(select(BookingSlot.booked, BookingSlot.capacity)
                                .join(Appointment, Appointment.service_id == BookingSlot.service_id)
                                .where(Appointment.local_date == played_day)).all()
        booked = session.scalar(select(func.count(Appointment.id)).where(Appointment.local_date == played_day))
    assert slots and all(taken <= capacity for taken, capacity in slots)
    wanted = wanted_per_30 * 4  # a two-hour day
    assert booked < wanted  # the plan left room for fewer: the others moved or walked in
    rows = lines(tmp_path / "r.jsonl")
    assert sum(r["kind"] == "appointment" for r in rows) == booked  # everyone came (no no-shows)
