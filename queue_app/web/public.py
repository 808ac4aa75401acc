"""Public pages: choose a branch, a ticket's live page (the QR target)."""
from flask import Blueprint, make_response, render_template
from flask_babel import get_locale
from sqlalchemy import select

from queue_app.domain import lobby, queueing
from queue_app.domain.errors import NotFound
from queue_app.extensions import db
from queue_app.models import Branch
from queue_app.web.screens import LANGUAGE_NAMES

bp = Blueprint("public", __name__)


@bp.get("/")
def index():
    branches = db.session.scalars(select(Branch).order_by(Branch.name)).all()
    return render_template("public/index.html", branches=branches)


@bp.get("/t/<token>")
def track(token):
    """The holder's live page: numbers, position and counter only, never personal data."""
    try:
        ticket = queueing.find_by_token(db.session, token)
    except NotFound:
        return render_template("public/ticket_missing.html"), 404
    status = lobby.ticket_status(db.session, ticket)
    response = make_response(render_template(
        "public/ticket.html", token=token, status=status, branch=ticket.branch,
        locale=str(get_locale()), languages=LANGUAGE_NAMES,
    ))
    # The address is the ticket's only key: keep it out of caches and other sites' Referer logs.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
