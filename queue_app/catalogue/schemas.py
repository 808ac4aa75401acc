"""API shapes of branches, services, counters and staff."""
from marshmallow import Schema, fields, validate

from queue_app.accounts.models import ROLES
from queue_app.catalogue.models import COUNTER_STATES
from queue_app.catalogue.operations import COUNTER_NAME_MAX, SERVICE_NAME_MAX
from queue_app.web.api.schemas import NAMES_OUT, StrictSchema, names_field
from queue_app.web.input_rules import Text, When


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
    set_off_margin_minutes = fields.Integer(metadata={
        "description": "Remote tickets: set off when the earliest likely call is the trip plus this."})
    booking_rules = fields.Dict(keys=fields.String(), values=fields.Integer())
    phone = fields.String(allow_none=True, metadata={"description": "E.164; told to customers who can no longer "
                                                     "change a booking online. null: none."})
    latitude = fields.Float(allow_none=True, metadata={"description": "WGS 84 degrees; null: not set."})
    longitude = fields.Float(allow_none=True, metadata={"description": "WGS 84 degrees; null: not set."})


class BranchUpdate(StrictSchema):
    name = Text(min=1, max=200)
    timezone = Text(min=1, max=64)
    language = Text(validate=validate.OneOf(["en", "zh_Hant", "zh_Hans"]))
    country = Text(validate=validate.Regexp(r"^[A-Z]{2}$"))
    opening_hours = fields.Dict(keys=Text(max=16), values=fields.Raw())
    closed_dates = fields.List(When("date"))
    allow_remote_tickets = fields.Boolean()
    postpone_places = fields.Integer(validate=validate.Range(min=1, max=50))
    set_off_margin_minutes = fields.Integer(validate=validate.Range(min=0, max=60))
    booking_rules = fields.Dict(keys=Text(max=64), values=fields.Integer())
    phone = Text(max=32, allow_none=True, metadata={
        "description": "The branch's phone; without a country code it is read in the branch's country. "
                       "Stored as E.164; empty or null removes it."})
    # Where the branch is, for the branch list's "distance from me" (worked out in the visitor's browser).
    latitude = fields.Float(allow_none=True, validate=validate.Range(min=-90, max=90), metadata={
        "description": "WGS 84 degrees, -90 to 90; set with longitude (both or neither); null removes it."})
    longitude = fields.Float(allow_none=True, validate=validate.Range(min=-180, max=180), metadata={
        "description": "WGS 84 degrees, -180 to 180; set with latitude (both or neither); null removes it."})


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
