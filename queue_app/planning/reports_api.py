"""REST: branch statistics over a date range (managers of the branch, admins); planning/reports.py."""
from flask_smorest import Blueprint

from queue_app.accounts.access import require_staff
from queue_app.catalogue import operations as catalogue
from queue_app.core.extensions import db
from queue_app.core.models import utcnow
from queue_app.planning import estimate_accuracy, reports
from queue_app.planning.schemas import StatsQuery, StatsSchema
from queue_app.tickets import numbering

blp = Blueprint("api_reports", __name__, description="Branch statistics")
BEARER = [{"bearer": []}]


@blp.route("/branches/<string:slug>/stats", methods=["GET"])
@blp.arguments(StatsQuery(), location="query")
@blp.response(200, StatsSchema)
@blp.doc(security=BEARER)
def stats(query, slug):
    """Arrivals, waits, service level, no-shows and abandonment per interval, day, service and counter.

    With `estimate_accuracy`: the wait estimates shown at issue against the waits that followed."""
    branch = catalogue.get_branch(db.session, slug)
    require_staff("manager", branch_id=branch.id)
    now = utcnow()
    today = numbering.local_day(now, branch.zone)
    first = query.get("from_")
    last = query.get("to")
    first, last = reports.parse_range(first.isoformat() if first else None, last.isoformat() if last else None, today)
    result = reports.branch_stats(db.session, branch, first, last, now).as_dict()
    result["estimate_accuracy"] = estimate_accuracy.estimate_accuracy(db.session, branch, first, last, now).as_dict()
    result["from_"] = result.pop("from")
    return result
