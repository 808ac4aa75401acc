"""Staff login and the counter console."""
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from queue_app.extensions import db, limiter
from queue_app.models import Counter, Staff
from queue_app.security import verify_password
from queue_app.web.forms import LoginForm

bp = Blueprint("staff", __name__)


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect after login is a phishing aid.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("staff.console")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        staff = db.session.scalar(select(Staff).where(Staff.email == form.email.data.strip().lower()))
        if verify_password(staff.password_hash if staff else None, form.password.data) and staff and staff.active:
            login_user(staff)
            return redirect(_safe_next(request.args.get("next")))
        flash(_("Wrong e-mail or password."), "error")
    return render_template("staff/login.html", form=form), 400 if request.method == "POST" else 200


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
    return render_template("staff/console.html", counters=counters)
