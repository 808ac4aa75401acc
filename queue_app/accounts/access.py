"""One access check per handler: who is calling, and may they act on this branch."""
from flask import request

from queue_app.accounts.auth import Principal, bearer_token, current_principal
from queue_app.accounts.models import Staff
from queue_app.kiosks.models import KioskDevice
from queue_app.web.api import abort

_BEARER = {"WWW-Authenticate": "Bearer"}

# API endpoints open to anonymous callers: sign-in, device pairing, the public catalogue and
# booking form, remote tickets where a branch allows them, and the holders of a link or code.
PUBLIC_ENDPOINTS = frozenset({
    "api_auth.create_token", "api_kiosks.pair",
    "api_catalogue.list_branches", "api_catalogue.get_branch", "api_catalogue.list_services",
    "api_booking.availability", "api_booking.create_appointment", "api_booking.get_appointment",
    "api_booking.reschedule_appointment", "api_booking.cancel_appointment",
    "api_tickets.issue_ticket", "api_tickets.track_ticket", "api_tickets.leave_queue", "api_tickets.postpone",
    "api_customers.ticket_feedback", "api_customers.mailed_feedback",
    # Every branch's live waits: public figures, no personal data (tickets/branch_waits.py).
    "api_waits.all_waits", "api_waits.one_branch_waits",
    # Joining from home: the proof is a code sent to the contact; 403 where the branch does not allow it.
    "api_remote_tickets.send_code", "api_remote_tickets.join", "api_remote_tickets.arrived",
    # SMS gateways: no bearer token, each request is checked against the gateway's signature.
    "api_sms.twilio_status", "api_sms.http_status", "api_sms.twilio_inbound", "api_sms.http_inbound",
})


def refuse_anonymous_early() -> None:
    """Before a handler parses its body (flask-smorest validates first): an anonymous call to a
    non-public endpoint is a 401, not a 422 that would describe the body to a stranger."""
    if (request.blueprint or "").startswith("api_") and request.endpoint not in PUBLIC_ENDPOINTS:
        _refuse_anonymous(current_principal())


def _refuse_anonymous(principal: Principal) -> None:
    if principal.error:
        abort(401, principal.error, "The token is invalid or expired; get a new one.", _BEARER)
    if bearer_token() is None and principal.staff is None:
        abort(401, "token_missing", "This needs a staff or kiosk bearer token.", _BEARER)


def require_staff(role: str = "staff", branch_id: int | None = None) -> Staff:
    principal = current_principal()
    _refuse_anonymous(principal)
    if principal.staff is None:
        abort(403, "staff_only", "This needs a staff token, not a device token.")
    staff = principal.staff
    if not staff.has_role(role):
        abort(403, "role_required", f"This needs the {role} role.")
    if branch_id is not None and not staff.can_access_branch(branch_id):
        abort(403, "other_branch", "You are not staff of this branch.")
    return staff


def require_kiosk() -> KioskDevice:
    """A kiosk device token (heartbeats): staff tokens are refused."""
    principal = current_principal()
    _refuse_anonymous(principal)
    if principal.kiosk is None:
        abort(403, "device_only", "This needs a kiosk device token.")
    return principal.kiosk


def require_staff_or_kiosk(branch_id: int) -> Principal:
    principal = current_principal()
    _refuse_anonymous(principal)
    if principal.kiosk is not None:
        if principal.kiosk.branch_id != branch_id:
            abort(403, "other_branch", "This device belongs to another branch.")
        return principal
    require_staff(branch_id=branch_id)
    return principal
