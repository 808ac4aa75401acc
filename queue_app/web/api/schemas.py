"""Request and response shapes, which are also the OpenAPI document."""
from marshmallow import Schema, fields, validate

from queue_app.accounts.models import ROLES
from queue_app.catalogue.models import COUNTER_STATES
from queue_app.catalogue.operations import COUNTER_NAME_MAX, NAME_LANGUAGES, SERVICE_NAME_MAX
from queue_app.tickets.queue_order import PRIORITY_CREDITS
from queue_app.web.input_rules import Text, When


class StrictSchema(Schema):
    """Unknown fields are an error (marshmallow's default), so a typo does not pass silently.

    Request fields are `Text` and `When` (queue_app/web/input_rules.py): no NUL or lone surrogate,
    bounded lengths, days from 2000 to 2100."""


def names_field(max_length: int) -> fields.Dict:
    """A name per language ({"zh_Hant": ..., "zh_Hans": ...}); an empty one falls back to `name`."""
    return fields.Dict(keys=Text(validate=validate.OneOf(NAME_LANGUAGES)), values=Text(max=max_length), metadata={
        "description": f"The name in other languages, keyed by {', '.join(NAME_LANGUAGES)}; a language "
                       "left out (or empty) shows `name`. Replaces the whole set."})


# Names per language in responses: the page picks its language's, else `name`.
NAMES_OUT = {"keys": fields.String(), "values": fields.String()}


class TokenRequest(StrictSchema):
    email = Text(required=True, min=1, max=254)
    password = Text(required=True, min=1, max=1024, trim=False)


class TokenResponse(Schema):
    token = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    role = fields.String(required=True)
    staff_id = fields.Integer(required=True)


class BranchSchema(Schema):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    timezone = fields.String(required=True)
    language = fields.String()
    country = fields.String()
    opening_hours = fields.Dict(keys=fields.String(), values=fields.List(fields.List(fields.String())))
    closed_dates = fields.List(fields.String())
    allow_remote_tickets = fields.Boolean()
    postpone_places = fields.Integer()
    booking_rules = fields.Dict(keys=fields.String(), values=fields.Integer())
    phone = fields.String(allow_none=True, metadata={"description": "E.164; told to customers who can no longer "
                                                     "change a booking online. null: none."})


class BranchUpdate(StrictSchema):
    name = Text(min=1, max=200)
    timezone = Text(min=1, max=64)
    language = Text(validate=validate.OneOf(["en", "zh_Hant", "zh_Hans"]))
    country = Text(validate=validate.Regexp(r"^[A-Z]{2}$"))
    opening_hours = fields.Dict(keys=Text(max=16), values=fields.Raw())
    closed_dates = fields.List(When("date"))
    allow_remote_tickets = fields.Boolean()
    postpone_places = fields.Integer(validate=validate.Range(min=1, max=50))
    booking_rules = fields.Dict(keys=Text(max=64), values=fields.Integer())
    phone = Text(max=32, allow_none=True, metadata={
        "description": "The branch's phone; without a country code it is read in the branch's country. "
                       "Stored as E.164; empty or null removes it."})


class BranchCreate(BranchUpdate):
    slug = Text(required=True, min=1, max=63)
    name = Text(required=True, min=1, max=200)
    timezone = Text(required=True, min=1, max=64)


class ServiceSchema(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    names = fields.Dict(**NAMES_OUT)
    expected_minutes = fields.Integer(required=True)
    walk_in_enabled = fields.Boolean()
    booking_enabled = fields.Boolean()
    checklist = fields.String()
    active = fields.Boolean()


class ServiceUpdate(StrictSchema):
    name = Text(min=1, max=SERVICE_NAME_MAX)
    names = names_field(SERVICE_NAME_MAX)
    expected_minutes = fields.Integer(validate=validate.Range(min=1, max=480))
    walk_in_enabled = fields.Boolean()
    booking_enabled = fields.Boolean()
    checklist = Text(max=5000)
    active = fields.Boolean()


class ServiceCreate(ServiceUpdate):
    code = Text(required=True, validate=validate.Regexp(r"^[A-Za-z]{1,2}$"))
    name = Text(required=True, min=1, max=200)


class CounterSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    names = fields.Dict(**NAMES_OUT)
    state = fields.String(required=True)
    services = fields.List(fields.String(), required=True)


class CounterCreate(StrictSchema):
    name = Text(required=True, min=1, max=COUNTER_NAME_MAX)
    names = names_field(COUNTER_NAME_MAX)
    services = fields.List(Text(min=1, max=4), load_default=list)
    state = Text(validate=validate.OneOf(COUNTER_STATES), load_default="closed")


class CounterUpdate(StrictSchema):
    name = Text(min=1, max=COUNTER_NAME_MAX)
    names = names_field(COUNTER_NAME_MAX)
    services = fields.List(Text(min=1, max=4))
    state = Text(validate=validate.OneOf(COUNTER_STATES))


class StaffSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    name = fields.String()
    role = fields.String(required=True)
    active = fields.Boolean()
    branches = fields.List(fields.String())


class StaffCreate(StrictSchema):
    email = Text(required=True, min=3, max=254)
    password = Text(required=True, min=10, max=1024, trim=False)
    role = Text(required=True, validate=validate.OneOf(ROLES))
    branches = fields.List(Text(max=63), load_default=list)
    name = Text(max=200, load_default="")


class StaffUpdate(StrictSchema):
    password = Text(min=10, max=1024, trim=False)
    role = Text(validate=validate.OneOf(ROLES))
    branches = fields.List(Text(max=63))
    name = Text(max=200)
    active = fields.Boolean()


class EstimateSchema(Schema):
    state = fields.String(required=True, metadata={
        "description": "waiting: minutes and the 80 % range low-high are given; no_counter: no counter "
                       "serves the service now (opens_at: when the next one opens, null if none today); "
                       "closed: after hours; not_waiting: called, served or gone."})
    minutes = fields.Integer(required=True, allow_none=True, metadata={"description": "Minutes until called."})
    low = fields.Integer(required=True, allow_none=True)
    high = fields.Integer(required=True, allow_none=True)
    opens_at = fields.String(required=True, allow_none=True, metadata={"description": "Branch local time."})


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


class QueueSchema(Schema):
    branch = fields.String()
    local_date = fields.String()
    waiting = fields.List(fields.Nested(WaitingSchema))
    counters = fields.List(fields.Nested(CounterNowSchema))



class AvailabilityQuery(StrictSchema):
    service = Text(required=True, min=1, max=4)
    # "from" is a Python keyword: the field is named from_ and read from the "from" parameter.
    from_ = When("date", data_key="from")
    days = fields.Integer(load_default=7, validate=validate.Range(min=1, max=62))


class SlotSchema(Schema):
    start = fields.String(required=True)
    end = fields.String(required=True)
    remaining = fields.Integer(required=True)
    inside_cutoff = fields.Boolean(required=True, metadata={
        "description": "Booked now, this visit could be cancelled until it starts but not rescheduled online "
                       "(its start is closer than the branch's change cut-off)."})


class DaySlotsSchema(Schema):
    date = fields.String(required=True)
    slots = fields.List(fields.Nested(SlotSchema), required=True)


class AvailabilitySchema(Schema):
    branch = fields.String(required=True)
    service = fields.String(required=True)
    timezone = fields.String(required=True)
    days = fields.List(fields.Nested(DaySlotsSchema), required=True)


# `start` stays text here: the view parses it (input_rules.parse_moment) so that its refusals keep
# their own codes, invalid_time and naive_time, which the booking pages word for customers.
START = {"description": "ISO 8601 with the offset, e.g. 2026-12-01T10:30:00+08:00; days 2000 to 2100.",
         "format": "date-time"}


class AppointmentRequest(StrictSchema):
    service = Text(required=True, min=1, max=4)
    start = Text(required=True, min=10, max=40, metadata=START)
    name = Text(required=True, min=1, max=200)
    phone = Text(max=32)
    email = Text(max=254, email=True)
    language = Text(validate=validate.OneOf(["en", "zh_Hant", "zh_Hans"]), load_default="en")


class RescheduleRequest(StrictSchema):
    start = Text(required=True, min=10, max=40, metadata=START)


class AppointmentSchema(Schema):
    id = fields.Integer(required=True)
    status = fields.String(required=True)
    branch = fields.String(required=True)
    branch_name = fields.String(required=True)
    service = fields.String(required=True)
    service_name = fields.String(required=True)
    service_names = fields.Dict(**NAMES_OUT)
    name = fields.String(required=True)
    start = fields.String(required=True)
    end = fields.String(required=True)
    check_in_code = fields.String(required=True)
    change_until = fields.String(required=True, metadata={"description": "Rescheduling online is possible until then."})
    cancel_until = fields.String(metadata={"description": "Cancelling online is possible until then (the start)."})
    can_reschedule = fields.Boolean()
    can_cancel = fields.Boolean()
    branch_phone = fields.String(allow_none=True, metadata={"description": "Whom to call when it can no longer "
                                                            "change online; null when the branch has none."})
    sequence = fields.Integer(required=True)


class BookedSchema(AppointmentSchema):
    manage_token = fields.String(required=True)
    manage_url = fields.String(required=True)


class CheckInRequest(StrictSchema):
    code = Text(required=True, min=4, max=20)


class CheckedInSchema(Schema):
    appointment_id = fields.Integer(required=True)
    ticket_id = fields.Integer(required=True)
    label = fields.String(required=True)
    status = fields.String(required=True)
    service = fields.String(required=True)
    position = fields.Integer(required=True)
    estimate = fields.Nested(EstimateSchema, required=True)
    repeat = fields.Boolean(required=True)
    token = fields.String(allow_none=True)
    track_url = fields.String(allow_none=True)


class DayQuery(StrictSchema):
    date = When("date")


class StaffAppointmentSchema(AppointmentSchema):
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    ticket_label = fields.String(allow_none=True)


class CustomerBlockSchema(Schema):
    id = fields.Integer(required=True)
    strikes = fields.Integer(required=True)
    booking_blocked_until = fields.String(allow_none=True)
