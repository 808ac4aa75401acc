"""The lobby display (a TV): now serving per counter, recent calls, waiting per service, clock.

Public on purpose: it shows numbers and counters only, never names or contact data (the
snapshot it renders and the socket events it listens to carry none). A call is announced (spoken
and shown in the bottom bar) in the display's own language, or, when the branch lists
announcement languages, in each of those in turn ("zh_Hant" then "en").
"""
import time

from flask import Blueprint, abort, render_template
from flask_babel import force_locale
from flask_babel import gettext as _

from queue_app.catalogue import operations as catalogue
from queue_app.core.errors import NotFound
from queue_app.core.extensions import db
from queue_app.core.languages import LANGUAGE_NAMES, branch_locale, requested_locale, speech_language
from queue_app.realtime.live import branch_snapshot
from queue_app.web.dates import INTL_TAGS

bp = Blueprint("display", __name__, url_prefix="/display")


def announcements(branch, page_locale: str) -> list[dict]:
    """The call and recall sentences, with {label} and {counter} to fill in, per announced language."""
    languages = [code for code in (branch.announcement_languages or []) if code in LANGUAGE_NAMES] or [page_locale]
    sentences = []
    for code in languages:
        with force_locale(code):
            sentences.append({
                "language": code,
                "speech_lang": speech_language(code),
                "call": _("Ticket %(label)s, please go to %(counter)s", label="{label}", counter="{counter}"),
                "recall": _("Calling again: ticket %(label)s, please go to %(counter)s",
                            label="{label}", counter="{counter}"),
            })
    return sentences


@bp.get("/<slug>")
def lobby_screen(slug):
    try:
        branch = catalogue.get_branch(db.session, slug)
    except NotFound:
        abort(404)
    snapshot = branch_snapshot(db.session, branch)
    locale = requested_locale(branch_locale(branch))
    with force_locale(locale):
        return render_template(
            "tickets/display.html", branch=branch, snapshot=snapshot, announcements=announcements(branch, locale),
            # The clock's date reads as on the other pages (CLDR forms: "Sunday 6 December", "12月6日 星期日").
            clock_lang=INTL_TAGS[locale],
            # The TV's own clock may be wrong (no NTP in many lobbies): the page corrects by this.
            server_time_ms=int(time.time() * 1000),
        )
