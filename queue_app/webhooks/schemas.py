"""API shapes of webhook endpoints, secrets and the delivery log."""
from marshmallow import Schema, fields, validate

from queue_app.web.input_rules import Text
from queue_app.webhooks import operations as webhooks


class EndpointCreate(Schema):
    url = Text(required=True, min=1, max=500)
    event_types = fields.List(Text(validate=validate.OneOf(webhooks.EVENT_TYPES)), required=True,
                              validate=validate.Length(min=1))
    description = Text(load_default="", max=200)
    active = fields.Boolean(load_default=True)
    secret = Text(min=16, max=100, trim=False,
                  metadata={"description": "Leave out to get a generated one (recommended)."})


class EndpointUpdate(Schema):
    url = Text(min=1, max=500)
    event_types = fields.List(Text(validate=validate.OneOf(webhooks.EVENT_TYPES)),
                              validate=validate.Length(min=1))
    description = Text(max=200)
    active = fields.Boolean()


class EndpointSchema(Schema):
    id = fields.Integer(required=True)
    branch = fields.String(required=True)
    url = fields.String(required=True)
    description = fields.String(required=True)
    event_types = fields.List(fields.String(), required=True)
    active = fields.Boolean(required=True)
    created_at = fields.String(required=True)
    secret_hint = fields.String(required=True, metadata={"description": "The secret's last four characters."})


class EndpointWithSecret(EndpointSchema):
    secret = fields.String(required=True, metadata={"description": "Shown only here: keep it with the receiver."})


class SecretSchema(Schema):
    secret = fields.String(required=True)
    previous_secret_until = fields.String(allow_none=True, required=True, metadata={
        "description": "Until when (UTC) the old secret signs as well; null without an overlap."})


class RotateQuery(Schema):
    overlap_hours = fields.Integer(load_default=24, validate=validate.Range(min=0, max=168), metadata={
        "description": "How long the old secret keeps signing next to the new one (0: stop at once)."})


class AttemptSchema(Schema):
    number = fields.Integer(required=True)
    started_at = fields.String(required=True)
    duration_ms = fields.Integer(required=True)
    status_code = fields.Integer(allow_none=True)
    error = fields.String(required=True)


class DeliverySchema(Schema):
    id = fields.Integer(required=True)
    event_id = fields.String(required=True)
    event_type = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["pending", "sending", "delivered", "failed", "cancelled"]})
    attempts = fields.Integer(required=True)
    created_at = fields.String(required=True)
    next_attempt_at = fields.String(allow_none=True)
    last_attempt_at = fields.String(allow_none=True)
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(required=True)
    delivered_at = fields.String(allow_none=True)
    attempt_log = fields.List(fields.Nested(AttemptSchema), required=True)


class DeliveriesQuery(Schema):
    status = Text(validate=validate.OneOf(("pending", "sending", "delivered", "failed", "cancelled")))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
