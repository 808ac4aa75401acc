"""The rules every piece of request input follows, in one place, for the API and the pages alike.

- Text (`Text` in marshmallow schemas, `StrictText` in WTForms, `text_problem` in views that read
  raw values): no NUL character and no lone UTF-16 surrogate (JSON can carry "\\ud800", which no
  database can store), trimmed unless told not to (passwords and secrets are not), and a length
  limit, 1,000 characters unless the field says otherwise.
- Dates and times (`When("date")` / `When("datetime")` in schemas, `parse_day` / `parse_moment`
  in views): ISO 8601, days from 2000-01-01 to 2100-12-31 (queue_app/core/day_range.py), offsets
  from -12:00 to +14:00 in whole minutes, and a time without its offset refused where one is needed.
- JSON bodies nested deeper than MAX_JSON_DEPTH levels are refused before they are parsed
  (400 `malformed_json`), so a 5,000-deep array is not a RecursionError.

A refusal is a 4xx that names the field; nothing is written.
"""
import re
from datetime import date, datetime, timedelta

from flask import jsonify, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate
from wtforms.validators import Length, ValidationError

from queue_app.core.day_range import FIRST_DAY, LAST_DAY
from queue_app.web.errors import error_response, is_api_request

MAX_JSON_DEPTH = 32
DEFAULT_MAX_LENGTH = 1000
LOWEST_OFFSET = timedelta(hours=-12)
HIGHEST_OFFSET = timedelta(hours=14)

_SURROGATE = re.compile("[\ud800-\udfff]")

# The API speaks English (as its other messages do); pages get the translated words.
UNSTORABLE = "Contains a NUL character or a broken character (a lone surrogate)."
UNSTORABLE_PAGE = _l("This contains characters that cannot be saved.")
DATE_MESSAGES = {
    "invalid_date": "Not a date: YYYY-MM-DD, e.g. 2026-12-01.",
    "invalid_time": "Not an ISO 8601 time, e.g. 2026-12-01T10:30:00+08:00.",
    "naive_time": "Give the time with its offset, e.g. 2026-12-01T10:30:00+08:00.",
    "bad_offset": "The offset must be from -12:00 to +14:00, in whole minutes.",
    "out_of_range": f"Dates run from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}.",
}


class InputRejected(ValueError):
    """A value the rules refuse; `code` is one of DATE_MESSAGES' keys or "unstorable"."""

    def __init__(self, code: str, message: str | None = None):
        super().__init__(message or DATE_MESSAGES.get(code, UNSTORABLE))
        self.code = code
        self.message = str(self)


# --- the rules --------------------------------------------------------------------------------

def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored (an English sentence), or None when it can."""
    if "\x00" in value or _SURROGATE.search(value):
        return UNSTORABLE
    return None


def clean_text(value: str, *, trim: bool = True) -> str:
    """`value` trimmed; InputRejected("unstorable") for NUL or a lone surrogate."""
    if text_problem(value):
        raise InputRejected("unstorable")
    return value.strip() if trim else value


def parse_day(text: str) -> date:
    """A YYYY-MM-DD day from 2000-01-01 to 2100-12-31, else InputRejected."""
    if not isinstance(text, str) or text_problem(text):
        raise InputRejected("invalid_date")
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InputRejected("invalid_date") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InputRejected("out_of_range")
    return day


def parse_moment(text: str, *, need_offset: bool = True) -> datetime:
    """An ISO 8601 time, its day from 2000-01-01 to 2100-12-31 and its offset from -12:00 to +14:00
    (whole minutes); without an offset it is refused when `need_offset` (else returned naive)."""
    if not isinstance(text, str) or text_problem(text):
        raise InputRejected("invalid_time")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputRejected("invalid_time") from None
    if not FIRST_DAY <= moment.date() <= LAST_DAY:
        raise InputRejected("out_of_range")  # checked first: converting such a time may overflow
    offset = moment.utcoffset()
    if offset is None:
        if need_offset:
            raise InputRejected("naive_time")
        return moment
    if not LOWEST_OFFSET <= offset <= HIGHEST_OFFSET or offset % timedelta(minutes=1):
        raise InputRejected("bad_offset")
    return moment


# --- marshmallow: the API's schemas -------------------------------------------------------------

def _validators(given) -> list:
    if given is None:
        return []
    return list(given) if isinstance(given, (list, tuple)) else [given]


class Text(fields.String):
    """A string the database can store: no NUL, no lone surrogate; trimmed (`trim=False` for
    passwords and secrets); `min` to `max` characters after trimming (max 1,000 unless given).
    `email=True` also checks the address form (OpenAPI format `email`)."""

    default_error_messages = {"unstorable": UNSTORABLE}

    def __init__(self, *, min: int | None = None, max: int = DEFAULT_MAX_LENGTH, trim: bool = True,
                 email: bool = False, **kwargs):
        checks = _validators(kwargs.pop("validate", None))
        checks.append(validate.Length(min=min, max=max))
        if email:
            checks.append(validate.Email())
            kwargs["metadata"] = {"format": "email", **(kwargs.get("metadata") or {})}
        super().__init__(validate=checks, **kwargs)
        self.trim = trim

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return clean_text(text, trim=self.trim)
        except InputRejected:
            raise self.make_error("unstorable") from None


class When(fields.String):
    """A day (`When("date")`, YYYY-MM-DD, loads a `date`) or a time (`When("datetime")`, ISO 8601
    with its offset, loads an aware `datetime`), by the rules of `parse_day` / `parse_moment`."""

    default_error_messages = DATE_MESSAGES

    def __init__(self, kind: str = "date", **kwargs):
        if kind not in ("date", "datetime"):
            raise ValueError(f"kind: 'date' or 'datetime', not {kind!r}")
        self.kind = kind
        kwargs["metadata"] = {"format": "date" if kind == "date" else "date-time", **(kwargs.get("metadata") or {})}
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        return value.isoformat() if value is not None else None

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return parse_day(value) if self.kind == "date" else parse_moment(value)
        except InputRejected as refused:
            raise self.make_error(refused.code) from None


# --- WTForms: the pages' forms ------------------------------------------------------------------

class StrictText(Length):
    """WTForms' face of `Text`: refuses NUL and lone surrogates, then checks the length (WTForms'
    own, translated, length messages). Trimming is the form's `strip_spaces` filter."""

    def __init__(self, min: int = -1, max: int = DEFAULT_MAX_LENGTH, message=None):
        super().__init__(min=min, max=max, message=message)

    def __call__(self, form, field):
        if isinstance(field.data, str) and text_problem(field.data):
            raise ValidationError(UNSTORABLE_PAGE)
        super().__call__(form, field)


# --- the whole app: JSON nesting and the path ---------------------------------------------------

_JSON_SPECIALS = re.compile(rb'[\[\]{}"\\]')


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if the JSON text nests arrays and objects more than `limit` deep (brackets inside
    strings do not count). One pass over the special characters only; no parsing."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    in_string = False
    skip = -1
    for match in _JSON_SPECIALS.finditer(body):
        at = match.start()
        if at == skip:
            continue  # the character after a backslash
        char = body[at]
        if in_string:
            if char == 0x5C:  # backslash
                skip = at + 1
            elif char == 0x22:  # quote
                in_string = False
        elif char == 0x22:
            in_string = True
        elif char in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif char in (0x5D, 0x7D):
            depth -= 1
    return False


def refuse_odd_requests():
    """before_request: a JSON body nested too deeply is a 400 `malformed_json` (JSON, since the caller
    speaks JSON); a NUL in the path names nothing, a 404."""
    from werkzeug.exceptions import NotFound


    if "\x00" in request.path:
        raise NotFound()
    if not request.is_json:
        return None
    if not json_too_deep(request.get_data(cache=True)):
        return None
    if is_api_request():
        return error_response(400, "malformed_json",
                              f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.")
    response = jsonify({"error": {"code": "malformed_json",
                                  "message": _("The request could not be read. Please try again.")}})
    response.status_code = 400
    return response


def init_app(app) -> None:
    app.before_request(refuse_odd_requests)
