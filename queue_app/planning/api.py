"""REST: a branch's arrival forecast and staffing plan (managers of the branch, admins)."""
from datetime import date, datetime

from flask_smorest import Blueprint
from sqlalchemy import select

from queue_app.accounts.access import require_staff
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Service
from queue_app.core.extensions import db
from queue_app.core.models import utcnow
from queue_app.planning import plan as planning
from queue_app.planning.models import ArrivalForecast
from queue_app.planning.schemas import ForecastDay, PlanDayQuery, PlanRecomputed, StaffingDay, StaffingOverrideRequest
from queue_app.tickets import numbering
from queue_app.web.api import abort
from queue_app.web.api.serialize import local_iso

blp = Blueprint("api_planning", __name__, description="Arrival forecast and staffing plan")
BEARER = [{"bearer": []}]


def _branch(slug: str):
    branch = catalogue.get_branch(db.session, slug)
    require_staff("manager", branch_id=branch.id)
    return branch


def _day(branch, query) -> date:
    return query.get("date") or numbering.local_day(utcnow(), branch.zone)


def _plan_day(branch, day: date) -> dict:
    rows = planning.plan_of_day(db.session, branch, day)
    return {"branch": branch.slug, "date": day, "intervals": [
        {"start": local_iso(p.starts_at, branch.zone), "minutes": p.minutes, "forecast_arrivals": round(p.forecast_arrivals, 3),
         "offered_load": round(p.offered_load, 3), "counters_planned": p.counters_planned,
         "counters_override": p.counters_override, "counters": p.counters, "booking_slots": p.booking_slots,
         "booking_slots_override": p.booking_slots_override, "slots": p.slots}
        for p in rows]}


@blp.route("/branches/<string:slug>/forecast", methods=["GET"])
@blp.arguments(PlanDayQuery(), location="query")
@blp.response(200, ForecastDay)
@blp.doc(security=BEARER)
def get_forecast(query, slug):
    """Forecast arrivals per interval and service for a day (walk-ins with their 10-90 % band, bookings)."""
    branch = _branch(slug)
    day = _day(branch, query)
    rows = db.session.execute(
        select(ArrivalForecast, Service.code).join(Service, Service.id == ArrivalForecast.service_id)
        .where(ArrivalForecast.branch_id == branch.id, ArrivalForecast.local_date == day)
        .order_by(ArrivalForecast.starts_at, Service.code)
    ).all()
    intervals: dict[datetime, dict] = {}
    for row, code in rows:
        interval = intervals.setdefault(row.starts_at, {"start": local_iso(row.starts_at, branch.zone),
                                                        "minutes": row.minutes, "services": []})
        interval["services"].append({"service": code, "walk_in_mean": round(row.walk_in_mean, 3),
                                     "walk_in_p10": round(row.walk_in_p10, 3), "walk_in_p90": round(row.walk_in_p90, 3),
                                     "booking_mean": row.booking_mean})
    return {"branch": branch.slug, "date": day, "intervals": list(intervals.values())}


@blp.route("/branches/<string:slug>/staffing", methods=["GET"])
@blp.arguments(PlanDayQuery(), location="query")
@blp.response(200, StaffingDay)
@blp.doc(security=BEARER)
def get_staffing(query, slug):
    """The staffing plan of a day: counters and booking slots per interval, with overrides."""
    branch = _branch(slug)
    return _plan_day(branch, _day(branch, query))


@blp.route("/branches/<string:slug>/staffing", methods=["PUT"])
@blp.arguments(StaffingOverrideRequest())
@blp.response(200, StaffingDay)
@blp.doc(security=BEARER)
def put_staffing(body, slug):
    """Override counters and/or booking slots of one interval (kept by every recompute), or clear them."""
    branch = _branch(slug)
    if not body.get("clear") and body.get("counters") is None and body.get("booking_slots") is None:
        abort(422, "invalid_field", "Give counters, booking_slots or clear.")
    plan = planning.set_override(db.session, branch, body["start"], counters=body.get("counters"),
                                 booking_slots=body.get("booking_slots"), clear=body.get("clear", False))
    return _plan_day(branch, plan.local_date)


@blp.route("/branches/<string:slug>/staffing/recompute", methods=["POST"])
@blp.response(200, PlanRecomputed)
@blp.doc(security=BEARER)
def recompute(slug):
    """Forecast and plan the branch's horizon again now (idempotent; overrides stay)."""
    branch = _branch(slug)
    return {"intervals": planning.plan_branch(db.session, branch)}
