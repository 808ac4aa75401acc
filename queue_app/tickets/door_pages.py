"""The branch's door sign for remote tickets' "I'm here" (/door/<slug>): today's QR
(qr.here_url, remote_rules.here_code) large, with the branch's name and one line of instruction.

Staff of the branch only: the code marks tickets arrived, so it is shown at the branch, not
published. Printable (A4, no navigation); a tablet left on it at the door reloads after the
branch's local midnight, when the code changes.
"""
import time
from datetime import datetime, timedelta

from flask import Blueprint, make_response, render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import login_required

from queue_app.accounts.roles import staff_branch
from queue_app.core.languages import branch_locale, requested_locale
from queue_app.core.models import utcnow
from queue_app.tickets import numbering
from queue_app.tickets.qr import here_url, qr_svg
from queue_app.web.dates import long_date

bp = Blueprint("door", __name__)

# Reload a little after midnight rather than on it: the tablet's corrected clock may be a few
# seconds ahead of the server's, and an early reload would fetch yesterday's code again.
RELOAD_AFTER_MIDNIGHT = timedelta(seconds=30)


def next_local_midnight(now: datetime, zone) -> datetime:
    """The instant (UTC) the branch's next local day begins; where a DST jump skips midnight,
    the instant of the jump."""
    tomorrow = numbering.local_day(now, zone) + timedelta(days=1)
    return datetime.combine(tomorrow, datetime.min.time(), tzinfo=zone).astimezone(now.tzinfo)


@bp.get("/door/<slug>")
@login_required
def door(slug):
    branch = staff_branch(slug)  # 404 unknown, 403 another branch's staff
    locale = requested_locale(branch_locale(branch))
    with force_locale(locale):
        if not branch.allow_remote_tickets:
            page = render_template(
                "errors/http.html", status=403, title=_("No \"I'm here\" code at this branch"),
                message=_("%(branch)s does not take tickets joined from home, so there is no code to put on its door.",
                          branch=branch.name))
            return make_response(page, 403)
        now = utcnow()
        link = here_url(branch)
        reload_at = next_local_midnight(now, branch.zone) + RELOAD_AFTER_MIDNIGHT
        page = render_template(
            "tickets/door.html", branch=branch, here_link=link, here_qr=qr_svg(link, _("I'm here")),
            # Printed, the sign says which day it is good for (the code changes at midnight).
            valid_on=long_date(numbering.local_day(now, branch.zone)),
            # The tablet's own clock may be wrong: the page corrects it by the server's time.
            reload_at_ms=int(reload_at.timestamp() * 1000), server_time_ms=int(time.time() * 1000),
        )
    response = make_response(page)
    response.headers["Cache-Control"] = "no-store"  # never yesterday's code from a cache
    return response
