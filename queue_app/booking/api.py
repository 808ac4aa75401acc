"""Online booking: availability, appointments and their manage links, kiosk check-in."""
from datetime import datetime

from flask import current_app, request, url_for
from flask_smorest import Blueprint

from queue_app.accounts.access import require_staff, require_staff_or_kiosk
from queue_app.accounts.auth import bearer_token, caller_rate_key, current_principal
from queue_app.booking import operations as booking
from queue_app.booking.models import Appointment
from queue_app.booking.rules import change_window, rules_for
from queue_app.booking.schemas import (
    AppointmentRequest,
    AppointmentSchema,
    AvailabilityQuery,
    AvailabilitySchema,
    BookedSchema,
    CheckedInSchema,
    CheckInRequest,
    CustomerBlockSchema,
    DayQuery,
    RescheduleRequest,
    StaffAppointmentSchema,
)
from queue_app.catalogue import operations as catalogue
from queue_app.core.extensions import db, limiter
from queue_app.core.models import utcnow
from queue_app.customers import operations as customers
from queue_app.tickets import numbering
from queue_app.tickets import read_models as lobby
from queue_app.tickets.models import Ticket
from queue_app.web.api import abort
from queue_app.web.input_rules import InputRejected, parse_moment

blp = Blueprint("api_booking", __name__, description="Online booking and kiosk check-in")
BEARER = [{"bearer": []}]


def _limit(name: str):
    return lambda: current_app.config[name]


def _caller_key() -> str:
    # Per device for kiosks (one kiosk, many people), per address otherwise; never the raw token.
    return caller_rate_key()


def parse_time(value: str, field: str = "start") -> datetime:
    """An aware time by the app's one rule (input_rules.parse_moment): refused as 422 naive_time
    without an offset, else invalid_time (not ISO 8601, a day outside 2000-2100, an odd offset)."""
    try:
        return parse_moment(value)
    except InputRejected as refused:
        abort(422, "naive_time" if refused.code == "naive_time" else "invalid_time", f"{field}: {refused.message}")


def appointment_dict(appointment: Appointment) -> dict:
    branch = appointment.branch
    rules = rules_for(branch)
    window = change_window(appointment.start_at, rules, utcnow())
    booked = appointment.status == "booked"
    return {
        "id": appointment.id, "status": appointment.status,
        "branch": branch.slug, "branch_name": branch.name,
        "service": appointment.service.code, "service_name": appointment.service.name,
        "service_names": dict(appointment.service.names or {}),
        "name": appointment.name,
        "start": booking.as_local(appointment.start_at, branch), "end": booking.as_local(appointment.end_at, branch),
        "check_in_code": appointment.check_in_code,
        "change_until": booking.as_local(window.reschedule_until, branch),
        "cancel_until": booking.as_local(window.cancel_until, branch),
        "can_reschedule": booked and window.can_reschedule, "can_cancel": booked and window.can_cancel,
        "branch_phone": branch.phone,
        "sequence": appointment.sequence,
    }


def _manage_url(token: str, language: str) -> str:
    # The booking's language, so the page opens in it whatever the browser prefers.
    return f"{current_app.config['QUEUE_APP_BASE_URL']}/a/{token}?lang={language}"


@blp.route("/branches/<string:slug>/availability", methods=["GET"])
@limiter.limit(_limit("AVAILABILITY_RATE_LIMIT"))
@blp.arguments(AvailabilityQuery(), location="query")
@blp.response(200, AvailabilitySchema)
def availability(query, slug):
    """Bookable slots per local day with remaining capacity; times in branch local time with offset."""
    found = booking.availability(db.session, slug, query["service"], query.get("from_"), query["days"])
    branch = found["branch"]
    return {
        "branch": branch.slug, "service": found["service"].code, "timezone": branch.timezone,
        "days": [
            {"date": day["date"].isoformat(),
             "slots": [{"start": booking.as_local(s.start, branch), "end": booking.as_local(s.end, branch),
                        "remaining": s.remaining, "inside_cutoff": s.inside_cutoff} for s in day["slots"]]}
            for day in found["days"]
        ],
    }


@blp.route("/branches/<string:slug>/appointments", methods=["POST"])
@limiter.limit(_limit("BOOKING_RATE_LIMIT"), exempt_when=lambda: current_principal().staff is not None)
@blp.arguments(AppointmentRequest())
@blp.response(201, BookedSchema)
@blp.alt_response(200, schema=BookedSchema, description="A replay of the same Idempotency-Key: the same booking.")
@blp.doc(security=[{}, {"bearer": []}], parameters=[{
    "in": "header", "name": "Idempotency-Key", "required": False, "schema": {"type": "string", "maxLength": 100},
    "description": "Send the same key with the same body again (a double tap, a retry) to get the same booking "
                   "back; the key with another body is refused (422 idempotency_key_reused). Keys are per caller."}])
def create_appointment(body, slug):
    """Book a visit (anyone; staff may book on behalf of a customer, without the strike and limit checks)."""
    staff_id = None
    if bearer_token() is not None or current_principal().staff is not None:
        staff_id = require_staff(branch_id=catalogue.get_branch(db.session, slug).id).id
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 100:
        abort(400, "bad_idempotency_key", "Idempotency-Key must be 1 to 100 characters.")
    made = booking.book(
        db.session, slug, body["service"], parse_time(body["start"]), name=body["name"],
        phone=body.get("phone"), email=body.get("email"), language=body["language"],
        idempotency_key=f"{slug}:{key}" if key else None, staff_id=staff_id,
        base_url=current_app.config["QUEUE_APP_BASE_URL"],
    )
    result = {**appointment_dict(made.appointment), "manage_token": made.manage_token,
              "manage_url": _manage_url(made.manage_token, made.appointment.language)}
    return result, 200 if made.replayed else 201


@blp.route("/appointments/<string:token>", methods=["GET"])
@limiter.limit(_limit("LOOKUP_RATE_LIMIT"))
@blp.response(200, AppointmentSchema)
def get_appointment(token):
    """The booking behind a manage link (the holder)."""
    return appointment_dict(booking.find_by_token(db.session, token))


@blp.route("/appointments/<string:token>", methods=["PATCH"])
@limiter.limit(_limit("LOOKUP_RATE_LIMIT"))
@blp.arguments(RescheduleRequest())
@blp.response(200, AppointmentSchema)
def reschedule_appointment(body, token):
    """Move the booking to another slot, until the branch's change cut-off (then 409 cutoff_passed); if that
    slot is taken, the booking stays as it was."""
    return appointment_dict(booking.reschedule(db.session, token, parse_time(body["start"]),
                                               base_url=current_app.config["QUEUE_APP_BASE_URL"]))


@blp.route("/appointments/<string:token>", methods=["DELETE"])
@limiter.limit(_limit("LOOKUP_RATE_LIMIT"))
@blp.response(200, AppointmentSchema)
def cancel_appointment(token):
    """Cancel the booking until the visit starts (then 409 visit_started); kept for history, the slot is freed."""
    return appointment_dict(booking.cancel(db.session, token, base_url=current_app.config["QUEUE_APP_BASE_URL"]))


@blp.route("/branches/<string:slug>/check-in", methods=["POST"])
@limiter.limit(_limit("LOOKUP_RATE_LIMIT"), key_func=_caller_key)
@blp.arguments(CheckInRequest())
@blp.response(201, CheckedInSchema)
@blp.alt_response(200, schema=CheckedInSchema, description="Checked in before: the same ticket.")
@blp.doc(security=BEARER)
def check_in(body, slug):
    """A booking becomes a ticket (kiosk token or staff). Scanning again returns the same ticket."""
    branch = catalogue.get_branch(db.session, slug)
    principal = require_staff_or_kiosk(branch.id)
    done = booking.check_in(db.session, slug, body["code"], kiosk_id=getattr(principal.kiosk, "id", None))
    status = lobby.ticket_status(db.session, done.ticket, found=done.estimates)
    base = current_app.config["QUEUE_APP_BASE_URL"]
    return {
        "appointment_id": done.appointment.id, "ticket_id": done.ticket.id, "label": done.ticket.label,
        "status": done.ticket.status, "service": done.ticket.service.code, "position": status["position"],
        "estimate": status["estimate"], "repeat": done.tracking_token is None, "token": done.tracking_token,
        "track_url": base + url_for("public.track", token=done.tracking_token) if done.tracking_token else None,
    }, 200 if done.tracking_token is None else 201


@blp.route("/branches/<string:slug>/appointments", methods=["GET"])
@blp.arguments(DayQuery(), location="query")
@blp.response(200, StaffAppointmentSchema(many=True))
@blp.doc(security=BEARER)
def day_appointments(query, slug):
    """A day's bookings at the branch (staff of the branch), by start time."""
    branch = catalogue.get_branch(db.session, slug)
    staff = require_staff(branch_id=branch.id)
    today = numbering.local_day(utcnow(), branch.zone)
    day = query.get("date") or today
    # The customer-data policy: staff see today's customers, with masked phones; managers any day.
    if day != today and not staff.has_role("manager"):
        abort(403, "not_today", "Staff see today's bookings; other days need the manager role.")
    full = staff.has_role("manager")
    rows = []
    for appointment in booking.appointments_of_day(db.session, branch, day):
        rows.append({**appointment_dict(appointment),
                     "phone": appointment.phone if full else customers.mask_phone(appointment.phone),
                     "email": appointment.email if full else None,
                     "ticket_label": db.session.get(Ticket, appointment.ticket_id).label
                     if appointment.ticket_id else None})
    return rows


@blp.route("/customers/<int:customer_id>/unblock", methods=["POST"])
@blp.response(200, CustomerBlockSchema)
@blp.doc(security=BEARER)
def unblock_customer(customer_id):
    """Let a customer book online again after missed visits paused it (managers)."""
    staff = require_staff("manager")
    customer = booking.lift_block(db.session, customer_id, staff)
    return {"id": customer.id, "strikes": customer.strikes, "booking_blocked_until": None}
