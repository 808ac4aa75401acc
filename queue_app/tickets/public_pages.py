"""Public pages: the branch list with live waits (book, join, lobby display), the embeddable waits
widget, a ticket's live page (the QR target)."""
from datetime import datetime

from flask import Blueprint, current_app, make_response, redirect, render_template, url_for
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import WEEKDAYS, Branch
from queue_app.core.errors import NotFound
from queue_app.core.extensions import db, limiter
from queue_app.core.languages import LANGUAGE_NAMES, branch_locale, requested_locale
from queue_app.core.models import utcnow
from queue_app.tickets import branch_waits, numbering, queueing
from queue_app.tickets import read_models as lobby
from queue_app.web.dates import long_date

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


def _opening_text(figures: dict, now: datetime) -> str:
    """"Open now", "Opens at 09:00", "Opens tomorrow at 09:00", "Opens Monday, 7 December 2026 at
    09:00" (branch local time), or "Closed for now" when no opening is planned within two weeks."""
    if figures["open_now"]:
        return _("Open now")
    if not figures["opens_at"]:
        return _("Closed for now")
    opens = datetime.fromisoformat(figures["opens_at"])
    days = (opens.date() - now.astimezone(opens.tzinfo).date()).days
    time = opens.strftime("%H:%M")
    if days == 0:
        return _("Opens at %(time)s", time=time)
    if days == 1:
        return _("Opens tomorrow at %(time)s", time=time)
    return _("Opens %(day)s at %(time)s", day=long_date(opens.date()), time=time)


def _join_url(slug: str, locale: str) -> str:
    # The join page (/j/<slug>) is its own feature; this is its agreed address.
    return f"/j/{slug}?lang={locale}"


@bp.get("/")
def index():
    """Every branch with its live waits, open now or when it opens; sorted by the shortest wait
    (the page's script can sort by distance from the phone, worked out in the browser)."""
    branches = db.session.scalars(select(Branch).order_by(Branch.name)).all()
    by_slug = {branch.slug: branch for branch in branches}
    found = sorted(branch_waits.waits(db.session, branches), key=branch_waits.wait_key)
    now = utcnow()
    locale = str(get_locale())
    return render_template(
        "tickets/branches.html", branches=found,
        hours={f["slug"]: _hours_today(by_slug[f["slug"]]) for f in found},
        opening={f["slug"]: _opening_text(f, now) for f in found},
        join_urls={f["slug"]: _join_url(f["slug"], locale) for f in found if f["remote_tickets"]},
        locale=locale, languages=LANGUAGE_NAMES,
    )


@bp.get("/embed/waits/<slug>")
def embed_waits(slug):
    """One branch's live waits for an <iframe> on another site (framing allowed: security_headers)."""
    try:
        branch = catalogue.get_branch(db.session, slug)
    except NotFound:
        return render_template("tickets/ticket_missing.html"), 404
    figures = branch_waits.waits(db.session, [branch])[0]
    locale = requested_locale(branch_locale(branch))
    with force_locale(locale):
        response = make_response(render_template(
            "tickets/embed_waits.html", figures=figures, opening=_opening_text(figures, utcnow()),
            join_url=_join_url(slug, locale) if figures["remote_tickets"] else None, locale=locale,
        ))
    response.headers["Cache-Control"] = f"public, max-age={int(branch_waits.CACHE_S)}"
    return response


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
