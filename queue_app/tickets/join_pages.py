"""Join the queue from a phone (/j/<slug>), and "I'm here" by the branch's daily code
(/here/<slug>/<code>, the QR on the door and the kiosk).

Both pages are clients of the API (tickets/remote_api.py): the page asks for a code, then joins
with it and the trip time, and opens the ticket's tracking page (/t/<token>), which says when to
leave and has the "I'm here" button. The tracking page keeps its token in the phone's storage, so
that scanning the door's code later marks that ticket arrived.
"""
from flask import Blueprint, current_app, make_response, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from queue_app.catalogue.models import Branch, Service
from queue_app.catalogue.operations import get_branch
from queue_app.core.errors import NotFound
from queue_app.core.extensions import db, limiter
from queue_app.core.languages import LANGUAGE_NAMES
from queue_app.core.models import utcnow
from queue_app.tickets import numbering, remote_rules
from queue_app.tickets.read_models import queue_summary
from queue_app.web.dates import current_language

bp = Blueprint("join", __name__)


def _branch_or_none(slug: str) -> Branch | None:
    try:
        return get_branch(db.session, slug)
    except NotFound:
        return None


def _refusal(title: str, text: str, status: int):
    page = render_template("tickets/join_refused.html", title=title, text=text, locale=current_language(),
                           languages=LANGUAGE_NAMES)
    return make_response(page, status)


def error_messages() -> dict:
    """The API's refusals in the page's words, by error code."""
    return {
        "invalid_field": _("Please check the highlighted fields."),
        "contact_missing": _("Give a mobile number or an e-mail address."),
        "code_wrong": _("That code is not right. Check the message and try again."),
        "code_expired": _("This code is no longer valid. Ask for a new one."),
        "too_many_tries": _("Too many wrong codes. Ask for a new one."),
        "rate_limited": _("Too many codes were asked for. Please wait a few minutes."),
        "remote_not_allowed": _("This branch does not take tickets from phones away from it."),
        "walk_in_disabled": _("This service takes booked visits only."),
        "here_code_wrong": _("This is not today's code of the branch. Scan the code at the branch."),
        "not_remote": _("This ticket was taken at the branch: there is nothing to report."),
        "failed": _("That did not work. Please try again."),
        "offline": _("No connection. Check your network and try again."),
    }


@bp.get("/j/<slug>")
def join_page(slug):
    branch = _branch_or_none(slug)
    if branch is None:
        return _refusal(_("Branch not found"), _("There is no branch at this address. Please choose one from the list."),
                        404)
    if not branch.allow_remote_tickets:
        return _refusal(_("Tickets at the branch only"),
                        _("%(branch)s gives tickets at its kiosks only. Please come by and take one there.",
                          branch=branch.name), 403)
    services = db.session.scalars(
        select(Service).where(Service.branch_id == branch.id, Service.active.is_(True),
                              Service.walk_in_enabled.is_(True)).order_by(Service.code)
    ).all()
    summary = queue_summary(db.session, branch)
    waiting = {row["service"]: row for row in summary["waiting"]}
    low, high = remote_rules.TRAVEL_ON_PAGE
    return render_template(
        "tickets/join.html", branch=branch, services=services, waiting=waiting, locale=current_language(),
        languages=LANGUAGE_NAMES, travel_low=low, travel_high=high, margin=branch.set_off_margin_minutes,
        code_url=url_for("api_remote_tickets.send_code", slug=branch.slug),
        join_url=url_for("api_remote_tickets.join", slug=branch.slug), messages=error_messages(),
    )


@bp.get("/here/<slug>/<code>")
@limiter.limit(lambda: current_app.config["LOOKUP_RATE_LIMIT"])
def here(slug, code):
    """Opened by scanning the branch's QR: today's code marks this phone's remote ticket arrived."""
    branch = _branch_or_none(slug)
    today = numbering.local_day(utcnow(), branch.zone) if branch is not None else None
    if branch is None or not remote_rules.is_here_code(current_app.config["SECRET_KEY"], branch.id, today, code):
        return _refusal(_("This code is not valid today"),
                        _("Scan the code at the branch's door or kiosk: it changes every day."), 404)
    response = make_response(render_template(
        "tickets/here.html", branch=branch, code=code.upper(), locale=current_language(), languages=LANGUAGE_NAMES,
        messages=error_messages(), arrived_url=url_for("api_remote_tickets.arrived", token="TOKEN"),
        track_url=url_for("public.track", token="TOKEN"),
    ))
    response.headers["Cache-Control"] = "no-store"
    return response

