"""Booking on a phone (/b/<slug>) and the booking's own page (/a/<manage token>).

The pages are clients of the REST API: slots come from GET /api/v1/branches/<slug>/availability,
a reschedule is PATCH and a cancel DELETE /api/v1/appointments/<token> (the manage token is the
key, as in the API). Booking itself goes through one page-level endpoint, POST /b/<slug>/book,
because it adds what a public HTML form needs and a bare API call does not: a CSRF check, a
honeypot field that bots fill and people never see, and the page's language for the messages.

/a/... is a bearer link: every answer there (the page, its calendar file, its 404) carries
`Cache-Control: no-store` and `Referrer-Policy: no-referrer`, so the token does not linger in
caches or leak to other sites.
"""
from urllib.parse import urlsplit

from flask import Blueprint, current_app, jsonify, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, generate_csrf
from sqlalchemy import select

from queue_app.booking import ics
from queue_app.booking import operations as booking
from queue_app.booking.api import appointment_dict
from queue_app.booking.page_texts import booking_messages, call_branch, field_messages, picker_text, status_labels
from queue_app.booking.rules import change_window, rules_for
from queue_app.catalogue.models import Branch, Service
from queue_app.catalogue.operations import get_branch, localized_name
from queue_app.core.errors import DomainError, NotFound
from queue_app.core.extensions import db, limiter
from queue_app.core.languages import LANGUAGE_NAMES
from queue_app.core.models import utcnow
from queue_app.customers import identity
from queue_app.notifications import notify
from queue_app.tickets.models import Ticket
from queue_app.tickets.qr import qr_svg
from queue_app.web.dates import current_language, local_when, page_calendar
from queue_app.web.errors import domain_error_response, error_response
from queue_app.web.input_rules import InputRejected, parse_moment, text_problem

bp = Blueprint("booking_pages", __name__)

HONEYPOT = "website"  # a field bots fill in; people never see it
DAYS_SHOWN = 14
LIMITS = {"name": 200, "phone": 32, "email": 254}



def _branch_or_none(slug: str) -> Branch | None:
    try:
        return get_branch(db.session, slug)
    except NotFound:
        return None


def _not_found(title: str, text: str):
    page = render_template("booking/not_found.html", title=title, text=text,
                           locale=current_language(), languages=LANGUAGE_NAMES)
    return make_response(page, 404)


def _bookable(branch: Branch) -> list[Service]:
    return db.session.scalars(
        select(Service)
        .where(Service.branch_id == branch.id, Service.active.is_(True), Service.booking_enabled.is_(True))
        .order_by(Service.code)
    ).all()


# ---- /b/<slug>: book a visit ------------------------------------------------------------------

@bp.get("/b/<slug>")
def book_page(slug):
    branch = _branch_or_none(slug)
    if branch is None:
        return _not_found(_("Branch not found"), _("There is no branch at this address. Please choose one from the list."))
    locale = current_language()
    return render_template(
        "booking/book.html", branch=branch, services=_bookable(branch), rules=rules_for(branch),
        locale=locale, languages=LANGUAGE_NAMES, calendar=page_calendar(), days_shown=DAYS_SHOWN,
        messages=booking_messages(branch), field_messages=field_messages(), picker_text=picker_text(),
        honeypot=HONEYPOT, inside_cutoff_note=_(notify.CHANGE_TEXTS["closed"]) + call_branch(branch),
    )


def _text(body: dict, name: str) -> str | None:
    value = body.get(name)
    return (value.strip() or None) if isinstance(value, str) else None


def _field_problems(values: dict, branch: Branch) -> dict:
    """Every field's problem at once (not the first one the domain meets), so the form shows all of them."""
    wrong = field_messages()
    fields = {name: wrong["unstorable"] for name, value in values.items() if value and text_problem(value)}
    for name, limit in LIMITS.items():
        if name not in fields and len(values[name] or "") > limit:
            fields[name] = wrong["too_long"]
    if not values["name"]:
        fields["name"] = wrong["name"]
    if not values["phone"] and not values["email"]:
        fields["phone"] = wrong["contact"]
    # The domain's own checks (customers/identity.py), made here for both fields before booking.
    checks = (("phone", lambda v: identity.normalise_phone(v, branch.country)), ("email", identity.normalise_email))
    for name, check in checks:
        if values[name] and name not in fields:
            try:
                check(values[name])
            except DomainError:
                fields[name] = wrong[name]
    return fields


@bp.post("/b/<slug>/book")
@limiter.limit(lambda: current_app.config["BOOKING_RATE_LIMIT"])
def book(slug):
    """The booking form's JSON: checks the honeypot and the fields, then books (the domain decides)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return error_response(400, "malformed_json", 'Send the form as JSON.')
    branch = _branch_or_none(slug)
    if branch is None:
        return error_response(404, "branch_not_found", _("Branch not found"))
    messages = booking_messages(branch)
    if body.get(HONEYPOT):
        return error_response(400, "rejected", messages["rejected"])  # a bot: nothing is booked
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 100:
        return error_response(400, "bad_idempotency_key", "Idempotency-Key must be 1 to 100 characters.")
    values = {name: _text(body, name) for name in ("service", "start", "name", "phone", "email")}
    fields = _field_problems(values, branch)
    if fields:
        return error_response(422, "invalid_field", messages["invalid_field"], fields)
    try:
        start = parse_moment(values["start"] or "")  # the app's one rule: ISO 8601, offset, 2000-2100
    except InputRejected as refused:
        code = "naive_time" if refused.code == "naive_time" else "invalid_time"
        return error_response(422, code, messages[code])
    made = booking.book(
        db.session, slug, values["service"] or "", start, name=values["name"], phone=values["phone"],
        email=values["email"], language=current_language(), idempotency_key=f"{slug}:{key}" if key else None,
        base_url=current_app.config["QUEUE_APP_BASE_URL"],
    )
    target = url_for(".manage", token=made.manage_token, new=1, lang=current_language())
    return jsonify({"redirect": target, "check_in_code": made.appointment.check_in_code}), 200 if made.replayed else 201


@bp.get("/b/<slug>/csrf-token")
def csrf_token(slug):
    """A fresh CSRF token for a booking page left open longer than a token lives."""
    response = jsonify({"csrf_token": generate_csrf()})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(DomainError)
def domain_error(error: DomainError):
    """Refusals of /b/<slug>/book as JSON the page shows next to the form, in the page's language."""
    slug = (request.view_args or {}).get("slug")
    branch = _branch_or_none(slug) if slug else None
    message = booking_messages(branch).get(error.code, error.message)
    fields = None
    if error.fields:
        wrong = field_messages()
        fields = {name: wrong.get(name, messages[0] if isinstance(messages, list) and messages else str(messages))
                  for name, messages in error.fields.items()}
    return domain_error_response(error, message, fields or {})


@bp.errorhandler(CSRFError)
def csrf_error(error: CSRFError):
    return error_response(400, "csrf_failed", booking_messages()["csrf_failed"])


# ---- /a/<token>: the booking's own page ------------------------------------------------------

@bp.after_app_request
def private_link_headers(response):
    # Any answer under /a/ (page, calendar file, 404) is about a bearer link.
    if request.path.startswith("/a/"):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _appointment_or_none(token: str):
    try:
        return booking.find_by_token(db.session, token)
    except NotFound:
        return None


def _missing_booking():
    return _not_found(_("Booking not found"),
                      _("This link does not belong to a booking. Check the link in your confirmation message."))


@bp.get("/a/<token>")
@limiter.limit(lambda: current_app.config["LOOKUP_RATE_LIMIT"])
def manage(token):
    appointment = _appointment_or_none(token)
    if appointment is None:
        return _missing_booking()
    if request.args.get("proof"):
        # The link in the confirmation proves the contact it was sent to (customers/identity.py);
        # then the proof token leaves the address bar (and logs, and Referer headers).
        try:
            proof = identity.prove(db.session, request.args["proof"], now=utcnow())
            proven = "1" if proof.appointment_id == appointment.id else "0"
        except DomainError:
            proven = "0"
        return redirect(url_for(".manage", token=token, proven=proven, lang=request.args.get("lang")))
    branch = appointment.branch
    rules = rules_for(branch)
    now = utcnow()
    window = change_window(appointment.start_at, rules, now)
    booked = appointment.status == "booked"
    change_until = local_when(window.reschedule_until, branch.timezone, branch.zone)
    # The same sentences as the confirmation mail (notify.CHANGE_TEXTS), as things stand now.
    state = notify.change_state(appointment, now) if booked else None
    change_note = _(notify.CHANGE_TEXTS[state], until=change_until) if state else ""
    if state in ("closed", "started"):
        change_note += call_branch(branch)
    ticket = db.session.get(Ticket, appointment.ticket_id) if appointment.ticket_id else None
    code = appointment.check_in_code
    return render_template(
        "booking/manage.html", token=token, appointment=appointment, data=appointment_dict(appointment),
        branch=branch, rules=rules, ticket=ticket, locale=current_language(), languages=LANGUAGE_NAMES,
        when=local_when(appointment.start_at, branch.timezone, branch.zone),
        change_until=change_until, change_note=change_note,
        can_reschedule=booked and window.can_reschedule, can_cancel=booked and window.can_cancel,
        qr=qr_svg(code, title=_("QR code of your check-in code %(code)s", code=code)),
        code_groups=[code[i:i + 4] for i in range(0, len(code), 4)],
        status_labels=status_labels(), calendar=page_calendar(), days_shown=DAYS_SHOWN,
        messages=booking_messages(branch), picker_text=picker_text(), banner=_banner(appointment),
    )


def _banner(appointment) -> str | None:
    if request.args.get("proven") in ("0", "1"):
        return "proven" if request.args["proven"] == "1" else "not_proven"
    if request.args.get("new") and appointment.status == "booked":
        return "new"
    if request.args.get("changed") and appointment.status == "booked":
        return "changed"
    if request.args.get("cancelled") and appointment.status == "cancelled":
        return "cancelled"
    return None


@bp.get("/a/<token>/calendar.ics")
@limiter.limit(lambda: current_app.config["LOOKUP_RATE_LIMIT"])
def calendar(token):
    appointment = _appointment_or_none(token)
    if appointment is None:
        return _missing_booking()
    # The same UID host as the confirmation mail's calendar (notify uses the base URL's host), so
    # adding the file and opening the mail update one event, not two.
    host = urlsplit(current_app.config["QUEUE_APP_BASE_URL"]).hostname or "localhost"
    text = ics.appointment_calendar(
        appointment, host=host, now=utcnow(), cancelled=appointment.status == "cancelled",
        summary=_("%(service)s at %(branch)s", service=localized_name(appointment.service, current_language()),
                  branch=appointment.branch.name),
        description=_("Check-in code: %(code)s", code=appointment.check_in_code),
    )
    # A file someone adds to their own calendar publishes an event; REQUEST is for invitations
    # that expect a reply (the mail's attachment).
    text = text.replace("METHOD:REQUEST\r\n", "METHOD:PUBLISH\r\n", 1)
    response = make_response(text)
    response.mimetype = "text/calendar"
    response.headers["Content-Disposition"] = f'attachment; filename="visit-{appointment.check_in_code}.ics"'
    return response
