"""Branches, services, counters, staff and kiosk devices: creation and edits with validation."""
import math
import re
from datetime import date, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from queue_app.accounts.models import ROLES, Staff
from queue_app.booking.rules import check_rules
from queue_app.catalogue.models import COUNTER_STATES, WEEKDAYS, Branch, Counter, CounterService, Service
from queue_app.core import day_range, events, row_cache
from queue_app.core.errors import Conflict, Invalid, NotFound
from queue_app.core.models import utcnow
from queue_app.core.security import DEFAULT_HASH_COST, hash_password, new_token, token_hash
from queue_app.core.transaction import write_transaction
from queue_app.customers import identity
from queue_app.kiosks.models import KioskDevice
from queue_app.notifications.texts import LANGUAGES

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
CODE_RE = re.compile(r"^[A-Z]{1,2}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
# Languages a service or counter may be named in besides its `name` (the branch's default wording).
NAME_LANGUAGES = ("en", "zh_Hant", "zh_Hans")
SERVICE_NAME_MAX = 200
COUNTER_NAME_MAX = 64


def _invalid(field: str, message: str) -> Invalid:
    return Invalid("invalid_field", f"{field}: {message}", {field: [message]})


def localized_name(thing, language) -> str:
    """A service's or counter's name in `language` (e.g. "zh_Hant"), else its default `name`."""
    return pick_name(thing.name, getattr(thing, "names", None), language)


def pick_name(name: str, names: dict | None, language) -> str:
    """The same choice over plain values (event data, read models): `names[language]` or `name`."""
    return (names or {}).get(str(language or "")) or name


def check_names(names, max_length: int) -> dict:
    """{"zh_Hant": "...", "zh_Hans": "..."}: known language codes, non-empty strings up to max_length.
    An empty string drops that language (it falls back to `name`)."""
    if names is None:
        return {}
    if not isinstance(names, dict):
        raise _invalid("names", "an object mapping a language code to a name.")
    clean = {}
    for language, value in names.items():
        if language not in NAME_LANGUAGES:
            raise _invalid("names", f"unknown language '{language}'; use {', '.join(NAME_LANGUAGES)}.")
        if not isinstance(value, str):
            raise _invalid("names", f"{language}: a name is a string.")
        value = value.strip()
        if len(value) > max_length:
            raise _invalid("names", f"{language}: at most {max_length} characters.")
        if value:
            clean[language] = value
    return clean


def check_timezone(name: str) -> str:
    try:
        if not name or name not in available_timezones():
            raise ZoneInfoNotFoundError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid("timezone", f"'{name}' is not an IANA time zone (e.g. Asia/Taipei).") from None
    return name


def check_opening_hours(hours: dict) -> dict:
    """{"mon": [["08:30", "12:00"], ...]}: wall-clock intervals, ordered, not overlapping."""
    if not isinstance(hours, dict):
        raise _invalid("opening_hours", "must be an object keyed by weekday (mon..sun).")
    clean = {}
    for day, intervals in hours.items():
        if day not in WEEKDAYS:
            raise _invalid("opening_hours", f"unknown weekday '{day}'; use {', '.join(WEEKDAYS)}.")
        if not isinstance(intervals, list):
            raise _invalid("opening_hours", f"{day} must be a list of [open, close] pairs.")
        last_close = None
        parsed = []
        for pair in intervals:
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                raise _invalid("opening_hours", f"{day}: each interval is [\"HH:MM\", \"HH:MM\"].")
            try:
                opens = time.fromisoformat(pair[0])
                closes = time.max if pair[1] == "24:00" else time.fromisoformat(pair[1])
            except ValueError:
                raise _invalid("opening_hours", f"{day}: '{pair[0]}'-'{pair[1]}' is not HH:MM.") from None
            if closes <= opens:
                raise _invalid("opening_hours", f"{day}: {pair[0]}-{pair[1]} closes before it opens.")
            if last_close is not None and opens < last_close:
                raise _invalid("opening_hours", f"{day}: intervals overlap or are out of order.")
            last_close = closes
            parsed.append([pair[0], pair[1]])
        clean[day] = parsed
    return clean


def check_closed_dates(dates: list) -> list:
    if not isinstance(dates, list):
        raise _invalid("closed_dates", "must be a list of YYYY-MM-DD dates.")
    try:
        days = {d if isinstance(d, date) else date.fromisoformat(d) for d in dates}
    except (TypeError, ValueError):
        raise _invalid("closed_dates", "must be a list of YYYY-MM-DD dates.") from None
    if not all(day_range.in_range(d) for d in days):
        raise _invalid("closed_dates", f"dates run from {day_range.FIRST_DAY} to {day_range.LAST_DAY}.")
    return sorted(d.isoformat() for d in days)


def check_announcement_languages(languages) -> list:
    """Shipped language codes, in the order the lobby display announces a call in them; no repeats."""
    if not isinstance(languages, list) or not all(isinstance(code, str) for code in languages):
        raise _invalid("announcement_languages", "must be a list of language codes.")
    unknown = [code for code in languages if code not in LANGUAGES]
    if unknown:
        raise _invalid("announcement_languages", f"unknown language '{unknown[0]}'; use {', '.join(LANGUAGES)}.")
    if len(set(languages)) != len(languages):
        raise _invalid("announcement_languages", "each language once.")
    return list(languages)


def check_coordinate(field: str, value, limit: float) -> float | None:
    """Degrees within +-limit (latitude 90, longitude 180), or None for none."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _invalid(field, f"a number of degrees from -{limit:g} to {limit:g}.")
    if not -limit <= value <= limit:
        raise _invalid(field, f"a number of degrees from -{limit:g} to {limit:g}.")
    return float(value)


def _apply_coordinates(branch: Branch, fields: dict) -> None:
    if "latitude" in fields:
        branch.latitude = check_coordinate("latitude", fields["latitude"], 90)
    if "longitude" in fields:
        branch.longitude = check_coordinate("longitude", fields["longitude"], 180)
    if (branch.latitude is None) != (branch.longitude is None):
        # A distance needs both; one alone is a half-typed form.
        missing = "longitude" if branch.longitude is None else "latitude"
        raise _invalid(missing, "give both latitude and longitude, or neither.")


# Built once: every request looks a branch up by slug, and building a statement costs as much as
# running it (SQLAlchemy caches the compiled SQL, not the statement object).
_BRANCH_BY_SLUG = select(Branch).where(Branch.slug == bindparam("slug"))


def get_branch(session: Session, slug: str) -> Branch:
    """The branch, attached to `session`; kept per process while no branch changes (core/row_cache.py)."""
    branch = row_cache.get(session, Branch, slug, lambda: session.scalar(_BRANCH_BY_SLUG, {"slug": slug}))
    if branch is None:
        raise NotFound("branch_not_found", f"No branch '{slug}'.")
    return branch


def _apply_branch_fields(branch: Branch, fields: dict) -> None:
    if "name" in fields:
        if not str(fields["name"]).strip():
            raise _invalid("name", "must not be empty.")
        branch.name = str(fields["name"]).strip()
    if "timezone" in fields:
        branch.timezone = check_timezone(fields["timezone"])
    if "opening_hours" in fields:
        branch.opening_hours = check_opening_hours(fields["opening_hours"])
    if "closed_dates" in fields:
        branch.closed_dates = check_closed_dates(fields["closed_dates"])
    if "announcement_languages" in fields:
        branch.announcement_languages = check_announcement_languages(fields["announcement_languages"])
    if "booking_rules" in fields:
        branch.booking_rules = check_rules(fields["booking_rules"])
    if "postpone_places" in fields:
        places = fields["postpone_places"]
        if not isinstance(places, int) or not 1 <= places <= 50:
            raise _invalid("postpone_places", "a whole number from 1 to 50.")
        branch.postpone_places = places
    if "set_off_margin_minutes" in fields:
        margin = fields["set_off_margin_minutes"]
        if not isinstance(margin, int) or isinstance(margin, bool) or not 0 <= margin <= 60:
            raise _invalid("set_off_margin_minutes", "a whole number of minutes from 0 to 60.")
        branch.set_off_margin_minutes = margin
    for key in ("language", "country", "allow_remote_tickets"):
        if key in fields:
            setattr(branch, key, fields[key])
    if "latitude" in fields or "longitude" in fields:
        _apply_coordinates(branch, fields)
    if "phone" in fields:
        # Told to customers who can no longer change a booking online; read in the branch's country.
        phone = (fields["phone"] or "").strip()
        try:
            branch.phone = identity.normalise_phone(phone, branch.country) if phone else None
        except Invalid:
            raise _invalid("phone", "not a phone number; write it with its country code, "
                                    "e.g. +886 2 2345 6789.") from None


def create_branch(session: Session, slug: str, name: str, timezone: str, **fields) -> Branch:
    if not SLUG_RE.match(slug or ""):
        raise _invalid("slug", "lower-case letters, digits and dashes, up to 63 characters.")
    with write_transaction(session):
        if session.scalar(select(Branch.id).where(Branch.slug == slug)):
            raise Conflict("already_exists", f"Branch '{slug}' already exists.")
        branch = Branch(slug=slug, name=name, timezone="UTC", opening_hours={}, closed_dates=[])
        _apply_branch_fields(branch, {"name": name, "timezone": timezone, **fields})
        session.add(branch)
    return branch


def update_branch(session: Session, slug: str, **fields) -> Branch:
    with write_transaction(session):
        branch = get_branch(session, slug)
        _apply_branch_fields(branch, fields)
    return branch


def _apply_service_fields(service: Service, fields: dict) -> None:
    if "name" in fields:
        if not str(fields["name"]).strip():
            raise _invalid("name", "must not be empty.")
        service.name = str(fields["name"]).strip()
        if len(service.name) > SERVICE_NAME_MAX:
            raise _invalid("name", f"at most {SERVICE_NAME_MAX} characters.")
    if "names" in fields:
        service.names = check_names(fields["names"], SERVICE_NAME_MAX)
    if "expected_minutes" in fields:
        minutes = fields["expected_minutes"]
        if not isinstance(minutes, int) or not 1 <= minutes <= 480:
            raise _invalid("expected_minutes", "a whole number of minutes from 1 to 480.")
        service.expected_minutes = minutes
    for key in ("checklist", "walk_in_enabled", "booking_enabled", "active"):
        if key in fields:
            setattr(service, key, fields[key])


def create_service(session: Session, branch_slug: str, code: str, name: str, **fields) -> Service:
    code = (code or "").strip().upper()
    if not CODE_RE.match(code):
        raise _invalid("code", "one or two letters A-Z (the ticket prefix).")
    with write_transaction(session):
        branch = get_branch(session, branch_slug)
        if session.scalar(select(Service.id).where(Service.branch_id == branch.id, Service.code == code)):
            raise Conflict("already_exists", f"Service code {code} is taken at '{branch_slug}'.")
        service = Service(branch_id=branch.id, code=code, name=name, expected_minutes=10, checklist="",
                          walk_in_enabled=True, booking_enabled=True, active=True)
        _apply_service_fields(service, {"name": name, **fields})
        session.add(service)
    return service


def update_service(session: Session, service_id: int, **fields) -> Service:
    with write_transaction(session):
        service = session.get(Service, service_id)
        if service is None:
            raise NotFound("service_not_found", f"No service {service_id}.")
        _apply_service_fields(service, fields)
    return service


def _set_counter_services(session: Session, counter: Counter, codes: list[str]) -> None:
    services = []
    for code in codes:
        service = session.scalar(
            select(Service).where(Service.branch_id == counter.branch_id, Service.code == str(code).upper())
        )
        if service is None:
            raise _invalid("services", f"no service '{code}' at this branch.")
        if service not in services:
            services.append(service)
    counter.service_links = [CounterService(service_id=s.id, position=i) for i, s in enumerate(services)]


def create_counter(session: Session, branch_slug: str, name: str, services: list[str], state: str = "closed",
                   names: dict | None = None) -> Counter:
    if not (name or "").strip():
        raise _invalid("name", "must not be empty.")
    if len(name.strip()) > COUNTER_NAME_MAX:
        raise _invalid("name", f"at most {COUNTER_NAME_MAX} characters.")
    names = check_names(names, COUNTER_NAME_MAX)
    if state not in COUNTER_STATES:
        raise _invalid("state", f"one of {', '.join(COUNTER_STATES)}.")
    with write_transaction(session):
        branch = get_branch(session, branch_slug)
        if session.scalar(select(Counter.id).where(Counter.branch_id == branch.id, Counter.name == name.strip())):
            raise Conflict("already_exists", f"Counter '{name}' exists at '{branch_slug}'.")
        counter = Counter(branch_id=branch.id, name=name.strip(), names=names, state=state)
        session.add(counter)
        session.flush()
        _set_counter_services(session, counter, services)
        events.counters_changed(session, branch.id, utcnow())
    return counter


def update_counter(session: Session, counter_id: int, **fields) -> Counter:
    with write_transaction(session):
        counter = session.get(Counter, counter_id)
        if counter is None:
            raise NotFound("counter_not_found", f"No counter {counter_id}.")
        if "state" in fields:
            if fields["state"] not in COUNTER_STATES:
                raise _invalid("state", f"one of {', '.join(COUNTER_STATES)}.")
            counter.state = fields["state"]
        if "name" in fields:
            name = str(fields["name"]).strip()
            if not name:
                raise _invalid("name", "must not be empty.")
            if len(name) > COUNTER_NAME_MAX:
                raise _invalid("name", f"at most {COUNTER_NAME_MAX} characters.")
            if session.scalar(select(Counter.id).where(Counter.branch_id == counter.branch_id, Counter.name == name,
                                                       Counter.id != counter.id)):
                raise Conflict("already_exists", f"Another counter of the branch is named '{name}'.")
            counter.name = name
        if "names" in fields:
            counter.names = check_names(fields["names"], COUNTER_NAME_MAX)
        if "services" in fields:
            _set_counter_services(session, counter, fields["services"])
        events.counters_changed(session, counter.branch_id, utcnow())
    return counter


def _check_staff_fields(fields: dict) -> None:
    if "role" in fields and fields["role"] not in ROLES:
        raise _invalid("role", f"one of {', '.join(ROLES)}.")
    if "password" in fields and len(fields["password"] or "") < MIN_PASSWORD:
        raise _invalid("password", f"at least {MIN_PASSWORD} characters.")


def _branches_by_slug(session: Session, slugs: list[str]) -> list[Branch]:
    return [get_branch(session, slug) for slug in slugs]


def create_staff(session: Session, email: str, password: str, role: str, branches: list[str],
                 name: str = "", *, hash_cost: str = DEFAULT_HASH_COST) -> Staff:
    """`hash_cost`: the app's PASSWORD_HASH_COST (core/security.py)."""
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email):
        raise _invalid("email", "not an e-mail address.")
    _check_staff_fields({"role": role, "password": password})
    with write_transaction(session):
        if session.scalar(select(Staff.id).where(Staff.email == email)):
            raise Conflict("already_exists", f"Staff {email} already exists.")
        staff = Staff(email=email, name=name, role=role, password_hash=hash_password(password, hash_cost),
                      active=True, token_version=1)
        staff.branches = _branches_by_slug(session, branches)
        session.add(staff)
    return staff


def update_staff(session: Session, staff_id: int, *, hash_cost: str = DEFAULT_HASH_COST, **fields) -> Staff:
    _check_staff_fields(fields)
    with write_transaction(session):
        staff = session.get(Staff, staff_id)
        if staff is None:
            raise NotFound("staff_not_found", f"No staff {staff_id}.")
        loses_admin = staff.role == "admin" and (
            fields.get("role", "admin") != "admin" or fields.get("active", True) is False
        )
        if loses_admin and not session.scalar(
            select(Staff.id).where(Staff.role == "admin", Staff.active.is_(True), Staff.id != staff.id).limit(1)
        ):
            raise Conflict("last_admin", "This is the last active admin; make another admin first.")
        if "password" in fields:
            staff.password_hash = hash_password(fields["password"], hash_cost)
            staff.token_version += 1  # log out everywhere
        for key in ("role", "name", "active"):
            if key in fields:
                setattr(staff, key, fields[key])
        if "branches" in fields:
            staff.branches = _branches_by_slug(session, fields["branches"])
        if fields.get("active") is False:
            staff.token_version += 1
    return staff


def create_kiosk_device(session: Session, branch_slug: str, name: str) -> tuple[KioskDevice, str]:
    """Returns the device and its token; the token is shown once and only its hash is kept."""
    if not (name or "").strip():
        raise _invalid("name", "must not be empty.")
    token = new_token()
    with write_transaction(session):
        branch = get_branch(session, branch_slug)
        device = KioskDevice(branch_id=branch.id, name=name.strip(), token_hash=token_hash(token),
                             active=True, printer_state={})
        session.add(device)
    return device, token
