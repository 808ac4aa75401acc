"""Tickets: issue (kiosk or public), track and leave (holder), call and act (staff), queue view."""
from flask import current_app, url_for
from flask_smorest import Blueprint
from sqlalchemy import bindparam, select

from queue_app.accounts.access import require_staff, require_staff_or_kiosk
from queue_app.accounts.auth import bearer_token, caller_rate_key, current_principal, not_a_kiosk
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Counter
from queue_app.core.extensions import db, limiter
from queue_app.tickets import queueing
from queue_app.tickets.models import Ticket
from queue_app.tickets.read_models import queue_summary, ticket_status
from queue_app.tickets.schemas import (
    CounterDetailSchema,
    IssuedTicketSchema,
    QueueSchema,
    StaffTicketSchema,
    TicketRequest,
    TrackedTicketSchema,
    TransferRequest,
)
from queue_app.web.api import abort
from queue_app.web.api.serialize import counter_dict, staff_ticket_dict

blp = Blueprint("api_tickets", __name__, description="Walk-in tickets and counter actions")
BEARER = [{"bearer": []}]
# Whose branch a counter or ticket is, to check the caller's access before the action: one column,
# not the row with its joined branch, service and counter (the action reads the row itself), read
# on the connection: no ORM result to set up for one integer.
_COUNTER_BRANCH = select(Counter.branch_id).where(Counter.id == bindparam("id"))
_TICKET_BRANCH = select(Ticket.branch_id).where(Ticket.id == bindparam("id"))


def _public_rate_limit() -> str:
    return current_app.config["PUBLIC_TICKET_RATE_LIMIT"]


def _track_url(token: str) -> str:
    return current_app.config["QUEUE_APP_BASE_URL"] + url_for("public.track", token=token)


@blp.route("/branches/<string:slug>/tickets", methods=["POST"])
@limiter.limit(_public_rate_limit, exempt_when=lambda: bearer_token() is not None)
# A kiosk token: per device, as on the kiosk page (a device tapped or scripted in a loop).
@limiter.limit(lambda: current_app.config["KIOSK_TICKET_RATE_LIMIT"], key_func=caller_rate_key,
               exempt_when=not_a_kiosk)
@blp.arguments(TicketRequest())
@blp.response(201, IssuedTicketSchema)
@blp.doc(security=BEARER + [{}])
def issue_ticket(body, slug):
    """Take a walk-in ticket: a kiosk or staff token, or anonymous where the branch allows remote tickets."""
    branch = catalogue.get_branch(db.session, slug)
    kiosk_id, issued_by = None, "public"  # anonymous: "normal" only (queueing.ISSUERS)
    if bearer_token() is not None or current_principal().staff is not None:
        kiosk_id = getattr(require_staff_or_kiosk(branch.id).kiosk, "id", None)
        issued_by = "staff" if kiosk_id is None else "kiosk"
    elif not branch.allow_remote_tickets:
        abort(401, "token_missing", "Tickets at this branch are issued by its kiosks.", {"WWW-Authenticate": "Bearer"})
    issued = queueing.issue_ticket(db.session, branch, body["service"], priority=body["priority"], kiosk_id=kiosk_id,
                                   phone=body.get("phone"), email=body.get("email"), language=body.get("language"),
                                   issued_by=issued_by)
    ticket = issued.ticket
    tracked = ticket_status(db.session, ticket, found=issued.estimates)
    return {
        "id": ticket.id, "label": ticket.label, "token": issued.token, "status": ticket.status,
        "service": tracked["service"], "position": tracked["position"], "ahead": tracked["ahead"],
        "estimate": tracked["estimate"], "issued_at": tracked["issued_at"], "track_url": _track_url(issued.token),
    }


@blp.route("/tickets/<string:token>", methods=["GET"])
@limiter.limit(lambda: current_app.config["TRACK_RATE_LIMIT"])
@blp.response(200, TrackedTicketSchema)
def track_ticket(token):
    """A ticket's status, position and estimate, for the holder of its tracking token."""
    return ticket_status(db.session, queueing.find_by_token(db.session, token))


@blp.route("/tickets/<string:token>", methods=["DELETE"])
@limiter.limit(lambda: current_app.config["LOOKUP_RATE_LIMIT"])
@blp.response(200, TrackedTicketSchema)
def leave_queue(token):
    """The holder leaves the queue."""
    ticket = queueing.find_by_token(db.session, token)
    return ticket_status(db.session, queueing.leave(db.session, ticket.id))


@blp.route("/tickets/<string:token>/postpone", methods=["POST"])
@limiter.limit(lambda: current_app.config["LOOKUP_RATE_LIMIT"])
@blp.response(200, TrackedTicketSchema)
def postpone(token):
    """"I need more time": the holder moves back a few places (the branch's setting), once."""
    ticket = queueing.find_by_token(db.session, token)
    return ticket_status(db.session, queueing.postpone(db.session, ticket.id))


@blp.route("/counters/<int:counter_id>", methods=["GET"])
@blp.response(200, CounterDetailSchema)
@blp.doc(security=BEARER)
def counter_detail(counter_id):
    """A counter with its current ticket (called or serving), for the staff console."""
    counter = db.session.get(Counter, counter_id)
    if counter is None:
        abort(404, "counter_not_found", f"No counter {counter_id}.")
    require_staff(branch_id=counter.branch_id)
    current = db.session.scalar(
        select(Ticket).where(Ticket.counter_id == counter.id, Ticket.status.in_(("called", "serving")))
    )
    return {**counter_dict(counter), "branch": counter.branch.slug,
            "ticket": staff_ticket_dict(current) if current else None}


@blp.route("/counters/<int:counter_id>/call-next", methods=["POST"])
@blp.response(200, StaffTicketSchema)
@blp.alt_response(204, description="Nobody is waiting for this counter's services.")
@blp.doc(security=BEARER)
def call_next(counter_id):
    """Call the next waiting ticket to this counter."""
    branch_id = db.session.connection().execute(_COUNTER_BRANCH, {"id": counter_id}).scalar()
    if branch_id is None:
        abort(404, "counter_not_found", f"No counter {counter_id}.")
    staff = require_staff(branch_id=branch_id)
    ticket = queueing.call_next(db.session, counter_id, staff_id=staff.id)
    if ticket is None:
        return "", 204
    return staff_ticket_dict(ticket)


def _staff_of_ticket(ticket_id: int) -> int:
    """The calling staff member's id, once they may act on the ticket (404 if there is none)."""
    branch_id = db.session.connection().execute(_TICKET_BRANCH, {"id": ticket_id}).scalar()
    if branch_id is None:
        abort(404, "ticket_not_found", f"No ticket {ticket_id}.")
    return require_staff(branch_id=branch_id).id


ACTIONS = {
    "recall": queueing.recall,
    "start": queueing.start,
    "finish": queueing.finish,
    "no-show": queueing.no_show,
}


def _make_action_view(verb, action):
    def view(ticket_id):
        return staff_ticket_dict(action(db.session, ticket_id, staff_id=_staff_of_ticket(ticket_id)))

    view.__name__ = f"ticket_{verb.replace('-', '_')}"
    view.__doc__ = f"{verb.capitalize()} a called ticket (staff of its branch)."
    return view


for _verb, _action in ACTIONS.items():
    blp.route(f"/tickets/<int:ticket_id>/{_verb}", methods=["POST"])(
        blp.doc(security=BEARER)(blp.response(200, StaffTicketSchema)(_make_action_view(_verb, _action)))
    )


@blp.route("/tickets/<int:ticket_id>/transfer", methods=["POST"])
@blp.arguments(TransferRequest())
@blp.response(200, StaffTicketSchema)
@blp.doc(security=BEARER)
def transfer(body, ticket_id):
    """Send a ticket to another service's queue; it keeps its label and place in time."""
    return staff_ticket_dict(queueing.transfer(db.session, ticket_id, body["service"],
                                               staff_id=_staff_of_ticket(ticket_id)))


@blp.route("/branches/<string:slug>/queue", methods=["GET"])
@blp.response(200, QueueSchema)
@blp.doc(security=BEARER)
def branch_queue(slug):
    """Waiting per service and now serving per counter (staff, or the branch's kiosk/display devices)."""
    branch = catalogue.get_branch(db.session, slug)
    require_staff_or_kiosk(branch.id)
    return queue_summary(db.session, branch)
