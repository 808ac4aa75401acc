"""API shapes every feature shares (a strict base, names per language, estimates, times); each
feature keeps its own in its schemas.py. Together they are the OpenAPI document."""
from marshmallow import Schema, fields, validate

from queue_app.catalogue.operations import NAME_LANGUAGES
from queue_app.web.input_rules import Text


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


class EstimateSchema(Schema):
    state = fields.String(required=True, metadata={
        "description": "waiting: minutes and the 80 % range low-high are given; no_counter: no counter "
                       "serves the service now (opens_at: when the next one opens, null if none today); "
                       "closed: after hours; not_waiting: called, served or gone."})
    minutes = fields.Integer(required=True, allow_none=True, metadata={"description": "Minutes until called."})
    low = fields.Integer(required=True, allow_none=True)
    high = fields.Integer(required=True, allow_none=True)
    opens_at = fields.String(required=True, allow_none=True, metadata={"description": "Branch local time."})


# `start` stays text here: the view parses it (input_rules.parse_moment) so that its refusals keep
# their own codes, invalid_time and naive_time, which the booking pages word for customers.
START = {"description": "ISO 8601 with the offset, e.g. 2026-12-01T10:30:00+08:00; days 2000 to 2100.",
         "format": "date-time"}


