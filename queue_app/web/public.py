"""Public pages: choose a branch, a ticket's live page (the QR target)."""
from flask import Blueprint, render_template
from sqlalchemy import select

from queue_app.domain import queueing
from queue_app.domain.errors import NotFound
from queue_app.domain.estimates import estimate_wait
from queue_app.extensions import db
from queue_app.models import Branch

bp = Blueprint("public", __name__)


@bp.get("/")
def index():
    branches = db.session.scalars(select(Branch).order_by(Branch.name)).all()
    return render_template("public/index.html", branches=branches)


@bp.get("/t/<token>")
def track(token):
    try:
        ticket = queueing.find_by_token(db.session, token)
    except NotFound:
        return render_template("public/ticket_missing.html"), 404
    ahead = queueing.people_ahead(db.session, ticket)
    estimate = estimate_wait(db.session, ticket, ahead)
    return render_template("public/ticket.html", ticket=ticket, ahead=ahead, estimate=estimate)
