"""Customer pages: the manager's customer dashboard (segments, churn list, feedback), a customer's
record with history, export and erasure, the admin audit log, and the feedback form on phones.

Access is the domain's one rule (customer_access.visible_branches / require_branch); a refusal is a 403.
"""
import json

from flask import Blueprint, abort, current_app, flash, make_response, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from queue_app.accounts.models import Staff
from queue_app.accounts.roles import role_required
from queue_app.audit import log_lines as audit_page
from queue_app.catalogue import operations as catalogue
from queue_app.core.errors import DomainError, Forbidden, NotFound
from queue_app.core.extensions import db, limiter
from queue_app.core.languages import LANGUAGE_NAMES
from queue_app.customers import access as customer_access
from queue_app.customers import churn as customer_churn
from queue_app.customers import feedback as customer_feedback
from queue_app.customers import operations as customers
from queue_app.customers import privacy as customer_privacy
from queue_app.customers import standing as customer_standing
from queue_app.customers.labels import SEGMENT_LABELS
from queue_app.customers.models import SEGMENTS
from queue_app.tickets import queueing
from queue_app.web.input_rules import InputRejected, clean_text, text_problem

bp = Blueprint("customer_pages", __name__)

REASON_LABELS = {"interval_exceeded": _l("Usual interval exceeded"), "valued_unseen": _l("Valued, not seen")}
KIND_LABELS = {"ticket": _l("Visit"), "booking": _l("Booking"), "cancellation": _l("Cancellation"),
               "rating": _l("Rating")}


def _branch(slug: str):
    try:
        branch = catalogue.get_branch(db.session, slug)
    except NotFound:
        abort(404)
    try:
        customer_access.require_branch(current_user, branch)
    except Forbidden:
        abort(403)
    return branch


def _local(moment, zone):
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


@bp.get("/manage/branches/<slug>/customers")
@login_required
@role_required("manager")
def dashboard(slug):
    branch = _branch(slug)
    segment = request.args.get("segment") if request.args.get("segment") in SEGMENTS else None
    overview = customer_standing.segment_overview(db.session, branch)
    return render_template(
        "customers/dashboard.html", branch=branch, overview=overview, segment=segment,
        standings=customer_standing.standings(db.session, branch, segment=segment, limit=50),
        alerts=customer_churn.churn_list(db.session, branch),
        feedback=customer_feedback.feedback_summary(db.session, branch),
        rules=customer_standing.rules_for(branch), segment_labels=SEGMENT_LABELS, reason_labels=REASON_LABELS,
        local=lambda m: _local(m, branch.zone), staff_names={s.id: s.name or s.email for s in
                                                              db.session.query(Staff).all()},
    )


@bp.post("/manage/branches/<slug>/customers/recompute")
@login_required
@role_required("manager")
def recompute(slug):
    branch = _branch(slug)
    result = customer_standing.recompute_branch(db.session, branch.slug)
    flash(_("Segments recomputed: %(n)s customers, %(alerts)s new churn alerts.", n=result["standings"],
            alerts=result["new_alerts"]))
    return redirect(url_for(".dashboard", slug=slug))


@bp.post("/manage/branches/<slug>/customers/rules")
@login_required
@role_required("manager")
def update_rules(slug):
    branch = _branch(slug)
    form = request.form
    try:
        values = {"churn_days": int(form.get("churn_days", "")),
                  "high_value_score": float(form.get("high_value_score", "")),
                  "high_loyalty_score": float(form.get("high_loyalty_score", "")),
                  "segment_priority": form.get("segment_priority") == "on"}
        tiers = []
        for name, value, loyalty in zip(form.getlist("tier_name"), form.getlist("tier_value"),
                                        form.getlist("tier_loyalty")):
            if name.strip():
                tiers.append({"name": name.strip().lower(), "min_value": float(value or 0),
                              "min_loyalty": float(loyalty or 0)})
        values["tiers"] = tiers
        customer_standing.update_rules(db.session, branch.slug, values)
    except ValueError:
        flash(_("Enter numbers in every field."), "error")
    except DomainError as error:
        flash(error.message, "error")
    else:
        flash(_("Customer settings saved; they apply from the next recompute."))
    return redirect(url_for(".dashboard", slug=slug))


@bp.post("/manage/churn-alerts/<int:alert_id>/contacted")
@login_required
@role_required("manager")
def contacted(alert_id):
    try:
        alert = customer_churn.mark_contacted(db.session, alert_id, current_user)
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)
    flash(_("Marked as contacted."))
    branch = db.session.get(customers.Branch, alert.branch_id)
    return redirect(url_for(".dashboard", slug=branch.slug) + "#churn")


def _visible(customer_id: int):
    try:
        return customer_access.visible_branches(db.session, current_user, customer_id)
    except NotFound:
        abort(404)
    except Forbidden:
        abort(403)


@bp.get("/customers/<int:customer_id>")
@login_required
def record(customer_id):
    branch_ids = _visible(customer_id)
    customer = customers.get_customer(db.session, customer_id)
    card = customers.summary(db.session, customer, branch_ids)
    entries = customers.history(db.session, customer_id, branch_ids)
    customers.record_view(db.session, customer_id, current_user)
    from zoneinfo import ZoneInfo

    return render_template(
        "customers/record.html", customer=customer, contacts=customers.contact_view(customer, current_user),
        standings=card["standings"], entries=entries,
        branches={s.branch_id: db.session.get(customers.Branch, s.branch_id) for s in card["standings"]},
        local=lambda m, zone: _local(m, ZoneInfo(zone)), segment_labels=SEGMENT_LABELS, kind_labels=KIND_LABELS,
        manager=current_user.has_role("manager"),
    )


@bp.get("/customers/<int:customer_id>/export.json")
@login_required
@role_required("manager")
def export(customer_id):
    _visible(customer_id)
    data = customer_privacy.export(db.session, customer_id, current_user)
    response = make_response(json.dumps(data, ensure_ascii=False, indent=2))
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="customer-{customer_id}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/customers/<int:customer_id>/erase")
@login_required
@role_required("manager")
def erase(customer_id):
    _visible(customer_id)
    if request.form.get("confirm") != "erase":
        flash(_("Type erase to confirm."), "error")
        return redirect(url_for(".record", customer_id=customer_id))
    customer_privacy.erase(db.session, customer_id, current_user)
    flash(_("The customer's personal data was erased; their visits stay as anonymous statistics."))
    return redirect(url_for("manage.index"))


@bp.get("/manage/audit")
@login_required
@role_required("admin")
def audit_log():
    if any(text_problem(value) for value in request.args.values()):
        abort(400)
    return render_template("audit/log.html", **audit_page.page_data(db.session, request.args))


# --- feedback on the phone -----------------------------------------------------------------------

def _feedback_page(ticket, action_url: str, channel: str):
    state = customer_feedback.feedback_state(db.session, ticket)
    status = 200
    if request.method == "POST" and state == "open":
        try:
            rating = int(request.form.get("rating", ""))
            nps_text = request.form.get("nps", "")
            nps = int(nps_text) if nps_text != "" else None
            comment = clean_text(request.form.get("comment", ""), trim=False)
            customer_feedback.submit_feedback(db.session, ticket.id, rating, nps, comment, channel=channel)
        except InputRejected:
            flash(_("This contains characters that cannot be saved."), "error")
            status = 400
        except (ValueError, DomainError):
            flash(_("Choose a rating from 1 to 5."), "error")
            status = 400  # a refused form, as on every other page
        else:
            state = "thanks"
    response = make_response(render_template(
        "customers/feedback.html", ticket=ticket, branch=ticket.branch, state=state, action_url=action_url,
        locale=str(get_locale()), languages=LANGUAGE_NAMES), status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/t/<token>/feedback", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOOKUP_RATE_LIMIT"], methods=["POST"])
def ticket_feedback(token):
    try:
        ticket = queueing.find_by_token(db.session, token)
    except NotFound:
        return render_template("tickets/ticket_missing.html"), 404
    return _feedback_page(ticket, url_for(".ticket_feedback", token=token), "tracking")


@bp.route("/f/<token>", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOOKUP_RATE_LIMIT"], methods=["POST"])
def mailed_feedback(token):
    try:
        ticket = customer_feedback.ticket_for_feedback_token(db.session, token)
    except NotFound:
        return render_template("tickets/ticket_missing.html"), 404
    return _feedback_page(ticket, url_for(".mailed_feedback", token=token), "mail")
