"""The manager dashboard: today live, statistics with charts and CSV, the staffing plan with
overrides, the what-if, and the planning settings. Thin views over planning/reports.py,
planning/plan.py, planning/what_if.py and planning/settings.py.

Managers of the branch and admins. Forms post with CSRF, then redirect (a refused settings form
is shown again with its messages, status 400); the JSON endpoints answer errors as
{"error": {"code", "message", "fields"}} with a 4xx status.
"""
import csv
import io
from datetime import date, datetime, timedelta

from flask import Blueprint, flash, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf.csrf import CSRFError

from queue_app.accounts.roles import role_required, staff_branch
from queue_app.core.errors import DomainError, NotFound
from queue_app.core.extensions import db, limiter
from queue_app.core.models import utcnow
from queue_app.planning import estimate_accuracy, reports, what_if
from queue_app.planning import plan as planning
from queue_app.planning import settings as planning_settings
from queue_app.tickets import numbering
from queue_app.web.errors import domain_error_response, error_response, translated
from queue_app.web.input_rules import InputRejected, parse_moment

bp = Blueprint("dashboard", __name__, url_prefix="/manage/branches/<slug>")

SETTING_LABELS = {
    "target": _l("Service level target (share called within the target wait)"),
    "target_wait_minutes": _l("Target wait (minutes)"),
    "max_abandon": _l("Abandonment cap (share who give up)"),
    "walk_in_reserve": _l("Walk-in reserve (share of counters kept from bookings)"),
    "interval_minutes": _l("Interval (minutes: 15, 30 or 60)"),
}




@bp.errorhandler(CSRFError)
def csrf_error(error: CSRFError):
    if request.endpoint == "dashboard.run_what_if":
        return jsonify({"error": {"code": "csrf_failed", "message": _("The page expired; reload it.")}}), 400
    return error


def _setting_errors(error: DomainError) -> dict[str, list[str]]:
    """planning.check_rules' field messages in the page's language (translated by msgid, once)."""
    return {key: [translated(m) for m in messages] for key, messages in error.fields.items()} or \
        {"target": [error.message]}


def _horizon(branch) -> list[date]:
    today = numbering.local_day(utcnow(), branch.zone)
    rules = planning.planning_rules(branch)
    return [today + timedelta(days=i) for i in range(rules.horizon_days)]


def _plan_day(branch, value: str | None) -> date:
    """The chosen day of the horizon, else the first day with a plan (today is closed on a Sunday)."""
    days = _horizon(branch)
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        day = None
    if day in days:
        return day
    planned = reports.planned_days(db.session, branch, days[0], days[-1])
    return min(planned) if planned else days[0]


def _local_time(moment: datetime, zone) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


@bp.get("/dashboard")
@login_required
@role_required("manager")
def page(slug, settings_form=None, settings_errors=None):
    branch = staff_branch(slug)
    now = utcnow()
    today = numbering.local_day(now, branch.zone)
    try:
        first, last = reports.parse_range(request.args.get("from"), request.args.get("to"), today)
        range_error = None
    except DomainError as error:
        first, last = today - timedelta(days=6), today
        range_error = error.message
    stats = reports.branch_stats(db.session, branch, first, last, now)
    accuracy = estimate_accuracy.estimate_accuracy(db.session, branch, first, last, now).as_dict()
    live = reports.today_live(db.session, branch, now)
    day = _plan_day(branch, request.args.get("day"))
    plans = planning.plan_of_day(db.session, branch, day)
    rules = planning.planning_rules(branch)
    settings = settings_form or {k: getattr(rules, k) for k in SETTING_LABELS}
    data = {
        "slug": branch.slug,
        "live_url": url_for(".live", slug=branch.slug),
        "what_if_url": url_for(".run_what_if", slug=branch.slug),
        "day": day.isoformat(),
        "stats": stats.as_dict(),
        "accuracy": {"chart": accuracy["chart"]},
        "live": live,
        "texts": {
            "arrivals": _("Arrivals"), "forecast": _("Forecast"), "band": _("Forecast 10-90 %"),
            "avg_wait": _("Average wait (min)"), "p90_wait": _("90th percentile wait (min)"),
            "service_level": _("Service level (%)"), "target": _("Target"), "minutes": _("minutes"),
            "plan_wait": _("Average wait as planned (min)"), "what_if_wait": _("Average wait with changes (min)"),
            "what_if_p90": _("90th percentile with changes (min)"), "failed": _("The simulation failed."),
            "unreachable": _("The server cannot be reached."), "running": _("Simulating..."),
            "none": "—", "served": _("Served"), "abandoned": _("Abandoned"),
            "summary": _("Counter-hours: %(hours)s with changes, %(plan)s as planned."),
            "updated": _("Updated %(time)s"),
            "accuracy_estimated": _("Estimated wait (min)"), "accuracy_actual": _("Actual wait (min)"),
            "accuracy_mean": _("Average actual wait"), "accuracy_band": _("Actual wait 10-90 %"),
            "accuracy_perfect": _("Estimate = actual"),
        },
    }
    return render_template(
        "planning/dashboard.html", branch=branch, stats=stats, live=live, first=first, last=last,
        range_error=range_error, accuracy=accuracy, day=day, days=_horizon(branch), plans=plans, rules=rules,
        closed={d for d in _horizon(branch) if not planning.day_grid(branch, d, rules.interval_minutes)},
        settings=settings, settings_errors=settings_errors or {}, setting_labels=SETTING_LABELS, data=data,
        local_time=lambda m: _local_time(m, branch.zone), today=today,
    ), 400 if settings_errors else 200


@bp.get("/dashboard/live")
@login_required
@role_required("manager")
def live(slug):
    branch = staff_branch(slug)
    response = jsonify(reports.today_live(db.session, branch))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/stats.csv")
@login_required
@role_required("manager")
def export_csv(slug):
    branch = staff_branch(slug)
    today = numbering.local_day(utcnow(), branch.zone)
    try:
        first, last = reports.parse_range(request.args.get("from"), request.args.get("to"), today)
    except DomainError as error:
        return error_response(400, error.code, error.message, error.fields)  # a bad link: 400, as before
    stats = reports.branch_stats(db.session, branch, first, last)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(reports.csv_rows(stats))
    response = make_response("\ufeff" + buffer.getvalue())  # BOM: spreadsheet programs then read UTF-8
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    filename = f"stats-{branch.slug}-{first.isoformat()}-{last.isoformat()}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/plan/recompute")
@login_required
@role_required("manager")
def recompute(slug):
    branch = staff_branch(slug)
    day = request.form.get("day")
    intervals = planning.plan_branch(db.session, branch)
    if intervals:
        flash(_("Plan recomputed: %(n)s intervals. Overrides were kept.", n=intervals))
    else:
        flash(_("Nothing to plan: the branch has no opening hours in the coming days."), "error")
    return redirect(url_for(".page", slug=slug, day=day) + "#plan")


@bp.post("/plan/override")
@login_required
@role_required("manager")
def override(slug):
    branch = staff_branch(slug)
    form = request.form
    day = form.get("day")
    target = url_for(".page", slug=slug, day=day) + "#plan"
    try:
        starts_at = parse_moment(form.get("starts_at", ""))  # with its offset, 2000-2100
    except InputRejected:
        flash(_("That interval is not in the plan."), "error")
        return redirect(target)
    values = {}
    if form.get("action") != "clear":
        for name in ("counters", "booking_slots"):
            raw = (form.get(name) or "").strip()
            if raw == "":
                continue
            if not raw.isdigit():
                flash(_("Enter whole numbers from 0 to 500."), "error")
                return redirect(target)
            values[name] = int(raw)
        if not values:
            flash(_("Enter counters or booking slots, or clear the override."), "error")
            return redirect(target)
    try:
        plan = planning.set_override(db.session, branch, starts_at, clear=form.get("action") == "clear", **values)
    except NotFound:
        flash(_("That interval is not in the plan; recompute the plan first."), "error")
        return redirect(target)
    except DomainError:
        flash(_("Enter whole numbers from 0 to 500."), "error")
        return redirect(target)
    when = _local_time(plan.starts_at, branch.zone)
    if form.get("action") == "clear":
        flash(_("Override of %(time)s cleared: the computed plan applies.", time=when))
    else:
        flash(_("%(time)s: %(counters)s counters, %(slots)s booking slots.", time=when, counters=plan.counters,
                slots=plan.slots))
    return redirect(target)


@bp.post("/what-if")
@login_required
@role_required("manager")
@limiter.limit("30 per minute")  # each run is a second of CPU
def run_what_if(slug):
    branch = staff_branch(slug)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return jsonify({"error": {"code": "malformed_json", "message": _("Send a JSON object.")}}), 400
    days = _horizon(branch)
    try:
        day = date.fromisoformat(str(body.get("date") or days[0].isoformat()))
    except ValueError:
        day = None
    if day not in days:
        return jsonify({"error": {"code": "invalid_field", "message": _("Choose a day of the plan."),
                                  "fields": {"date": [_("Choose a day of the plan.")]}}}), 422
    try:
        result = what_if.what_if(db.session, branch, day, offset=body.get("offset", 0),
                                 counters=body.get("counters"), replications=body.get("replications", 200),
                                 seed=body.get("seed", 0))
    except NotFound:
        return jsonify({"error": {"code": "plan_not_found",
                                  "message": _("No plan for that day; recompute the plan first.")}}), 404
    except DomainError as error:
        return domain_error_response(error, _(
            "Counters are whole numbers from 0 to 100 per interval; the whole-day change from -100 to 100."))
    return jsonify(result)


@bp.post("/planning-rules")
@login_required
@role_required("manager")
def update_rules(slug):
    branch = staff_branch(slug)
    values = {key: request.form.get(key, "").strip() for key in SETTING_LABELS}
    try:
        _rules, regridded = planning_settings.update_planning_rules(db.session, branch, values)
    except DomainError as error:
        db.session.rollback()
        return page(slug, settings_form=values, settings_errors=_setting_errors(error))
    if regridded:
        flash(_("Planning settings saved. The plan was recomputed on the new interval; overrides of the old "
                "intervals were removed."))
    else:
        flash(_("Planning settings saved; recompute the plan to apply them."))
    return redirect(url_for(".page", slug=slug) + "#settings")
