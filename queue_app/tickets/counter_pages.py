"""Staff login, the list of counters and the counter console.

The console page is a client of the REST API (the same calls a counter app would make), with
the login session and an X-CSRFToken header instead of a bearer token; live waiting counts
come from the branch room of /live. It also lists the day's bookings and books on behalf of a
customer (POST /api/v1/branches/<slug>/appointments as staff: no strike or limit checks).
"""
from itertools import groupby
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from queue_app.accounts import operations as accounts
from queue_app.accounts.forms import LoginForm
from queue_app.booking.page_texts import booking_messages, field_messages, picker_text, status_labels
from queue_app.catalogue.models import Counter, Service
from queue_app.core.errors import Locked, Unauthorized
from queue_app.core.extensions import db, limiter
from queue_app.tickets import read_models as lobby
from queue_app.tickets.queueing import MAX_RECALLS
from queue_app.web.dates import page_calendar
from queue_app.web.errors import API_PREFIX
from queue_app.web.form_fields import COUNTER_STATE_LABELS

bp = Blueprint("staff", __name__)


def _safe_next(target: str | None, staff=None) -> str:
    # Only local paths: an open redirect after login is a phishing aid.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return _landing_page(staff) if staff is not None else url_for("staff.console")


def _landing_page(staff) -> str:
    """Where a sign-in lands without a `next`: counter staff on their counters, a manager of one branch on
    its dashboard, admins and managers of several branches on the branch list (a dashboard link per branch)."""
    if staff.role == "manager" and len(staff.branches) == 1:
        return url_for("dashboard.page", slug=staff.branches[0].slug)
    if staff.has_role("manager"):
        return url_for("manage.index")
    return url_for("staff.console")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        try:
            staff = accounts.authenticate(db.session, form.email.data, form.password.data,
                                          hash_cost=current_app.config["PASSWORD_HASH_COST"])
        except Locked as locked:
            flash(_("Too many failed sign-ins. Try again in %(minutes)s minute(s).",
                    minutes=max(1, -(-locked.retry_after // 60))), "error")
        except Unauthorized:
            flash(_("Wrong e-mail or password."), "error")
        else:
            login_user(staff)
            return redirect(_safe_next(request.args.get("next"), staff))
    return render_template("accounts/login.html", form=form), 400 if request.method == "POST" else 200


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("staff.login"))


@bp.get("/staff")
@login_required
def console():
    branch_ids = None if current_user.role == "admin" else [b.id for b in current_user.branches]
    query = select(Counter).order_by(Counter.branch_id, Counter.name)
    if branch_ids is not None:
        query = query.where(Counter.branch_id.in_(branch_ids))
    counters = db.session.scalars(query).all()
    by_branch = [(branch, list(rows)) for branch, rows in groupby(counters, key=lambda c: c.branch)]
    summaries = {branch.id: lobby.queue_summary(db.session, branch) for branch, _rows in by_branch}
    current = {c["id"]: c["ticket"] for summary in summaries.values() for c in summary["counters"]}
    return render_template("tickets/console.html", by_branch=by_branch, summaries=summaries, current=current,
                           state_labels=COUNTER_STATE_LABELS)


@bp.get("/staff/counters/<int:counter_id>")
@login_required
def counter(counter_id):
    counter = db.session.get(Counter, counter_id)
    if counter is None:
        abort(404)
    if not current_user.can_access_branch(counter.branch_id):
        abort(403)
    services = db.session.scalars(
        select(Service).where(Service.branch_id == counter.branch_id, Service.active.is_(True)).order_by(Service.code)
    ).all()
    return render_template(
        "tickets/counter.html", counter=counter, services=services, max_recalls=MAX_RECALLS,
        state_labels={state: str(label) for state, label in COUNTER_STATE_LABELS.items()},
        ticket_action_url=API_PREFIX + "/tickets/{id}/{action}",
        bookable=[s for s in services if s.booking_enabled],
        booking_text={"picker": picker_text(), "messages": booking_messages(counter.branch),
                      "fields": field_messages(), "status": status_labels(), "calendar": page_calendar()},
    )


@bp.get("/staff/csrf-token")
@login_required
def csrf_token():
    """A fresh CSRF token: the console stays open all day, longer than one token lives."""
    response = jsonify({"csrf_token": generate_csrf()})
    response.headers["Cache-Control"] = "no-store"
    return response
