"""REST: branch statistics over a date range (managers of the branch, admins); planning/reports.py."""
from flask_smorest import Blueprint

from queue_app.accounts.access import require_staff
from queue_app.catalogue import operations as catalogue
from queue_app.core.extensions import db
from queue_app.core.models import utcnow
from queue_app.planning import reports
from queue_app.planning.schemas import StatsQuery, StatsSchema
from queue_app.tickets import numbering

blp = Blueprint("api_reports", __name__, description="Branch statistics")
BEARER = [{"bearer": []}]


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
