"""REST: branch statistics over a date range (managers of the branch, admins); planning/reports.py."""
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from queue_app.accounts.access import require_staff
from queue_app.catalogue import operations as catalogue
from queue_app.core.extensions import db
from queue_app.core.models import utcnow
from queue_app.planning import reports
from queue_app.tickets import numbering
from queue_app.web.api.schemas import StrictSchema
from queue_app.web.input_rules import When

blp = Blueprint("api_reports", __name__, description="Branch statistics")
BEARER = [{"bearer": []}]


class StatsQuery(StrictSchema):
    from_ = When("date", data_key="from",
                 metadata={"description": "First branch-local day; default 6 days before `to`."})
    to = When("date", metadata={"description": "Last branch-local day (inclusive); default today. At most 92 days."})


class Figures(Schema):
    arrivals = fields.Integer(required=True)
    walk_ins = fields.Integer(required=True)
    called = fields.Integer(required=True)
    served = fields.Integer(required=True)
    no_shows = fields.Integer(required=True)
    abandoned = fields.Integer(required=True, metadata={"description": "Left the queue without being called."})
    abandonment = fields.Float(required=True, allow_none=True)
    avg_wait = fields.Float(required=True, allow_none=True, metadata={"description": "Minutes to the first call."})
    p90_wait = fields.Float(required=True, allow_none=True)
    service_level = fields.Float(required=True, allow_none=True,
                                 metadata={"description": "Called within the target wait, of those called or left."})
    avg_visit = fields.Float(required=True, allow_none=True, metadata={"description": "Minutes from call to finish."})


class IntervalFigures(Figures):
    starts_at = fields.String(required=True, metadata={"description": "UTC start of the interval."})
    local = fields.String(required=True, metadata={"description": "Branch local date and time."})
    forecast = fields.Float(required=True, allow_none=True)
    forecast_p10 = fields.Float(required=True, allow_none=True)
    forecast_p90 = fields.Float(required=True, allow_none=True)


class DayFigures(Figures):
    date = fields.String(required=True)


class ServiceFigures(Figures):
    service_id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)


class CounterFigures(Figures):
    counter_id = fields.Integer(required=True)
    name = fields.String(required=True)


class StatsSchema(Schema):
    branch = fields.String(required=True)
    from_ = fields.String(data_key="from", required=True)
    to = fields.String(required=True)
    interval_minutes = fields.Integer(required=True)
    target_wait_minutes = fields.Integer(required=True)
    target = fields.Float(required=True)
    total = fields.Nested(Figures, required=True)
    days = fields.List(fields.Nested(DayFigures), required=True)
    intervals = fields.List(fields.Nested(IntervalFigures), required=True)
    services = fields.List(fields.Nested(ServiceFigures), required=True)
    counters = fields.List(fields.Nested(CounterFigures), required=True)


@blp.route("/branches/<string:slug>/stats", methods=["GET"])
@blp.arguments(StatsQuery, location="query")
@blp.response(200, StatsSchema)
@blp.doc(security=BEARER)
def stats(query, slug):
    """Arrivals, waits, service level, no-shows and abandonment per interval, day, service and counter."""
    branch = catalogue.get_branch(db.session, slug)
    require_staff("manager", branch_id=branch.id)
    today = numbering.local_day(utcnow(), branch.zone)
    first = query.get("from_")
    last = query.get("to")
    first, last = reports.parse_range(first.isoformat() if first else None, last.isoformat() if last else None, today)
    result = reports.branch_stats(db.session, branch, first, last).as_dict()
    result["from_"] = result.pop("from")
    return result
