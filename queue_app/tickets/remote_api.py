"""Joining a queue from home through the API (the join page /j/<slug> is a client of it):
a code to the contact, the remote ticket with its trip time, and "I'm here".

Anonymous: the proof is the code sent to the contact (customers/contact_codes.py). Where the branch
does not take tickets from phones away from it, every call here is a 403.
"""
from flask import current_app, request, url_for
from flask_babel import get_locale
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from queue_app.catalogue import operations as catalogue
from queue_app.core.errors import DomainError
from queue_app.core.extensions import db, limiter
from queue_app.customers import contact_codes, identity
from queue_app.tickets import queueing, remote, remote_rules
from queue_app.tickets.read_models import ticket_status
from queue_app.tickets.schemas import IssuedTicketSchema, TrackedTicketSchema
from queue_app.web.api.schemas import StrictSchema
from queue_app.web.input_rules import Text

blp = Blueprint("api_remote_tickets", __name__, description="Join a queue from home (remote tickets)")
LANGUAGES = ["en", "zh_Hant", "zh_Hans"]


class CodeRequest(StrictSchema):
    phone = Text(max=32, metadata={"description": "Gets the code by SMS (first, when both are given)."})
    email = Text(max=254, email=True, metadata={"description": "Gets the code by mail when no phone is given."})
    language = Text(validate=validate.OneOf(LANGUAGES), metadata={
        "description": "The language of the code's and the ticket's messages (default: the request's)."})


class CodeSentSchema(Schema):
    channel = fields.String(required=True, metadata={"description": "sms or email"})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds the code is valid."})


class RemoteTicketRequest(CodeRequest):
    service = Text(required=True, min=1, max=4)
    code = Text(required=True, min=1, max=12, metadata={"description": "The six digits sent to the contact."})
    travel_minutes = fields.Integer(required=True, strict=True, validate=validate.Range(*remote_rules.TRAVEL_LIMITS),
                                    metadata={"description": "How long the trip to the branch takes, 0-120."})


class RemoteTicketSchema(IssuedTicketSchema):
    travel_minutes = fields.Integer(required=True)
    leave_by = fields.String(allow_none=True, metadata={
        "description": "HH:MM branch local time: the estimate's low end minus the trip and a 5-minute margin."})
    existing = fields.Boolean(required=True, metadata={
        "description": "True: this contact's active remote ticket at the branch, given back (same link)."})


class ArrivedRequest(StrictSchema):
    code = Text(max=12, metadata={"description": "The branch's code of today (its door or kiosk QR); "
                                                 "left out for the tracking page's button."})


def _secret() -> str:
    return current_app.config["SECRET_KEY"]


def _language(body: dict) -> str:
    language = body.get("language") or str(get_locale() or "en")
    return language if language in LANGUAGES else "en"


def _contact_key() -> str:
    """The per-contact limit's key: the normalised phone or e-mail of the body (a raw one when it
    does not parse: the handler refuses it anyway)."""
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    phone, email = body.get("phone"), body.get("email")
    raw = phone if isinstance(phone, str) and phone.strip() else email if isinstance(email, str) else ""
    try:
        slug = (request.view_args or {}).get("slug")
        branch = catalogue.get_branch(db.session, slug)
        contacts = identity.typed(phone if isinstance(phone, str) else None,
                                  email if isinstance(email, str) else None, branch.country)
        raw = contacts.phone or contacts.email or raw
    except DomainError:
        pass
    return "contact:" + str(raw)[:260]


def _contacts(body: dict, slug: str) -> identity.Contacts:
    branch = catalogue.get_branch(db.session, slug)
    remote.require_remote(branch)
    contacts = identity.typed(body.get("phone"), body.get("email"), branch.country)
    return identity.Contacts(contacts.phone, None if contacts.phone else contacts.email)


def _track_url(token: str) -> str:
    return current_app.config["QUEUE_APP_BASE_URL"] + url_for("public.track", token=token)


@blp.route("/branches/<string:slug>/remote-tickets/code", methods=["POST"])
@limiter.limit(lambda: current_app.config["JOIN_CODE_RATE_LIMIT"])
@limiter.limit(lambda: current_app.config["JOIN_CODE_CONTACT_RATE_LIMIT"], key_func=_contact_key)
@blp.arguments(CodeRequest())
@blp.response(202, CodeSentSchema)
def send_code(body, slug):
    """Send a six-digit code to a phone (SMS) or e-mail, valid 10 minutes: typing it back proves the contact."""
    contacts = _contacts(body, slug)
    channel = remote.request_code(db.session, slug, contacts, secret=_secret(), language=_language(body))
    return {"channel": channel, "expires_in": int(contact_codes.CODE_VALID.total_seconds())}


@blp.route("/branches/<string:slug>/remote-tickets", methods=["POST"])
@limiter.limit(lambda: current_app.config["LOOKUP_RATE_LIMIT"])
@blp.arguments(RemoteTicketRequest())
@blp.response(201, RemoteTicketSchema)
@blp.alt_response(200, schema=RemoteTicketSchema, description="The contact's active remote ticket, given back.")
def join(body, slug):
    """Join the queue from home with the code sent to the contact: a ticket whose page says when to leave.
    A second join by the same contact gives the first ticket back (200)."""
    contacts = _contacts(body, slug)
    joined = remote.join(db.session, slug, body["service"], contacts, body["code"], body["travel_minutes"],
                         secret=_secret(), language=_language(body))
    ticket = joined.ticket
    tracked = ticket_status(db.session, ticket, found=joined.estimates)
    answer = {
        "id": ticket.id, "label": ticket.label, "token": joined.token, "status": ticket.status,
        "service": tracked["service"], "position": tracked["position"], "ahead": tracked["ahead"],
        "estimate": tracked["estimate"], "issued_at": tracked["issued_at"], "track_url": _track_url(joined.token),
        "travel_minutes": ticket.travel_minutes, "leave_by": (tracked["remote"] or {}).get("leave_by"),
        "existing": joined.existing,
    }
    return answer, 200 if joined.existing else 201


@blp.route("/tickets/<string:token>/arrived", methods=["POST"])
@limiter.limit(lambda: current_app.config["LOOKUP_RATE_LIMIT"])
@blp.arguments(ArrivedRequest())
@blp.response(200, TrackedTicketSchema)
def arrived(body, token):
    """"I'm here": the holder of a remote ticket is at the branch (the page's button, or with today's code)."""
    ticket = queueing.find_by_token(db.session, token)
    return ticket_status(db.session, remote.arrived(db.session, ticket.id, here_code=body.get("code"),
                                                    secret=_secret()))
