"""API shapes of availability, bookings and check-in."""
from marshmallow import Schema, fields, validate

from queue_app.web.api.schemas import NAMES_OUT, START, EstimateSchema, StrictSchema
from queue_app.web.input_rules import Text, When


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
