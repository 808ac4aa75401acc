"""Errors the domain raises, and the one map from their kind to an HTTP status (web/errors.py)."""


def N_(msgid: str) -> str:
    """Marks a message for extraction (babel's default `N_` keyword); pages translate it later."""
    return msgid


class Message(str):
    """A message for people, in English as the API shows it, that keeps its msgid and values so a
    page translates it by its msgid (web/errors.py `translated`), never by matching the text."""

    def __new__(cls, msgid: str, **params):
        message = super().__new__(cls, msgid % params if params else msgid)
        message.msgid, message.params = msgid, params
        return message


class DomainError(Exception):
    """Base: `code` is stable and machine readable, `message` is for people."""

    kind = "invalid"

    def __init__(self, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or {}


class NotFound(DomainError):
    kind = "not_found"


class Conflict(DomainError):
    """The thing exists but is in the wrong state for this action."""

    kind = "conflict"


class Forbidden(DomainError):
    """The caller is known but their role or branch does not reach this record."""

    kind = "forbidden"


class Unauthorized(DomainError):
    """Credentials were wrong."""

    kind = "unauthorized"


class Locked(DomainError):
    """Refused for a while (too many failures); `retry_after` is in seconds."""

    kind = "locked"

    def __init__(self, code: str, message: str, retry_after: int):
        super().__init__(code, message)
        self.retry_after = retry_after


class Invalid(DomainError):
    """The values given cannot be accepted."""

    kind = "invalid"


# The status of each kind, for the API, the pages' fetch() calls and the kiosk alike.
HTTP_STATUS = {"invalid": 422, "not_found": 404, "conflict": 409, "forbidden": 403, "unauthorized": 401,
               "locked": 429}


def http_status(error: DomainError) -> int:
    return HTTP_STATUS.get(error.kind, 400)
