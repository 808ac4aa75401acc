"""Public pages: choose a branch (book a visit, lobby display), a ticket's live page (the QR target)."""
from flask import Blueprint, current_app, make_response, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from queue_app.catalogue.models import WEEKDAYS, Branch, Service
from queue_app.core.errors import NotFound
from queue_app.core.extensions import db, limiter
from queue_app.core.languages import LANGUAGE_NAMES
from queue_app.core.models import utcnow
from queue_app.tickets import numbering, queueing
from queue_app.tickets import read_models as lobby

bp = Blueprint("public", __name__)


def _hours_today(branch: Branch) -> str | None:
    """"Open today 09:00–12:30, 13:30–17:00" on the branch's own calendar day, or None when closed."""
    today = numbering.local_day(utcnow(), branch.zone)
    if branch.is_closed_on(today):
        return None
    intervals = (branch.opening_hours or {}).get(WEEKDAYS[today.weekday()], [])
    if not intervals:
        return None
    return _("Open today %(hours)s", hours=", ".join(f"{opens}–{closes}" for opens, closes in intervals))


@bp.get("/")
def index():
    branches = db.session.scalars(select(Branch).order_by(Branch.name)).all()
    bookable = set(db.session.scalars(
        select(Service.branch_id).where(Service.active.is_(True), Service.booking_enabled.is_(True)).distinct()
    ))
    return render_template(
        "tickets/branches.html", branches=branches, bookable=bookable,
        hours={branch.id: _hours_today(branch) for branch in branches},
        locale=str(get_locale()), languages=LANGUAGE_NAMES,
    )


@bp.get("/favicon.ico")
def favicon():
    # Browsers ask for /favicon.ico whatever the pages link; the icon itself is an SVG.
    return redirect(url_for("static", filename="favicon.svg"), code=301)


@bp.get("/t/<token>")
@limiter.limit(lambda: current_app.config["TRACK_RATE_LIMIT"])
def track(token):
    """The holder's live page: numbers, position and counter only, never personal data."""
    try:
        ticket = queueing.find_by_token(db.session, token)
    except NotFound:
        return render_template("tickets/ticket_missing.html"), 404
    status = lobby.ticket_status(db.session, ticket)
    response = make_response(render_template(
        "tickets/ticket.html", token=token, status=status, branch=ticket.branch,
        locale=str(get_locale()), languages=LANGUAGE_NAMES,
    ))
    # The address is the ticket's only key: keep it out of caches and other sites' Referer logs.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
