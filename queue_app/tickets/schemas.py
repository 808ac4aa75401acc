"""API shapes of tickets, counters at work and the queue."""
from marshmallow import Schema, fields, validate

from queue_app.catalogue.schemas import CounterSchema
from queue_app.tickets.queue_order import PRIORITY_CREDITS
from queue_app.web.api.schemas import NAMES_OUT, EstimateSchema, StrictSchema
from queue_app.web.input_rules import Text


class TicketRequest(StrictSchema):
    service = Text(required=True, min=1, max=4)
    phone = Text(max=32)
    email = Text(max=254, email=True)
    priority = Text(validate=validate.OneOf(list(PRIORITY_CREDITS)), load_default="normal")
    language = Text(validate=validate.OneOf(["en", "zh_Hant", "zh_Hans"]), metadata={
        "description": "With a phone or e-mail: the language of the customer's messages (default: the branch's)."})


class IssuedTicketSchema(Schema):
    id = fields.Integer(required=True)
    label = fields.String(required=True)
    token = fields.String(required=True)
    status = fields.String(required=True)
    service = fields.String(required=True)
    position = fields.Integer(required=True)
    ahead = fields.Integer(required=True)
    estimate = fields.Nested(EstimateSchema, required=True)
    issued_at = fields.String(required=True)
    track_url = fields.String(required=True)


class TrackedTicketSchema(Schema):
    """What the holder of a tracking link sees: numbers and counters, no personal data."""

    label = fields.String(required=True)
    status = fields.String(required=True)
    service = fields.String(required=True)
    service_name = fields.String(required=True)
    service_names = fields.Dict(**NAMES_OUT)
    position = fields.Integer(required=True)
    ahead = fields.Integer(required=True, metadata={
        "description": "People ahead: the waiting tickets the queue order calls before this one (services sharing "
                       "its counters; a booking counts only earlier bookings). 0 once called."})
    estimate = fields.Nested(EstimateSchema, required=True)
    counter = fields.String(allow_none=True)
    counter_names = fields.Dict(**NAMES_OUT)
    postponed = fields.Boolean(required=True)
    issued_at = fields.String(required=True)
    booked_start = fields.String(allow_none=True, metadata={
        "description": "A booked visit's start (branch local time; it is served at its time); null for a walk-in."})
    remote = fields.Nested(lambda: RemoteStatusSchema(), allow_none=True, metadata={
        "description": "A ticket joined from home (null otherwise): its trip, when to leave, whether it arrived."})


class RemoteStatusSchema(Schema):
    travel_minutes = fields.Integer(allow_none=True)
    arrived = fields.Boolean(required=True, metadata={"description": "The holder said \"I'm here\"."})
    leave_by = fields.String(allow_none=True, metadata={
        "description": "HH:MM, branch local time: the estimate's low end minus the trip and a 5-minute margin; "
                       "null once arrived or without an estimate."})
    leave_now = fields.Boolean(required=True)
    set_off_sent = fields.Boolean(required=True, metadata={"description": "\"Time to set off\" was sent."})
    held = fields.Boolean(required=True, metadata={
        "description": "It was called before arriving and moved back (the next time it is a no-show)."})


class StaffTicketSchema(Schema):
    id = fields.Integer(required=True)
    label = fields.String(required=True)
    status = fields.String(required=True)
    priority = fields.String(required=True)
    service = fields.String(required=True)
    service_name = fields.String(required=True)
    service_names = fields.Dict(**NAMES_OUT)
    checklist = fields.String()
    counter_id = fields.Integer(allow_none=True)
    counter = fields.String(allow_none=True)
    recalls = fields.Integer()
    issued_at = fields.String(required=True)
    called_at = fields.String(allow_none=True)
    started_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)
    remote = fields.Boolean(metadata={"description": "Joined from home (a phone away from the branch)."})
    arrived_at = fields.String(allow_none=True, metadata={
        "description": "A remote ticket: when its holder said \"I'm here\" (branch local time); null until then."})


class CounterDetailSchema(CounterSchema):
    branch = fields.String(required=True)
    ticket = fields.Nested(StaffTicketSchema, allow_none=True)


class TransferRequest(StrictSchema):
    service = Text(required=True, min=1, max=4)


class WaitingSchema(Schema):
    service = fields.String()
    name = fields.String()
    names = fields.Dict(**NAMES_OUT)
    count = fields.Integer()


class CounterNowSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    names = fields.Dict(**NAMES_OUT)
    state = fields.String()
    ticket = fields.Dict(allow_none=True)


class RemoteWaitingSchema(Schema):
    label = fields.String()
    service = fields.String()
    arrived = fields.Boolean(metadata={"description": "The holder said \"I'm here\"."})


class QueueSchema(Schema):
    branch = fields.String()
    local_date = fields.String()
    waiting = fields.List(fields.Nested(WaitingSchema))
    counters = fields.List(fields.Nested(CounterNowSchema))
    remote = fields.List(fields.Nested(RemoteWaitingSchema), metadata={
        "description": "Waiting tickets joined from home, in queue order, and whether each holder is here."})
