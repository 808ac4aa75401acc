"""The lobby display (a TV): now serving per counter, recent calls, waiting per service, clock.

Public on purpose: it shows numbers and counters only, never names or contact data (the
snapshot it renders and the socket events it listens to carry none). Announcements are spoken
in the branch's language, whatever language the page text is in.
"""
import time

from flask import Blueprint, abort, render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from queue_app.domain import catalogue
from queue_app.domain.errors import NotFound
from queue_app.extensions import db
from queue_app.realtime import branch_snapshot
from queue_app.web.screens import branch_locale, requested_locale, speech_language

bp = Blueprint("display", __name__, url_prefix="/display")


@bp.get("/<slug>")
def lobby_screen(slug):
    try:
        branch = catalogue.get_branch(db.session, slug)
    except NotFound:
        abort(404)
    snapshot = branch_snapshot(db.session, branch)
    spoken = branch_locale(branch)
    with force_locale(spoken):
        announcement = {
            "call": _("Ticket %(label)s, please go to %(counter)s", label="{label}", counter="{counter}"),
            "recall": _("Calling again: ticket %(label)s, please go to %(counter)s", label="{label}", counter="{counter}"),
        }
    locale = requested_locale(spoken)
    with force_locale(locale):
        return render_template(
            "display/index.html", branch=branch, snapshot=snapshot, announcement=announcement,
            speech_lang=speech_language(spoken), clock_lang=speech_language(locale),
            # The TV's own clock may be wrong (no NTP in many lobbies): the page corrects by this.
            server_time_ms=int(time.time() * 1000),
        )
