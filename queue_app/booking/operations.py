"""Online booking: availability, book, reschedule, cancel, kiosk check-in, no-show sweep.

Slots are computed per branch-local day from wall-clock opening hours in the branch's IANA zone:
a slot grid of `slot_minutes` from each opening, half-open intervals, a slot only where the whole
service fits before that interval closes. Wall-clock times that do not exist (the spring-forward
gap) are skipped; times that occur twice (fall-back) are taken once, at their first occurrence.

Capacity is counted per service and grid interval in BookingSlot rows. A booking covers every
interval its service duration touches; it claims each with one conditional increment
(`UPDATE ... SET booked = booked + 1 WHERE booked < capacity`) inside one write transaction, so a
slot can never be overbooked, on SQLite (write lock taken up front) or PostgreSQL (row lock held
by the UPDATE until commit). If any interval is full the whole transaction rolls back.
"""
import json
import math
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from queue_app.accounts.models import Staff
from queue_app.audit import operations as audit
from queue_app.booking.models import Appointment, BookingSlot
from queue_app.booking.rules import BookingRules, change_window, rules_for
from queue_app.catalogue import hours
from queue_app.catalogue.models import Branch, Counter, CounterService, Service
from queue_app.catalogue.operations import get_branch
from queue_app.core import day_range
from queue_app.core.errors import Conflict, Invalid, NotFound
from queue_app.core.models import utcnow
from queue_app.core.security import new_token, token_hash
from queue_app.core.transaction import write_transaction
from queue_app.customers import access as customer_access
from queue_app.customers import identity
from queue_app.customers.models import Customer
from queue_app.notifications import notify
from queue_app.planning import plan as planning
from queue_app.tickets import numbering, queueing
from queue_app.tickets.models import Ticket

# Check-in codes avoid look-alike characters (0/O, 1/I/L): people type them at the kiosk.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
IDEMPOTENCY_TOKEN_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class Slot:
    start: datetime  # aware UTC
    end: datetime
    remaining: int
    # Booked now, this visit could be cancelled but not rescheduled online (start - cut-off has passed).
    inside_cutoff: bool = False


@dataclass(frozen=True)
class Booked:
    appointment: Appointment
    manage_token: str
    replayed: bool = False  # an Idempotency-Key seen before: the same booking again


@dataclass(frozen=True)
class CheckIn:
    appointment: Appointment
    ticket: Ticket
    tracking_token: str | None  # None when the booking was checked in before (same ticket)
    estimates: "queueing.estimates.BranchEstimates | None" = None  # the branch's, as checked in


def _opening_intervals(branch: Branch, day: date) -> list[tuple[datetime, datetime]]:
    """The day's opening intervals as UTC instants (half-open)."""
    if branch.is_closed_on(day):
        return []
    return hours.day_intervals(branch.opening_hours, day, branch.zone)


def _grid_starts(branch: Branch, day: date, rules: BookingRules, duration: timedelta) -> list[tuple[datetime, datetime]]:
    """(start, end) of every slot of a local day where `duration` fits before closing."""
    zone = branch.zone
    step = timedelta(minutes=rules.slot_minutes)
    slots = []
    for open_utc, close_utc in _opening_intervals(branch, day):
        # Walk the grid in wall-clock time from the opening, so slots sit on :00, :15... locally.
        wall = open_utc.astimezone(zone).replace(tzinfo=None)
        close_wall = close_utc.astimezone(zone).replace(tzinfo=None)
        while wall < close_wall:
            start = hours.wall_to_utc(wall.date(), wall.time(), zone)
            if start is not None:
                if start + duration > close_utc:
                    break
                slots.append((start, start + duration))
            wall += step
    return slots


def _covered(start: datetime, duration: timedelta, rules: BookingRules) -> list[datetime]:
    """Grid interval starts a booking covers: a long service needs capacity in each."""
    step = timedelta(minutes=rules.slot_minutes)
    count = max(1, math.ceil(duration / step))
    return [start + i * step for i in range(count)]


def default_capacity(session: Session, service: Service) -> int:
    """Visits per interval when no staffing plan says otherwise: the counters serving the service."""
    return session.scalar(
        select(func.count(Counter.id))
        .join(CounterService, CounterService.counter_id == Counter.id)
        .where(CounterService.service_id == service.id, Counter.state != "closed")
    ) or 0


def _booked_counts(session: Session, service: Service, start: datetime, end: datetime) -> dict[datetime, int]:
    rows = session.execute(
        select(BookingSlot.start_at, BookingSlot.booked)
        .where(BookingSlot.service_id == service.id, BookingSlot.start_at >= start, BookingSlot.start_at < end)
    ).all()
    return {at: booked for at, booked in rows}


def availability(
    session: Session, branch_slug: str, service_code: str, from_day: date | None = None, days: int = 7,
    now: datetime | None = None,
) -> dict:
    """Bookable slots per local day with remaining capacity, within the branch's window."""
    now = now or utcnow()
    branch = get_branch(session, branch_slug)
    service = queueing.find_service(session, branch, service_code)
    if not service.booking_enabled:
        raise Conflict("booking_disabled", f"Service {service.code} cannot be booked online.")
    if not 1 <= days <= 62:
        raise Invalid("invalid_field", "days: 1 to 62.", {"days": ["1 to 62."]})
    rules = rules_for(branch)
    today = numbering.local_day(now, branch.zone)
    if from_day is not None and not day_range.in_range(from_day):
        raise Invalid("invalid_field", f"from: {day_range.FIRST_DAY} to {day_range.LAST_DAY}.",
                      {"from": [f"From {day_range.FIRST_DAY} to {day_range.LAST_DAY}."]})
    first = max(from_day or today, today)
    last = min(first + timedelta(days=days - 1), today + timedelta(days=rules.max_days_ahead))
    duration = timedelta(minutes=service.expected_minutes)
    capacity = default_capacity(session, service)
    earliest = now + timedelta(minutes=rules.min_notice_minutes)
    window_start = datetime.combine(first, time.min).replace(tzinfo=branch.zone) - timedelta(days=1)
    window_end = datetime.combine(last, time.min).replace(tzinfo=branch.zone) + timedelta(days=2)
    booked = _booked_counts(session, service, window_start, window_end)
    grids = {}
    day = first
    while day <= last:
        grids[day] = [(start, end) for start, end in _grid_starts(branch, day, rules, duration) if start >= earliest]
        day += timedelta(days=1)
    covered = sorted({at for slots in grids.values() for start, _ in slots for at in _covered(start, duration, rules)})
    # Where the staffing plan covers an interval, it says how many bookings the counters can take.
    planned = planning.booking_capacity(session, branch.id, covered)
    result = []
    for day, starts in grids.items():
        slots = []
        for start, end in starts:
            remaining = min(planned.get(at, capacity) - booked.get(at, 0) for at in _covered(start, duration, rules))
            slots.append(Slot(start=start, end=end, remaining=max(0, remaining),
                              inside_cutoff=not change_window(start, rules, now).can_reschedule))
        result.append({"date": day, "slots": slots})
    return {"branch": branch, "service": service, "days": result, "capacity": capacity}


def _validate_start(branch: Branch, service: Service, start: datetime, rules: BookingRules, now: datetime) -> datetime:
    if start.tzinfo is None:
        raise Invalid("naive_time", "Give the time with its offset, e.g. 2026-12-01T10:30:00+08:00.",
                      {"start": ["Needs an offset."]})
    if not day_range.in_range(start):  # before converting: year 1 or 9999 would overflow
        raise Conflict("outside_window", f"Bookings are open from today to {rules.max_days_ahead} days ahead.")
    start = start.astimezone(timezone.utc)
    day = numbering.local_day(start, branch.zone)
    today = numbering.local_day(now, branch.zone)
    if day < today or day > today + timedelta(days=rules.max_days_ahead):
        raise Conflict("outside_window", f"Bookings are open from today to {rules.max_days_ahead} days ahead.")
    duration = timedelta(minutes=service.expected_minutes)
    if start not in {s for s, _ in _grid_starts(branch, day, rules, duration)}:
        raise Conflict("not_a_slot", "That time is not a bookable slot; pick one from the availability list.")
    if start < now + timedelta(minutes=rules.min_notice_minutes):
        raise Conflict("too_soon", f"Book at least {rules.min_notice_minutes} minutes ahead.")
    return start


def _upsert_slot_rows(session: Session, service: Service, starts: list[datetime], capacity: int) -> None:
    insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[session.get_bind().dialect.name]
    planned = planning.booking_capacity(session, service.branch_id, starts)
    for at in starts:
        stmt = insert(BookingSlot).values(branch_id=service.branch_id, service_id=service.id, start_at=at,
                                          capacity=planned.get(at, capacity), booked=0)
        # Capacity follows the current plan; what is already booked stays counted.
        session.execute(stmt.on_conflict_do_update(
            index_elements=["branch_id", "service_id", "start_at"], set_={"capacity": planned.get(at, capacity)}))


def _claim(session: Session, service: Service, start: datetime, rules: BookingRules) -> None:
    duration = timedelta(minutes=service.expected_minutes)
    starts = _covered(start, duration, rules)
    _upsert_slot_rows(session, service, starts, default_capacity(session, service))
    for at in starts:
        claimed = session.execute(
            update(BookingSlot)
            .where(BookingSlot.branch_id == service.branch_id, BookingSlot.service_id == service.id,
                   BookingSlot.start_at == at, BookingSlot.booked < BookingSlot.capacity)
            .values(booked=BookingSlot.booked + 1)
            .returning(BookingSlot.booked)
        ).first()
        if claimed is None:
            raise Conflict("slot_full", "That time was just taken; pick another one.")


def _release(session: Session, appointment: Appointment, rules: BookingRules) -> None:
    duration = appointment.end_at - appointment.start_at
    for at in _covered(appointment.start_at, duration, rules):
        session.execute(
            update(BookingSlot)
            .where(BookingSlot.branch_id == appointment.branch_id, BookingSlot.service_id == appointment.service_id,
                   BookingSlot.start_at == at, BookingSlot.booked > 0)
            .values(booked=BookingSlot.booked - 1)
        )


def _new_code(session: Session) -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if session.scalar(select(Appointment.id).where(Appointment.check_in_code == code)) is None:
            return code


def _same_contacts(contacts: "identity.Contacts"):
    """Bookings typed with exactly these contacts (a missing one must be missing there too)."""
    return and_(Appointment.phone.is_(None) if contacts.phone is None else Appointment.phone == contacts.phone,
                Appointment.email.is_(None) if contacts.email is None else Appointment.email == contacts.email)


def _check_limits(session: Session, customer: Customer | None, contacts: "identity.Contacts",
                  rules: BookingRules, now: datetime) -> None:
    """Limits a stranger cannot trigger for a phone's owner (customers/identity.py): the record's own
    pause (set by proven bookings only) and bookings counted per record only where proven,
    otherwise per exact typed contacts."""
    if customer is not None and customer.booking_blocked_until and customer.booking_blocked_until > now:
        raise Conflict("strikes_exceeded",
                       "Online booking is paused after repeated missed visits; please contact the branch.")
    same = _same_contacts(contacts)
    mine = or_(same, and_(Appointment.customer_id == customer.id, Appointment.contact_proven_at.is_not(None))) \
        if customer is not None else same
    active = session.scalar(
        select(func.count(Appointment.id))
        .where(mine, Appointment.status == "booked", Appointment.end_at > now)
    )
    if active >= rules.max_active_bookings:
        raise Conflict("limit_reached", f"At most {rules.max_active_bookings} upcoming bookings per person.")
    # Missed unproven bookings pause only these exact contacts, not the record behind them.
    since = now - timedelta(days=rules.strike_window_days)
    if customer is not None and customer.strikes_reset_at is not None:
        since = max(since, customer.strikes_reset_at)  # staff lifted the pause
    missed = session.scalar(
        select(func.count(Appointment.id))
        .where(same, Appointment.status == "no_show", Appointment.contact_proven_at.is_(None),
               Appointment.booked_by_staff_id.is_(None), Appointment.start_at >= since)
    )
    if missed >= rules.strike_limit:
        raise Conflict("strikes_exceeded",
                       "Online booking is paused after repeated missed visits; please contact the branch.")


def _idempotency(key: str, staff_id: int | None, request: dict) -> tuple[str, str]:
    """What is stored of an Idempotency-Key: a hash of the key with its caller (a staff member's
    keys are theirs alone; anonymous callers share one space, nothing tells them apart), and a
    hash of the request. The same key and request again is a replay; the same key with another
    request is refused, so a reused or guessed key never hands out someone else's booking."""
    caller = "public" if staff_id is None else f"staff:{staff_id}"
    return (token_hash(f"{caller}\n{key}"),
            token_hash(json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)))


def _replay(session: Session, scoped_key: str, fingerprint: str) -> Booked | None:
    if session.get_bind().dialect.name == "postgresql":
        # Requests with one key take turns (SQLite's write lock already does this): the second
        # waits for the first to commit and finds its booking, rather than racing it to a
        # unique-key error or to the slot it just took.
        session.execute(select(func.pg_advisory_xact_lock(int(scoped_key[:15], 16))))
    earlier = session.scalar(select(Appointment).where(Appointment.idempotency_key == scoped_key))
    if earlier is None:
        return None
    if earlier.idempotency_fingerprint != fingerprint:
        raise Invalid("idempotency_key_reused",
                      "This Idempotency-Key was used for a different request; send a new key for a new booking.")
    if earlier.idempotency_token is None:
        raise Conflict("idempotency_key_reused", "This Idempotency-Key was used for another request.")
    return Booked(earlier, earlier.idempotency_token, replayed=True)


def book(
    session: Session, branch_slug: str, service_code: str, start: datetime, *, name: str,
    phone: str | None = None, email: str | None = None, language: str = "en",
    idempotency_key: str | None = None, staff_id: int | None = None, now: datetime | None = None,
    base_url: str = "",
) -> Booked:
    now = now or utcnow()
    name = (name or "").strip()
    if not name:
        raise Invalid("invalid_field", "name: needed, so staff can greet you.", {"name": ["Needed."]})
    if not phone and not email:
        raise Invalid("invalid_field", "Give a phone number or an e-mail address.",
                      {"phone": ["A phone number or an e-mail address is needed."]})
    scoped_key = fingerprint = None
    if idempotency_key:
        scoped_key, fingerprint = _idempotency(idempotency_key, staff_id, {
            "branch": branch_slug, "service": service_code, "start": start.isoformat(), "name": name,
            "phone": phone, "email": email, "language": language})
    with write_transaction(session):
        if scoped_key:
            replayed = _replay(session, scoped_key, fingerprint)
            if replayed is not None:
                return replayed
        branch = get_branch(session, branch_slug)
        service = queueing.find_service(session, branch, service_code)
        if not service.booking_enabled:
            raise Conflict("booking_disabled", f"Service {service.code} cannot be booked online.")
        rules = rules_for(branch)
        start = _validate_start(branch, service, start, rules, now)
        contacts = identity.typed(phone, email, branch.country)
        customer = identity.link(session, contacts, name=name, language=language, now=now)
        if staff_id is None:
            _check_limits(session, customer, contacts, rules, now)
        _claim(session, service, start, rules)
        token = new_token()
        appointment = Appointment(
            branch_id=branch.id, service_id=service.id, customer_id=customer.id if customer else None,
            name=name, language=language, phone=contacts.phone, email=contacts.email, start_at=start,
            end_at=start + timedelta(minutes=service.expected_minutes),
            local_date=numbering.local_day(start, branch.zone), status="booked",
            manage_token_hash=token_hash(token), check_in_code=_new_code(session),
            idempotency_key=scoped_key, idempotency_fingerprint=fingerprint,
            idempotency_token=token if scoped_key else None,
            sequence=0, booked_by_staff_id=staff_id, created_at=now,
        )
        session.add(appointment)
        session.flush()
        # Same transaction: the booking and its mail commit or roll back together.
        notify.booking_confirmed(session, appointment, token, base_url=base_url, now=now,
                                 proof_token=identity.new_proof(session, appointment, now))
    return Booked(appointment, token)


def find_by_token(session: Session, token: str) -> Appointment:
    appointment = session.scalar(select(Appointment).where(Appointment.manage_token_hash == token_hash(token)))
    if appointment is None:
        raise NotFound("appointment_not_found", "No booking for this link.")
    return appointment


def call_the_branch(branch: Branch) -> str:
    """The end of a refusal that sends someone to the branch: its phone when it has one."""
    return f"call the branch at {branch.phone}" if branch.phone else "contact the branch"


def _booked_for_change(session: Session, token: str) -> tuple[Appointment, BookingRules]:
    appointment = session.scalar(
        select(Appointment).where(Appointment.manage_token_hash == token_hash(token)).with_for_update(of=Appointment)
    )
    if appointment is None:
        raise NotFound("appointment_not_found", "No booking for this link.")
    if appointment.status != "booked":
        raise Conflict("not_booked", f"This booking is {appointment.status.replace('_', ' ')}; it cannot change.")
    return appointment, rules_for(appointment.branch)


def reschedule(session: Session, token: str, new_start: datetime, *, now: datetime | None = None,
               base_url: str = "") -> Appointment:
    """Move a booking: release the old slot and claim the new one in one transaction.

    Allowed until start - change_cutoff_minutes (booking_rules.change_window). If the new slot is
    full the transaction rolls back and the old booking stands untouched.
    """
    now = now or utcnow()
    with write_transaction(session):
        appointment, rules = _booked_for_change(session, token)
        if not change_window(appointment.start_at, rules, now).can_reschedule:
            raise Conflict("cutoff_passed",
                           f"Rescheduling closes {rules.change_cutoff_minutes} minutes before the visit; "
                           f"it can still be cancelled until it starts. To change it, "
                           f"{call_the_branch(appointment.branch)}.")
        service = appointment.service
        start = _validate_start(appointment.branch, service, new_start, rules, now)
        _release(session, appointment, rules)
        _claim(session, service, start, rules)
        appointment.start_at = start
        appointment.end_at = start + timedelta(minutes=service.expected_minutes)
        appointment.local_date = numbering.local_day(start, appointment.branch.zone)
        appointment.sequence += 1
        notify.booking_changed(session, appointment, base_url=base_url, now=now)
    return appointment


def cancel(session: Session, token: str, *, now: datetime | None = None, base_url: str = "") -> Appointment:
    """Cancel (kept for history) and give the capacity back; allowed until the visit starts."""
    now = now or utcnow()
    with write_transaction(session):
        appointment, rules = _booked_for_change(session, token)
        if not change_window(appointment.start_at, rules, now).can_cancel:
            raise Conflict("visit_started",
                           f"The visit has started; it can no longer be cancelled online. "
                           f"To change it, {call_the_branch(appointment.branch)}.")
        _release(session, appointment, rules)
        appointment.status = "cancelled"
        appointment.cancelled_at = now
        appointment.sequence += 1
        notify.booking_cancelled(session, appointment, base_url=base_url, now=now)
    return appointment


def check_in(session: Session, branch_slug: str, code: str, *, kiosk_id: int | None = None,
             now: datetime | None = None) -> CheckIn:
    """The booking becomes a ticket, ordered by its booked start. Scanning again gives the same ticket."""
    now = now or utcnow()
    code = (code or "").strip().upper().replace("-", "").replace(" ", "")
    with write_transaction(session):
        appointment = session.scalar(
            select(Appointment).where(Appointment.check_in_code == code).with_for_update(of=Appointment)
        )
        if appointment is None:
            raise NotFound("unknown_code", "No booking has this code. Check the code, or take a walk-in ticket.")
        branch = get_branch(session, branch_slug)
        if appointment.branch_id != branch.id:
            raise Conflict("other_branch", f"This booking is for {appointment.branch.name}.")
        if appointment.status == "checked_in" and appointment.ticket_id is not None:
            ticket = session.get(Ticket, appointment.ticket_id)
            if ticket.status in ("waiting", "called", "serving"):
                return CheckIn(appointment, ticket, None)
            raise Conflict("already_checked_in", f"This booking was already served as ticket {ticket.label}.")
        if appointment.status == "cancelled":
            raise Conflict("cancelled", "This booking was cancelled. Take a walk-in ticket instead.")
        if appointment.status == "no_show":
            raise Conflict("no_show", "This booking was missed. Take a walk-in ticket instead.")
        if appointment.status != "booked":
            raise Conflict("already_checked_in", "This booking has been used.")
        rules = rules_for(branch)
        if appointment.local_date != numbering.local_day(now, branch.zone):
            raise Conflict("other_day", f"This booking is for {appointment.local_date.isoformat()}.")
        opens = appointment.start_at - timedelta(minutes=rules.check_in_early_minutes)
        if now < opens:
            local = opens.astimezone(branch.zone).strftime("%H:%M")
            raise Conflict("too_early", f"Check-in opens at {local}.")
        if now > appointment.start_at + timedelta(minutes=rules.check_in_late_minutes):
            raise Conflict("too_late", "The check-in time has passed. Take a walk-in ticket instead.")
        issued = queueing.add_ticket(session, branch, appointment.service, priority="appointment",
                                     customer_id=appointment.customer_id, kiosk_id=kiosk_id,
                                     effective_at=appointment.start_at, now=now)
        appointment.status = "checked_in"
        appointment.ticket_id = issued.ticket.id
        issued.ticket.phone, issued.ticket.email = appointment.phone, appointment.email
        issued.ticket.language = appointment.language
    issued = queueing.keep_estimate_at_issue(session, issued, now)
    return CheckIn(appointment, issued.ticket, issued.token, issued.estimates)


def sweep_no_shows(session: Session, *, now: datetime | None = None) -> int:
    """Bookings not checked in by start + grace become no-shows; strikes may pause online booking.

    Idempotent and catches up after downtime: it flips every overdue `booked` row, however old.
    """
    now = now or utcnow()
    marked = 0
    with write_transaction(session):
        # Rows another sweeper (a second scheduler) holds are its to flip: skip them, and a row it
        # already flipped no longer matches once locked, so each no-show is counted once.
        overdue = session.scalars(
            select(Appointment).where(Appointment.status == "booked", Appointment.start_at < now)
            .order_by(Appointment.start_at).with_for_update(of=Appointment, skip_locked=True)
        ).all()
        for appointment in overdue:
            rules = rules_for(appointment.branch)
            if now < appointment.start_at + timedelta(minutes=rules.no_show_grace_minutes):
                continue
            appointment.status = "no_show"
            marked += 1
            customer = appointment.customer
            if customer is None:
                continue
            if appointment.contact_proven_at is None and appointment.booked_by_staff_id is None:
                continue  # typed by anyone: counted against those contacts only (_check_limits)
            # In SQL, not read-modify-write: two sweepers may flip two bookings of one customer.
            session.execute(update(Customer).where(Customer.id == customer.id)
                            .values(strikes=Customer.strikes + 1))
            since = now - timedelta(days=rules.strike_window_days)
            if customer.strikes_reset_at is not None:
                since = max(since, customer.strikes_reset_at)
            recent = session.scalar(
                select(func.count(Appointment.id)).where(
                    Appointment.customer_id == customer.id, Appointment.status == "no_show",
                    Appointment.start_at >= since,
                    or_(Appointment.contact_proven_at.is_not(None), Appointment.booked_by_staff_id.is_not(None)))
            )
            if recent >= rules.strike_limit:
                customer.booking_blocked_until = now + timedelta(days=rules.block_days)
        # Replay tokens are only needed for a double tap, not kept for good.
        session.execute(
            update(Appointment)
            .where(Appointment.idempotency_token.is_not(None),
                   Appointment.created_at < now - IDEMPOTENCY_TOKEN_KEPT)
            .values(idempotency_token=None)
        )
    return marked


def lift_block(session: Session, customer_id: int, staff: Staff, *, now: datetime | None = None) -> Customer:
    """A manager of a branch that knows the customer (or an admin) lets them book online again."""
    customer_access.require_manager_of(session, staff, customer_id)
    with write_transaction(session):
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise NotFound("customer_not_found", f"No customer {customer_id}.")
        customer.booking_blocked_until = None
        customer.strikes_reset_at = now or utcnow()
        audit.record(session, "customer.unblocked", "customer", customer.id, actor_id=staff.id)
    return customer


def appointments_of_day(session: Session, branch: Branch, day: date) -> list[Appointment]:
    return session.scalars(
        select(Appointment).where(Appointment.branch_id == branch.id, Appointment.local_date == day)
        .order_by(Appointment.start_at)
    ).all()


def as_local(moment: datetime, branch: Branch) -> str:
    return moment.astimezone(branch.zone).isoformat(timespec="seconds")

