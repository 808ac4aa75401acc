"""Who is calling: staff (bearer token or login session) or a kiosk device (bearer token)."""
from dataclasses import dataclass

from flask import current_app, g, request
from flask_login import current_user
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import bindparam, select

from queue_app.accounts.models import Staff
from queue_app.core import row_cache
from queue_app.core.extensions import csrf, db
from queue_app.core.security import token_hash
from queue_app.kiosks.models import KioskDevice

_SALT = "queue-app-api-token"


@dataclass
class Principal:
    staff: Staff | None = None
    kiosk: KioskDevice | None = None
    error: str | None = None  # why a presented token was refused


# Built once: every API request runs one of them.
_STAFF_BY_ID = select(Staff).where(Staff.id == bindparam("staff_id"))
_KIOSK_BY_TOKEN = select(KioskDevice).where(KioskDevice.token_hash == bindparam("token_hash"))


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def issue_api_token(staff: Staff) -> str:
    return _serializer().dumps({"s": staff.id, "v": staff.token_version})


def _staff_from_token(token: str) -> Principal:
    try:
        data = _serializer().loads(token, max_age=current_app.config["API_TOKEN_MAX_AGE"])
    except SignatureExpired:
        return Principal(error="token_expired")
    except BadSignature:
        return Principal(error="token_invalid")
    staff = _staff_by_id(data.get("s")) if isinstance(data, dict) else None
    if staff is None or not staff.active or staff.token_version != data.get("v"):
        return Principal(error="token_invalid")
    return Principal(staff=staff)


def _staff_by_id(staff_id) -> Staff | None:
    # Kept per process while no account changes (core/row_cache.py), with its branches: every staff
    # request checks them. A password change or a deactivation counts at once.
    if not isinstance(staff_id, int) or isinstance(staff_id, bool):
        return None
    return row_cache.get(db.session, Staff, ("id", staff_id),
                         lambda: db.session.scalars(_STAFF_BY_ID, {"staff_id": staff_id}).unique().one_or_none())


def _kiosk_from_token(token: str) -> Principal:
    # Kept per process while no device changes (core/row_cache.py): a deactivation counts at once.
    hashed = token_hash(token)
    device = row_cache.get(db.session, KioskDevice, ("token", hashed),
                           lambda: db.session.scalar(_KIOSK_BY_TOKEN, {"token_hash": hashed}))
    if device is None or not device.active:
        return Principal(error="token_invalid")
    return Principal(kiosk=device)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_principal() -> Principal:
    if "principal" in g:
        return g.principal
    token = bearer_token()
    if token is None:
        staff = current_user if current_user.is_authenticated else None
        if staff is not None and request.method not in ("GET", "HEAD", "OPTIONS"):
            csrf.protect()  # a browser session acting through the API must send X-CSRFToken
        principal = Principal(staff=staff)
    elif "." in token:  # signed staff tokens have dots, device tokens never do
        principal = _staff_from_token(token)
    else:
        principal = _kiosk_from_token(token)
    g.principal = principal
    return principal


def caller_rate_key() -> str:
    """Whom a per-caller rate limit counts: a kiosk device by its id (`kiosk:<id>`, the same key as
    the kiosk page's), another bearer by the token's hash, else the client address. Never the
    token itself: limiter keys sit in Redis."""
    token = bearer_token()
    if token is None:
        return request.remote_addr or "unknown"
    kiosk = current_principal().kiosk
    return f"kiosk:{kiosk.id}" if kiosk is not None else "bearer:" + token_hash(token)[:32]


def not_a_kiosk() -> bool:
    """For `exempt_when`: the per-device limits apply to kiosk tokens only."""
    return bearer_token() is None or current_principal().kiosk is None


def load_staff(user_id: str):
    """Flask-Login's user loader: the staff member of a login session, while it is still valid."""
    staff_id, _, version = user_id.partition(":")
    if not staff_id.isdigit():
        return None
    staff = _staff_by_id(int(staff_id))
    if staff is None or not staff.active or str(staff.token_version) != version:
        return None  # password changed or account disabled: the session ends
    return staff

def current_actor_id() -> int | None:
    """Who is acting in this request, for the audit log's flush hook."""
    from flask import g, has_request_context
    from flask_login import current_user

    if not has_request_context():
        return None
    principal = g.get("principal")  # set by the API's access check; pages use the login session
    staff = principal.staff if principal is not None else (current_user if current_user.is_authenticated else None)
    return staff.id if staff is not None else None
