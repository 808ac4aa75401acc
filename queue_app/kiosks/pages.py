"""The lobby kiosk: a registered device shows the walk-in services and issues tickets.

A device is registered once with `queue-app kiosk-token SLUG --name NAME`, or paired with a
one-time code from the manager page (`queue-kiosk pair`); opening /kiosk/SLUG?device=TOKEN
stores the device in the browser's (permanent) session and drops the token from the address
bar. After that the page works through the session cookie, with CSRF protection on the ticket
request, like any other form of the site.

The same link also leaves a long-lived, HttpOnly device cookie (path /kiosk/) holding the token:
a session signed with a key that changed (a restart without QUEUE_APP_SECRET_KEY) or that
expired is renewed from it on the next request, so a lobby kiosk never falls back to "not
registered" on its own. A retired device's cookie stops working at once.
"""
from datetime import timedelta

from flask import (
    Blueprint,
    current_app,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, generate_csrf
from sqlalchemy import select

from queue_app.booking import operations as booking
from queue_app.booking.models import Appointment
from queue_app.booking.rules import rules_for
from queue_app.catalogue.models import Branch, Service
from queue_app.catalogue.operations import localized_name, pick_name
from queue_app.core.errors import DomainError
from queue_app.core.extensions import db, limiter
from queue_app.core.languages import LANGUAGE_NAMES, branch_locale, requested_locale
from queue_app.core.security import token_hash
from queue_app.kiosks import operations as kiosks
from queue_app.kiosks.models import KioskDevice
from queue_app.kiosks.print_text import bridge_settings, print_payload
from queue_app.tickets import queueing
from queue_app.tickets import read_models as lobby
from queue_app.tickets.models import Ticket
from queue_app.tickets.qr import here_url, qr_svg, tracking_url
from queue_app.web.dates import issued_text, local_clock, long_date
from queue_app.web.errors import domain_error_response, error_response
from queue_app.web.input_rules import text_problem

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk")

SESSION_KEY = "kiosk_id"
DEVICE_COOKIE = "queue_kiosk_device"
DEVICE_COOKIE_DAYS = 400  # the longest a browser keeps a cookie
# The on-screen keyboard for check-in codes: digits, then letters in keyboard order; only the
# characters codes are made of (booking.CODE_ALPHABET has no 0/O, 1/I/L).
KEYPAD_ROWS = ("23456789", "QWERTYUIOP", "ASDFGHJKL", "ZXCVBNM")



def _device_by_token(token: str | None) -> KioskDevice | None:
    if not token or len(token) > 200:
        return None
    return db.session.scalar(select(KioskDevice).where(KioskDevice.token_hash == token_hash(token)))


def _session_device(slug: str) -> KioskDevice | None:
    """The kiosk this browser was registered as, if it is still active and belongs to `slug`.

    Without a usable session (new signing key after a restart, or expired) the device cookie
    registers the browser again.
    """
    kiosk_id = session.get(SESSION_KEY)
    device = db.session.get(KioskDevice, kiosk_id) if isinstance(kiosk_id, int) else None
    if device is None:
        device = _device_by_token(request.cookies.get(DEVICE_COOKIE))
        if device is not None and device.active and device.branch.slug == slug:
            session[SESSION_KEY] = device.id
            session.permanent = True
    if device is None or not device.active or device.branch.slug != slug:
        return None
    return device


def _set_device_cookie(response, token: str):
    response.set_cookie(DEVICE_COOKIE, token, max_age=DEVICE_COOKIE_DAYS * 24 * 3600, path="/kiosk/", httponly=True,
                        secure=current_app.config.get("SESSION_COOKIE_SECURE", False), samesite="Lax")
    return response


def _not_registered(slug: str):
    response = make_response(render_template("kiosks/unregistered.html", slug=slug), 401)
    if DEVICE_COOKIE in request.cookies:
        response.delete_cookie(DEVICE_COOKIE, path="/kiosk/")  # a retired or unknown device
    return response


def _no_store(response):
    # The device token must not linger in caches or leak to other sites through the Referer.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/<slug>")
def home(slug):
    token = request.args.get("device")
    if token is not None:
        device = _device_by_token(token)
        if device is None or not device.active or device.branch.slug != slug:
            session.pop(SESSION_KEY, None)
            return _no_store(_not_registered(slug))
        session[SESSION_KEY] = device.id
        session.permanent = True  # survives a browser restart; renewed by every ping
        lang = request.args.get("lang")  # the rest of the setup link is kept, only the token goes
        return _set_device_cookie(_no_store(redirect(url_for("kiosk.home", slug=slug, lang=lang))), token)
    device = _session_device(slug)
    if device is None:
        return _not_registered(slug)
    branch = device.branch
    services = db.session.scalars(
        select(Service)
        .where(Service.branch_id == branch.id, Service.active.is_(True), Service.walk_in_enabled.is_(True))
        .order_by(Service.code)
    ).all()
    takes_bookings = db.session.scalar(
        select(Service.id).where(Service.branch_id == branch.id, Service.active.is_(True),
                                 Service.booking_enabled.is_(True)).limit(1)
    ) is not None
    waiting = {w["service"]: w["count"] for w in lobby.queue_summary(db.session, branch)["waiting"]}
    default_locale = branch_locale(branch)
    locale = requested_locale(default_locale)
    # Remote tickets' "I'm here": today's code as a QR (the page reloads when the day changes).
    here_link = here_url(branch) if branch.allow_remote_tickets else None
    with force_locale(locale):
        return render_template(
            "kiosks/kiosk.html", branch=branch, services=services, waiting=waiting, locale=locale,
            here_link=here_link, here_qr=qr_svg(here_link, _("I'm here")) if here_link else None,
            default_locale=default_locale, languages=LANGUAGE_NAMES, takes_bookings=takes_bookings,
            code_length=booking.CODE_LENGTH, printer=bridge_settings(device),
            keypad=[[key for key in row if key in booking.CODE_ALPHABET] for row in KEYPAD_ROWS],
        )


def _device_key() -> str:
    # One limit per kiosk (many people share one), so guessing codes stays slow.
    return f"kiosk:{session.get(SESSION_KEY)}"


@bp.post("/<slug>/tickets")
# Generous for a busy lobby, but a kiosk tapped in a loop cannot flood the queue.
@limiter.limit(lambda: current_app.config["KIOSK_TICKET_RATE_LIMIT"], key_func=_device_key)
def issue(slug):
    device = _session_device(slug)
    if device is None:
        return error_response(401, "kiosk_not_registered", _("This kiosk is not registered."))
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("service"), str) or text_problem(body["service"]):
        return error_response(400, "malformed_json", 'Send JSON {"service": CODE}.')
    issued = queueing.issue_ticket(db.session, slug, body["service"], kiosk_id=device.id, issued_by="kiosk")
    status = lobby.ticket_status(db.session, issued.ticket, found=issued.estimates)
    link = tracking_url(issued.token)
    return jsonify({
        "label": status["label"],
        "service": status["service"],
        "service_name": pick_name(status["service_name"], status["service_names"], get_locale()),
        "ahead": status["ahead"],
        "estimate": status["estimate"],
        "track_url": link,
        "qr_svg": qr_svg(link, title=_("QR code: follow ticket %(label)s on your phone", label=status["label"])),
        "issued_at": status["issued_at"],
        "issued_text": issued_text(status["issued_at"]),
        "print": print_payload(device.branch, status, link),
    }), 201



@bp.post("/<slug>/check-in")
@limiter.limit(lambda: current_app.config["LOOKUP_RATE_LIMIT"], key_func=_device_key)
def check_in(slug):
    """A booking's code, typed or scanned here, becomes a ticket; the same code again shows the same ticket."""
    device = _session_device(slug)
    if device is None:
        return error_response(401, "kiosk_not_registered", _("This kiosk is not registered."))
    body = request.get_json(silent=True)
    if (not isinstance(body, dict) or not isinstance(body.get("code"), str) or len(body["code"]) > 40
            or text_problem(body["code"])):
        return error_response(400, "malformed_json", 'Send JSON {"code": CODE}.')
    try:
        done = booking.check_in(db.session, slug, body["code"], kiosk_id=device.id)
    except DomainError as error:
        return _check_in_refused(device.branch, body["code"], error)
    status = lobby.ticket_status(db.session, done.ticket, found=done.estimates)
    answer = {
        "label": status["label"],
        "service": status["service"],
        "service_name": pick_name(status["service_name"], status["service_names"], get_locale()),
        "ahead": status["ahead"],
        "estimate": status["estimate"],
        "issued_at": status["issued_at"],
        "issued_text": issued_text(status["issued_at"]),
        "booked_time": local_clock(done.appointment.start_at, device.branch.zone),
        "repeat": done.tracking_token is None,
    }
    if done.tracking_token is None:
        # Checked in before: the same number again, without a new tracking link (that went with the first).
        answer["message"] = _("You are already checked in: %(label)s", label=status["label"])
        return jsonify(answer), 200
    link = tracking_url(done.tracking_token)
    answer["track_url"] = link
    answer["qr_svg"] = qr_svg(link, title=_("QR code: follow ticket %(label)s on your phone", label=status["label"]))
    answer["print"] = print_payload(device.branch, status, link,
                                    note=_("Booking at %(time)s", time=answer["booked_time"]))
    return jsonify(answer), 201


def _check_in_refused(branch: Branch, code: str, error: DomainError):
    """The refusal in words a visitor can act on, and a walk-in ticket offer where one makes sense."""
    details = _booking_by_code(code)
    rules = rules_for(branch)
    messages = {
        "unknown_code": _("We could not find a booking with this code. Please check the code and try again."),
        "other_branch": _("This booking is for another branch: %(branch)s.",
                          branch=details.branch.name if details else ""),
        "other_day": _("This booking is for %(date)s, not today. Please come back that day.",
                       date=long_date(details.local_date) if details else ""),
        "too_early": _("You are early. Check-in for your %(time)s booking opens at %(opens)s.",
                       time=local_clock(details.start_at, branch.zone) if details else "",
                       opens=local_clock(details.start_at - timedelta(minutes=rules.check_in_early_minutes),
                                         branch.zone) if details else ""),
        "too_late": _("Sorry, check-in for this booking closed %(n)s minutes after its start time.",
                      n=rules.check_in_late_minutes),
        "cancelled": _("This booking was cancelled."),
        "no_show": _("This booking was missed: it was not checked in on time."),
        "already_checked_in": _("This booking was already used."),
    }
    if error.code == "already_checked_in" and details is not None and details.ticket_id is not None:
        label = db.session.get(Ticket, details.ticket_id).label
        messages["already_checked_in"] = _("This booking was already used: ticket %(label)s has been served.", label=label)
    service = details.service if details is not None and details.branch_id == branch.id else None
    offer = None
    if (error.code in ("too_late", "cancelled", "no_show") and service is not None and service.active
            and service.walk_in_enabled):
        offer = {"walk_in": {"service": service.code, "service_name": localized_name(service, get_locale())}}
    return domain_error_response(error, messages.get(error.code, error.message), {}, extra=offer)


def _booking_by_code(code: str) -> Appointment | None:
    """The booking behind a refused code, read only to word the refusal (its date, time or service)."""
    normalised = code.strip().upper().replace("-", "").replace(" ", "")
    return db.session.scalar(select(Appointment).where(Appointment.check_in_code == normalised))


@bp.get("/<slug>/ping")
def ping(slug):
    """Heartbeat: the page shows its out-of-order screen while this fails; the manager page shows it as "last seen".

    It also hands out a fresh CSRF token (a kiosk page stays open for days, longer than a token
    lives) and the waiting counts shown on the service buttons.
    """
    device = _session_device(slug)
    if device is None:
        return error_response(401, "kiosk_not_registered", _("This kiosk is not registered."))
    # The manager page's "last seen" for kiosks without a print bridge (a plain browser).
    kiosks.record_page_ping(db.session, device.id)
    waiting = {w["service"]: w["count"] for w in lobby.queue_summary(db.session, device.branch)["waiting"]}
    response = jsonify({"ok": True, "csrf_token": generate_csrf(), "waiting": waiting,
                        "printer": bridge_settings(device)})
    response.headers["Cache-Control"] = "no-store"
    return response


# The ticket request is fetch() from the kiosk page: answer errors as JSON it can show.
@bp.errorhandler(DomainError)
def domain_error(error: DomainError):
    messages = {
        # What a customer at the kiosk can act on; the domain's text is written for staff.
        "service_not_found": _("This service is not available right now. Please ask staff."),
        "walk_in_disabled": _("This service takes booked visits only. Please ask staff."),
    }
    return domain_error_response(error, messages.get(error.code, error.message), {})


@bp.errorhandler(CSRFError)
def csrf_error(error: CSRFError):
    return error_response(400, "csrf_failed", error.description)
