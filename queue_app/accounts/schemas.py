"""API shapes of sign-in."""
from marshmallow import Schema, fields

from queue_app.web.api.schemas import StrictSchema
from queue_app.web.input_rules import Text


class TokenRequest(StrictSchema):
    email = Text(required=True, min=1, max=254)
    password = Text(required=True, min=1, max=1024, trim=False)


class TokenResponse(Schema):
    token = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    role = fields.String(required=True)
    staff_id = fields.Integer(required=True)
