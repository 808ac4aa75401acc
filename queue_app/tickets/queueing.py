"""The walk-in queue: issue, call next, recall, start, finish, no-show, transfer, leave.

Each public function is one write transaction and returns what changed; events are recorded in
the same transaction and published after commit (events.py).

Queue order (queue_order.py, the one place the rule lives). A counter calls, among the services
it serves, the waiting ticket of the branch's current local day: a checked-in booking whose booked
start has come first (by start); otherwise the smallest sort key, ties broken by ticket id:

    sort_key = effective_at - PRIORITY_CREDITS[priority]

and a booking checked in before its start only when nothing else waits for the counter.
`effective_at` is the issue time for a walk-in and the booked start for an appointment. A credit
moves a ticket ahead of ordinary tickets issued less than that many minutes before it, never
further. So no walk-in class starves: a ticket issued at t is called before every ticket issued at
or after t + max(PRIORITY_CREDITS), whatever their class (equal keys go to the older ticket), and
due bookings are bounded by booking capacity.
"""
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session, aliased, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from queue_app.catalogue.models import Branch, Counter, CounterService, Service
from queue_app.catalogue.operations import get_branch
from queue_app.core import row_cache
from queue_app.core.errors import Conflict, Invalid, NotFound
from queue_app.core.models import UTCDateTime, utcnow
from queue_app.core.security import new_token, token_hash
from queue_app.core.transaction import write_transaction
from queue_app.customers import identity
from queue_app.customers import standing as customer_standing
from queue_app.tickets import estimates, event_log, numbering, played_queue, queue_order, remote_rules
from queue_app.tickets.models import Ticket
from queue_app.tickets.queue_order import MAX_CREDIT, PRIORITY_CREDITS

MAX_RECALLS = 3
# Who issues a walk-in ticket. A class other than "normal" moves a ticket ahead of people already
# waiting, so only staff and the branch's kiosks (its accessibility button) may give one; a
# phone's remote ticket ("public") may not claim one for itself.
ISSUERS = ("staff", "kiosk", "public")


@dataclass(frozen=True)
class IssuedTicket:
    ticket: Ticket
    token: str  # shown once to the holder (QR link); only its hash is stored
    # The branch's estimates as the ticket was issued (its response needs them; no second run).
    estimates: "estimates.BranchEstimates | None" = None


def _now(now: datetime | None) -> datetime:
    moment = now or utcnow()
    if moment.tzinfo is None:
        raise ValueError("naive datetime refused")
    return moment


# Statements of the hot paths (issue, call, finish) are built once: building one costs as much as
# running it on SQLite (SQLAlchemy caches the compiled SQL, not the statement object).
_ACTIVE_SERVICE = select(Service).where(Service.branch_id == bindparam("branch_id"), Service.active.is_(True))
_SERVICE_BY_ID = _ACTIVE_SERVICE.where(Service.id == bindparam("service"))
_SERVICE_BY_CODE = _ACTIVE_SERVICE.where(Service.code == bindparam("service"))
_TICKET_FOR_UPDATE = select(Ticket).where(Ticket.id == bindparam("ticket_id")).with_for_update(of=Ticket)
_INSERT_TICKET = Ticket.__table__.insert().returning(*Ticket.__table__.c)


def find_service(session: Session, branch: Branch, service: str | int) -> Service:
    """An active service of the branch by id or code; kept per process while no service changes
    (core/row_cache.py)."""
    if isinstance(service, int):
        statement, params = _SERVICE_BY_ID, {"branch_id": branch.id, "service": service}
    else:
        statement, params = _SERVICE_BY_CODE, {"branch_id": branch.id, "service": str(service).strip().upper()}
    found = row_cache.get(session, Service, ("active", branch.id, params["service"]),
                          lambda: session.scalar(statement, params))
    if found is None:
        raise NotFound("service_not_found", f"No service '{service}' at branch '{branch.slug}'.")
    return found


def _ticket_for_update(session: Session, ticket_id: int) -> Ticket:
    ticket = session.scalar(_TICKET_FOR_UPDATE, {"ticket_id": ticket_id})
    if ticket is None:
        raise NotFound("ticket_not_found", f"No ticket {ticket_id}.")
    return ticket


def _require_status(ticket: Ticket, allowed: tuple[str, ...], action: str) -> None:
    if ticket.status not in allowed:
        raise Conflict(
            "wrong_state",
            f"Ticket {ticket.label} is {ticket.status}; cannot {action} it "
            f"(allowed when {' or '.join(allowed)}).",
        )


def issue_ticket(
    session: Session,
    branch: Branch | str,
    service: str | int,
    *,
    priority: str = "normal",
    phone: str | None = None,
    email: str | None = None,
    kiosk_id: int | None = None,
    language: str | None = None,
    issued_by: str = "public",
    now: datetime | None = None,
) -> IssuedTicket:
    """A walk-in ticket (kiosk, phone or staff), in its own transaction. With a phone or e-mail
    the customer is remembered; `language` (else the branch's, for a new customer) is the one
    their messages are written in. `issued_by` (ISSUERS) decides whether `priority` may be other
    than "normal": only for "staff" and "kiosk". `branch`: its slug, or the Branch the caller
    already loaded in this session (the API does, to check the caller's access)."""
    live = now is None  # the real clock: read it once this ticket holds its number (see add_ticket)
    now = _now(now)
    if issued_by not in ISSUERS:
        raise ValueError(f"issued_by: one of {ISSUERS}, not {issued_by!r}")
    if priority not in PRIORITY_CREDITS:
        raise Invalid("bad_priority", f"Unknown priority '{priority}'.",
                      {"priority": [f"One of: {', '.join(PRIORITY_CREDITS)}."]})
    if queue_order.is_booked(priority):  # it would go before every walk-in at once
        raise Invalid("priority_not_allowed", "Booked-visit tickets come from checking in a booking.",
                      {"priority": ["Check in the booking instead."]})
    if priority != "normal" and issued_by == "public":
        raise Invalid("priority_not_allowed",
                      "Priority tickets are given by staff or at the branch's kiosk; ask there.",
                      {"priority": ["Only normal for remote tickets."]})
    found = None
    try:
        with write_transaction(session):
            if not isinstance(branch, Branch):
                branch = get_branch(session, branch)
            svc = find_service(session, branch, service)
            if not svc.walk_in_enabled:
                raise Conflict("walk_in_disabled", f"Service {svc.code} takes booked visits only.")
            # Typed contacts link a record for history and carry this ticket's messages (identity.py).
            contacts = identity.typed(phone, email, branch.country)
            customer = identity.link(session, contacts, language=language or branch.language, now=now)
            contact = None
            if contacts:
                contact = {"phone": contacts.phone, "email": contacts.email,
                           "language": language or (customer.language if customer else branch.language)}
            issued = add_ticket(session, branch, svc, priority=priority,
                                customer_id=customer.id if customer else None,
                                kiosk_id=kiosk_id, effective_at=now, now=now, live=live, contact=contact)
            ticket, branch_id = issued.ticket, branch.id
            # One more step on the branch's played queue, in this transaction (played_queue.py).
            found = played_queue.estimate_joined(session, branch, ticket, ticket.issued_at, live=live)
            if found is not None:
                _keep_estimate(session, ticket, found.tickets[ticket.id])
    except BaseException:
        if found is not None:  # the kept queue played a ticket that was rolled back: drop it
            played_queue.drop(session.get_bind(), branch_id)
        raise
    if found is None:
        return keep_estimate_at_issue(session, issued, now, live=live)
    if live:  # branch_id read before the commit: reading the ticket now would begin a new transaction
        played_queue.refresh_if_due(session.get_bind(), branch_id)
    return IssuedTicket(ticket=ticket, token=issued.token, estimates=found)


_UPDATE_TICKET = Ticket.__table__.update().where(Ticket.__table__.c.id == bindparam("ticket_id"))


def _write_columns(session: Session, ticket: Ticket, values: dict) -> None:
    """Columns of a loaded ticket written now with one plain UPDATE in the caller's transaction,
    and set on the object as if read back. The ORM's flush of the same change cost a sixth of an
    issue's or a finish's Python calls (bench/request_cost.py); tickets are not audited, and
    webhooks and pushes follow the event log, not attribute changes."""
    session.connection().execute(_UPDATE_TICKET, {"ticket_id": ticket.id, **values})
    for name, value in values.items():
        set_committed_value(ticket, name, value)


def _keep_estimate(session: Session, ticket: Ticket, given: "estimates.Estimate") -> None:
    """The estimate given at issue stays on the ticket, to judge estimates against real waits."""
    if given.minutes is None or ticket.estimate_minutes is not None:
        return
    values = {"estimate_minutes": given.minutes, "estimate_low": given.low, "estimate_high": given.high}
    if given.model is not None:
        values.update(zip(("model_mean", "model_low", "model_high"), given.model))
    _write_columns(session, ticket, values)


def add_ticket(
    session: Session, branch: Branch, service: Service, *, priority: str, customer_id: int | None,
    kiosk_id: int | None, effective_at: datetime, now: datetime, live: bool = False, contact: dict | None = None,
) -> IssuedTicket:
    """Number and queue a ticket inside the caller's write transaction (walk-in or check-in).
    `contact`: the ticket's phone, email and language columns, written with the row (set after
    the insert they cost an UPDATE of their own at the commit).

    `live`: a walk-in on the real clock. Its issue time is read after the number is taken (the
    write lock on SQLite, the counter row's lock on PostgreSQL), so that numbers, issue times and
    queue order agree: a clock read before waiting for the lock could put A035 ahead of A027.
    """
    day = numbering.local_day(now, branch.zone)
    number = numbering.next_number(session, branch.id, day, service.code)
    if live:
        now = effective_at = max(utcnow(), now)
    token = new_token()
    # A customer segment's credit (customer_standing.priority_credit, off unless a manager enables it)
    # adds to the class credit, capped at MAX_CREDIT so the no-starvation bound still holds.
    segment_credit = customer_standing.priority_credit(session, branch, customer_id)
    credit = min(PRIORITY_CREDITS[priority] + segment_credit, MAX_CREDIT)
    # One INSERT on the connection, returning the new row; the object is made from it as if it
    # had been loaded (the ORM's bulk insert of the same row cost twice the CPU).
    row = session.connection().execute(_INSERT_TICKET, {
        "branch_id": branch.id, "service_id": service.id, "local_date": day, "prefix": service.code,
        "number": number, "label": numbering.format_label(service.code, number), "status": "waiting",
        "priority": priority, "effective_at": effective_at, "sort_key": effective_at - credit, "issued_at": now,
        "customer_id": customer_id, "kiosk_id": kiosk_id, "token_hash": token_hash(token), **(contact or {}),
    }).one()
    ticket = _as_loaded(session, row)
    # Its branch and service as loaded: the response reads them without loading them again.
    for name, value in (("branch", branch), ("service", service), ("counter", None)):
        set_committed_value(ticket, name, value)
    event_log.record(session, ticket, "issued", now, data={"priority": priority,
                                                         "credit_minutes": credit.total_seconds() / 60})
    return IssuedTicket(ticket=ticket, token=token)


def _as_loaded(session: Session, row) -> Ticket:
    """A ticket row an INSERT or UPDATE returned, as an object loaded in the session. Merged, not
    added: a ticket the session already holds takes the new values (a rolled-back ticket stays in
    the session, expired, and SQLite may give its id to the next one), as the ORM's loads do."""
    # Filled as the ORM's loading fills it, straight into the instance's dict: the constructor
    # set each column through its instrumented attribute (300 Python calls an issue).
    made = Ticket.__mapper__.class_manager.new_instance()
    made.__dict__.update(row._mapping)
    make_transient_to_detached(made)  # clean, with these values as committed: no statement of its own
    return session.merge(made, load=False)


def keep_estimate_at_issue(session: Session, issued: IssuedTicket, now: datetime, *, live: bool = False) -> IssuedTicket:
    """After the issuing transaction: estimate the branch, keep the new ticket's estimate on it (so
    estimates can later be judged against real waits) and hand the figures to the response.

    The fallback when the played queue cannot serve (played_queue.py): a full run, kept as the
    branch's new played queue. Outside the issuing transaction on purpose: a run costs
    milliseconds per waiting ticket, and on SQLite every writer (counters calling next too) would
    wait for it behind the write lock.
    Tickets issued meanwhile are behind this one (or, with a priority credit, really ahead of it,
    which the estimate then rightly counts).
    `live` (the real clock): one full run per branch at a time; the requests that waited for it are
    served from the queue it kept (played_queue.one_full_run).
    """
    ticket = issued.ticket
    if live:
        with played_queue.one_full_run(session.get_bind(), ticket.branch_id):
            # Read now: it may have waited for another request's run, which started after its issue.
            found = played_queue.estimate_kept(session, ticket.branch, ticket, utcnow())
            if found is None:
                found = _full_run(session, ticket, max(now, ticket.issued_at))
    else:
        found = _full_run(session, ticket, max(now, ticket.issued_at))
    given = found.tickets.get(ticket.id)
    if given is not None and given.minutes is not None:
        with write_transaction(session):
            _keep_estimate(session, ticket, given)
    session.commit()  # end the read transaction of the estimate
    return IssuedTicket(ticket=ticket, token=issued.token, estimates=found)


def _full_run(session: Session, ticket: Ticket, now: datetime) -> "estimates.BranchEstimates":
    played = played_queue.play(session, ticket.branch, now)
    with played.lock:  # other threads may already extend it
        return estimates.summarise(played.queue, ticket.branch, per_service=False)


# call_next's statements, built once. An alias keeps the claiming subquery from correlating
# with its UPDATE. The claim's order is queue_order.claim_order at `now`: due bookings, the
# line, early bookings.
_WAITING = aliased(Ticket, name="waiting")
_NOW = bindparam("now", type_=UTCDateTime)
_COUNTER_FOR_UPDATE = select(Counter).where(Counter.id == bindparam("counter_id")).with_for_update(of=Counter)
_COUNTER_CURRENT = select(Ticket.label, Ticket.status).where(
    Ticket.counter_id == bindparam("counter_id"), Ticket.status.in_(("called", "serving")))


def claim_statement(order=queue_order.claim_order):
    """The claiming UPDATE in `order` (queue_order.claim_order; bench/booked_order.py builds it with
    the order before booked visits went first, for its baseline)."""
    return (
        update(Ticket)
        .where(
            Ticket.id == select(_WAITING.id)
            .where(
                _WAITING.branch_id == bindparam("claim_branch"),
                _WAITING.status == "waiting",
                _WAITING.local_date == bindparam("today"),
                _WAITING.service_id.in_(
                    select(CounterService.service_id).where(CounterService.counter_id == bindparam("claim_counter"))),
                # Remote tickets held back during this call (see call_next): not claimed again in it.
                _WAITING.id.not_in(bindparam("skip", expanding=True)),
            )
            .order_by(*order(_WAITING, _NOW))
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery(),
            Ticket.status == "waiting",
        )
        .values(status="called", called_at=_NOW, counter_id=bindparam("claim_counter"),
                staff_id=bindparam("claim_staff"))
        .returning(*Ticket.__table__.c)  # the claimed row, so the response needs no read of its own
    )


_CLAIM = claim_statement()


# A call that meets this many remote tickets not yet arrived in a row stops there (nobody is
# called): each was held or marked no-show, so the next call goes on from them.
MAX_SKIPPED_PER_CALL = 20


def call_next(
    session: Session, counter_id: int, *, staff_id: int | None = None, now: datetime | None = None
) -> Ticket | None:
    """Atomically claim the next waiting ticket for a counter; None when nobody waits.

    A remote ticket (joined from home) whose holder has not said "I'm here" is not called: the
    first time it goes back the branch's `postpone_places` with a message to its holder (held, not
    lost), the second time it is a no-show; the call goes on to the next ticket. Both happen on
    the claimed row inside this transaction, so the claim's guarantees hold for them too."""
    now = _now(now)
    with write_transaction(session):
        # Lock the counter row so two people at one counter cannot both pass the busy check.
        counter = session.scalar(_COUNTER_FOR_UPDATE, {"counter_id": counter_id})
        if counter is None:
            raise NotFound("counter_not_found", f"No counter {counter_id}.")
        if counter.state != "open":
            raise Conflict("counter_not_open", f"Counter {counter.name} is {counter.state}; open it first.")
        current = session.connection().execute(_COUNTER_CURRENT, {"counter_id": counter.id}).first()
        if current is not None:
            raise Conflict(
                "counter_busy",
                f"Counter {counter.name} still has {current.label} ({current.status}); "
                "finish, transfer or mark it no-show first.",
            )
        # One statement claims the ticket: the row lock (PostgreSQL) or the write transaction
        # taken up front (SQLite) makes it impossible for two counters to get the same one.
        skipped: list[int] = []
        while True:
            claimed = session.connection().execute(_CLAIM, {
                "claim_branch": counter.branch_id, "today": numbering.local_day(now, counter.branch.zone),
                "now": now, "claim_counter": counter.id, "claim_staff": staff_id, "skip": skipped,
            }).first()
            if claimed is None:
                return None
            ticket = _as_loaded(session, claimed)
            # Its counter and branch are the locked counter's, its service a kept row (core/row_cache.py).
            service = row_cache.get(session, Service, ("id", ticket.service_id),
                                    lambda service_id=ticket.service_id: session.get(Service, service_id))
            for name, value in (("counter", counter), ("branch", counter.branch), ("service", service)):
                set_committed_value(ticket, name, value)
            if not ticket.remote or ticket.arrived_at is not None:
                break
            _not_here(session, ticket, counter, staff_id, now)
            skipped.append(ticket.id)
            if len(skipped) >= MAX_SKIPPED_PER_CALL:
                return None
        event_log.record(session, ticket, "called", now, counter_id=counter.id, staff_id=staff_id,
                      data={"counter": counter.name, "counter_names": dict(counter.names or {}),
                            "service": ticket.service.code})
    return ticket


def _not_here(session: Session, ticket: Ticket, counter: Counter, staff_id: int | None, now: datetime) -> None:
    """A claimed remote ticket whose holder is not here: held back once, then a no-show."""
    data = {"counter": counter.name, "reason": "not_arrived"}
    ticket.counter_id = None
    ticket.called_at = None
    ticket.staff_id = None
    if ticket.held_count == 0:
        ticket.status = "waiting"
        ticket.held_count = 1
        moved = _move_back(session, ticket, ticket.branch.postpone_places)
        event_log.record(session, ticket, "held", now, counter_id=counter.id, staff_id=staff_id,
                         data={**data, "places": moved})
        remote_rules.held_message(session, ticket, moved, now)
    else:
        ticket.status = "no_show"
        ticket.finished_at = now
        ticket.held_count += 1
        event_log.record(session, ticket, "no_show", now, counter_id=counter.id, staff_id=staff_id, data=data)


def recall(session: Session, ticket_id: int, *, staff_id: int | None = None, now: datetime | None = None) -> Ticket:
    now = _now(now)
    with write_transaction(session):
        ticket = _ticket_for_update(session, ticket_id)
        _require_status(ticket, ("called",), "recall")
        if ticket.recalls >= MAX_RECALLS:
            raise Conflict("recall_limit", f"{ticket.label} was recalled {ticket.recalls} times; mark it no-show.")
        ticket.recalls += 1
        event_log.record(session, ticket, "recalled", now, counter_id=ticket.counter_id, staff_id=staff_id,
                      data={"recalls": ticket.recalls, "counter": ticket.counter.name,
                            "counter_names": dict(ticket.counter.names or {}),
                            "service": ticket.service.code})
    return ticket


def start(session: Session, ticket_id: int, *, staff_id: int | None = None, now: datetime | None = None) -> Ticket:
    now = _now(now)
    with write_transaction(session):
        ticket = _ticket_for_update(session, ticket_id)
        _require_status(ticket, ("called",), "start")
        _write_columns(session, ticket, {"status": "serving", "started_at": now})
        event_log.record(session, ticket, "started", now, counter_id=ticket.counter_id, staff_id=staff_id)
    return ticket


def finish(session: Session, ticket_id: int, *, staff_id: int | None = None, now: datetime | None = None) -> Ticket:
    now = _now(now)
    with write_transaction(session):
        ticket = _ticket_for_update(session, ticket_id)
        _require_status(ticket, ("called", "serving"), "finish")
        _write_columns(session, ticket, {"status": "done", "finished_at": now})
        event_log.record(session, ticket, "finished", now, counter_id=ticket.counter_id, staff_id=staff_id)
    return ticket


def no_show(session: Session, ticket_id: int, *, staff_id: int | None = None, now: datetime | None = None) -> Ticket:
    now = _now(now)
    with write_transaction(session):
        ticket = _ticket_for_update(session, ticket_id)
        _require_status(ticket, ("called",), "mark no-show")
        _write_columns(session, ticket, {"status": "no_show", "finished_at": now})
        event_log.record(session, ticket, "no_show", now, counter_id=ticket.counter_id, staff_id=staff_id)
    return ticket


def transfer(
    session: Session, ticket_id: int, service: str | int, *, staff_id: int | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Send a ticket to another service's queue, keeping its label and its place in time.

    The ticket keeps its effective time, so the customer is not sent to the back of the line.
    """
    now = _now(now)
    with write_transaction(session):
        ticket = _ticket_for_update(session, ticket_id)
        _require_status(ticket, ("waiting", "called", "serving"), "transfer")
        branch = session.get(Branch, ticket.branch_id)
        target = find_service(session, branch, service)
        if target.id == ticket.service_id:
            raise Conflict("same_service", f"{ticket.label} is already in service {target.code}.")
        previous = {"from_service": ticket.service_id, "from_counter": ticket.counter_id}
        from_counter = ticket.counter_id
        ticket.service = target  # the relationship, not just the id: loaded objects stay consistent
        ticket.status = "waiting"
        ticket.counter_id = None
        ticket.called_at = None
        ticket.started_at = None
        ticket.recalls = 0
        event_log.record(session, ticket, "transferred", now, counter_id=from_counter, staff_id=staff_id,
                      data={**previous, "to_service": target.id})
    return ticket


def leave(session: Session, ticket_id: int, *, now: datetime | None = None) -> Ticket:
    """The holder gives up their place (from the phone page)."""
    now = _now(now)
    with write_transaction(session):
        ticket = _ticket_for_update(session, ticket_id)
        _require_status(ticket, ("waiting", "called"), "leave")
        ticket.status = "cancelled"
        ticket.finished_at = now
        event_log.record(session, ticket, "left", now, counter_id=ticket.counter_id)
    return ticket


def postpone(session: Session, ticket_id: int, *, now: datetime | None = None) -> Ticket:
    """The holder needs more time: move a waiting ticket back by the branch's postpone_places, once.

    The ticket takes a sort key just after the ticket that many places behind it (or after the
    last one), so exactly that many people move ahead of it.
    """
    now = _now(now)
    with write_transaction(session):
        ticket = _ticket_for_update(session, ticket_id)
        _require_status(ticket, ("waiting",), "postpone")
        if ticket.postponed:
            raise Conflict("already_postponed", f"{ticket.label} was already moved back once.")
        moved = _move_back(session, ticket, ticket.branch.postpone_places)
        ticket.postponed = True
        event_log.record(session, ticket, "postponed", now, data={"places": moved})
    return ticket


def _move_back(session: Session, ticket: Ticket, places: int) -> int:
    """Give a waiting ticket a sort key just after the one `places` behind it (or the last one),
    so exactly that many people move ahead of it; returns how many did."""
    behind = session.execute(
        select(Ticket.sort_key)
        .where(
            Ticket.branch_id == ticket.branch_id,
            Ticket.service_id == ticket.service_id,
            Ticket.local_date == ticket.local_date,
            Ticket.status == "waiting",
            or_(Ticket.sort_key > ticket.sort_key,
                and_(Ticket.sort_key == ticket.sort_key, Ticket.id > ticket.id)),
        )
        .order_by(Ticket.sort_key, Ticket.id)
        .limit(places)
    ).scalars().all()
    if behind:
        # One microsecond after the last of them: it stays ahead of anyone who comes later.
        ticket.sort_key = behind[-1] + timedelta(microseconds=1)
    return len(behind)


def close_day(session: Session, branch_slug: str, *, now: datetime | None = None) -> int:
    """Cancel tickets of earlier local days still open (the day-end sweep). Idempotent."""
    now = _now(now)
    with write_transaction(session):
        branch = get_branch(session, branch_slug)
        today = numbering.local_day(now, branch.zone)
        stale = session.scalars(
            select(Ticket).where(
                Ticket.branch_id == branch.id,
                Ticket.local_date < today,
                Ticket.status.in_(("waiting", "called", "serving")),
            ).with_for_update(of=Ticket, skip_locked=True)  # a second scheduler's sweep takes the others
        ).all()
        for ticket in stale:
            ticket.status = "cancelled"
            ticket.finished_at = now
            event_log.record(session, ticket, "expired", now)
    return len(stale)


def find_by_token(session: Session, token: str) -> Ticket:
    ticket = session.scalar(select(Ticket).where(Ticket.token_hash == token_hash(token)))
    if ticket is None:
        raise NotFound("ticket_not_found", "No ticket for this link.")
    return ticket
