"""Customer records: identity, history, segments and tiers, churn alerts, feedback, export and erasure.

Identity. One customer per phone number, normalised to E.164 with the branch's country as the
default region (`phonenumbers`), and/or per e-mail address (lower-cased). "0912 345 678" typed at
a Taiwanese branch, "+886912345678" and "+886 912-345-678" are the same person. Two records of one
person are merged by a manager (`merge`): every ticket, booking, answer and alert moves over.

Standing. What a branch knows of a customer (CustomerStanding) is recomputed from history, by the
nightly job and on demand (`recompute_branch`, idempotent: the same history and day give the same
rows):

- value = finished visits in the value window + spend / spend_per_point (services with a price);
  high when >= high_value_score;
- loyalty = mean of regularity (1 - coefficient of variation of the days between visits, needs
  three visit days; the current absence counts as one more interval once it is longer than the
  usual one), tenure (days since the first visit / tenure_full_days, at most 1) and
  recency (1 - days since the last visit / recency_zero_days, at least 0); high when >=
  high_loyalty_score;
- segment: core (high value, high loyalty), at_risk_valuable (high value, low loyalty),
  loyal_regular (low value, high loyalty), occasional (neither);
- tier: the first of the branch's named tiers whose min_value and min_loyalty are met, else
  "standard".

Churn. An alert is raised once per absence (unique per branch, customer and last visit) when the
customer's usual interval (median days between visits) is exceeded: days unseen > max(interval x
churn_interval_factor, interval + churn_grace_days); or when a high-value customer is unseen for
churn_days (default 113). A later visit resolves it.

Access. `visible_branches` is the one rule for pages and API: admins see every customer;
managers see customers known at their branches (their history there); staff see today's customers
of their branches (their history there). Everything else is Forbidden.

Privacy. Erasure deletes the person (name, phone, e-mail, comments, alerts, standings, message
recipients and texts) and keeps tickets, waits, bookings and ratings as anonymous rows, so the
branch's statistics do not change. Views, exports, merges and erasures are written to the audit
log without personal data.
"""
import re
import statistics
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, false, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from queue_app.accounts.models import Staff
from queue_app.audit import operations as audit
from queue_app.booking.models import Appointment
from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.catalogue.operations import localized_name
from queue_app.core.errors import Conflict, Forbidden, Invalid, NotFound
from queue_app.core.models import utcnow
from queue_app.core.security import new_token, token_hash
from queue_app.core.transaction import write_transaction
from queue_app.customers import identity
from queue_app.customers.identity import normalise_email, normalise_phone
from queue_app.customers.models import (
    SEGMENTS,
    ChurnAlert,
    ContactProof,
    Customer,
    CustomerStanding,
    Feedback,
)
from queue_app.notifications import texts
from queue_app.notifications.models import Notification
from queue_app.notifications.texts import N_
from queue_app.tickets import numbering
from queue_app.tickets.models import Ticket

HIGH_VALUE = ("core", "at_risk_valuable")
FEEDBACK_DAYS = 14  # a visit can be rated this long after it ended


# --- identity ------------------------------------------------------------------------------------

def find_or_create(session: Session, phone: str | None = None, email: str | None = None, *,
                   region: str | None = None, name: str = "", now: datetime | None = None,
                   language: str = "en") -> Customer | None:
    """Staff at the counter: the customer with this phone (first) or e-mail, created if new, with
    gaps filled from what staff typed; inside the caller's transaction. Customers' own typed
    contacts go through identity.link instead, which never changes a record.

    A phone and an e-mail that belong to two different records are not merged here (anyone can
    type anything into a booking form): the phone's record is used, and a manager merges.
    """
    phone = normalise_phone(phone, region) if phone else None
    email = normalise_email(email) if email else None
    if not phone and not email:
        return None
    by_phone = session.scalar(select(Customer).where(Customer.phone == phone)) if phone else None
    by_email = session.scalar(select(Customer).where(Customer.email == email)) if email else None
    customer = by_phone or by_email
    if customer is None:
        customer = Customer(phone=phone, email=email, name=(name or "")[:200], language=language, tier="standard",
                            strikes=0, created_at=now or utcnow())
        session.add(customer)
        session.flush()
        return customer
    if phone and customer.phone is None:
        customer.phone = phone
    if email and customer.email is None and by_email is None:
        customer.email = email
    if name and not customer.name:
        customer.name = name[:200]
    return customer


def get_customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer_not_found", f"No customer {customer_id}.")
    return customer


def mask_phone(phone: str | None) -> str | None:
    return None if not phone else "•" * max(0, len(phone) - 3) + phone[-3:]


def contact_view(customer: Customer, staff: Staff) -> dict:
    """The one rule for showing a record's contacts: managers and admins in full, staff a masked
    phone and no e-mail; with whether each was proven by the customer (identity.py)."""
    full = staff.has_role("manager")
    return {"phone": customer.phone if full else mask_phone(customer.phone),
            "email": customer.email if full else None, "verified": identity.verified(customer)}


# --- access: the one rule for pages and API ------------------------------------------------------

def _known_at(session: Session, customer_id: int, branch_ids: list[int] | None, day_only: bool,
              now: datetime) -> set[int]:
    """Branches (of `branch_ids`, None = any) where the customer has a ticket or booking (today only)."""
    found: set[int] = set()
    ticket_q = select(Ticket.branch_id, Ticket.local_date).where(Ticket.customer_id == customer_id)
    booking_q = select(Appointment.branch_id, Appointment.local_date).where(Appointment.customer_id == customer_id)
    if branch_ids is not None:
        ticket_q = ticket_q.where(Ticket.branch_id.in_(branch_ids))
        booking_q = booking_q.where(Appointment.branch_id.in_(branch_ids))
    rows = session.execute(ticket_q.distinct()).all() + session.execute(booking_q.distinct()).all()
    if not day_only:
        return {branch_id for branch_id, _day in rows}
    zones = {b.id: b.zone for b in session.scalars(select(Branch).where(Branch.id.in_({r[0] for r in rows})))}
    for branch_id, day in rows:
        if day == numbering.local_day(now, zones[branch_id]):
            found.add(branch_id)
    return found


def visible_branches(session: Session, staff: Staff, customer_id: int, *, now: datetime | None = None) -> list[int] | None:
    """Branch ids whose history of this customer `staff` may see (None: all); Forbidden if none."""
    get_customer(session, customer_id)
    if staff.role == "admin":
        return None
    own = [b.id for b in staff.branches]
    if staff.has_role("manager"):
        visible = _known_at(session, customer_id, own, False, now or utcnow())
        if not visible:
            raise Forbidden("other_branch", "This customer has no visits at your branches.")
    else:
        visible = _known_at(session, customer_id, own, True, now or utcnow())
        if not visible:
            raise Forbidden("not_today", "Staff see the records of today's customers at their branches.")
    return sorted(visible)


def require_manager_of(session: Session, staff: Staff, customer_id: int) -> list[int] | None:
    """Export, unblock: managers of a branch that knows the customer, and admins."""
    if not staff.has_role("manager"):
        raise Forbidden("role_required", "This needs the manager role.")
    return visible_branches(session, staff, customer_id)


def require_whole_record(session: Session, staff: Staff, customer_id: int) -> None:
    """Erase and merge act on the person everywhere: admins, or a manager of every branch that
    knows the customer (a visit elsewhere is another branch's record to keep)."""
    require_manager_of(session, staff, customer_id)
    if staff.role == "admin":
        return
    everywhere = _known_at(session, customer_id, None, False, utcnow())
    if not everywhere <= {b.id for b in staff.branches}:
        raise Forbidden("other_branch", "This customer is also known at other branches; an admin can do this.")


def require_branch(staff: Staff, branch: Branch, role: str = "manager") -> None:
    if not staff.has_role(role):
        raise Forbidden("role_required", f"This needs the {role} role.")
    if not staff.can_access_branch(branch.id):
        raise Forbidden("other_branch", "You are not staff of this branch.")


# --- rules ---------------------------------------------------------------------------------------

DEFAULT_TIERS = ({"name": "gold", "min_value": 12.0, "min_loyalty": 0.5},
                 {"name": "silver", "min_value": 6.0, "min_loyalty": 0.0})
DEFAULT_CREDITS = {"core": 5, "at_risk_valuable": 5, "loyal_regular": 2, "occasional": 0}


@dataclass(frozen=True)
class CustomerRules:
    """A branch's customer settings (Branch.customer_rules overrides any of them)."""

    value_window_days: int = 365  # visits and spend counted over this many days
    spend_per_point_cents: int = 10_000  # this much spend adds 1 to the value score, like a visit
    high_value_score: float = 6.0
    high_loyalty_score: float = 0.5
    tenure_full_days: int = 365
    recency_zero_days: int = 180
    churn_days: int = 113  # a high-value customer unseen this long is an alert
    churn_interval_factor: float = 1.25  # the usual interval exceeded by this factor is an alert...
    churn_grace_days: int = 7  # ...and by at least this many days
    tiers: tuple = DEFAULT_TIERS  # best first
    segment_priority: bool = False  # queue credit by segment (minutes), off unless a manager enables it
    segment_credits: dict = field(default_factory=lambda: dict(DEFAULT_CREDITS))


_NUMBER_LIMITS = {
    "value_window_days": (7, 3650), "spend_per_point_cents": (1, 10**9), "high_value_score": (0, 10_000),
    "high_loyalty_score": (0, 1), "tenure_full_days": (1, 3650), "recency_zero_days": (1, 3650),
    "churn_days": (1, 3650), "churn_interval_factor": (1, 10), "churn_grace_days": (0, 365),
}


def rules_for(branch: Branch) -> CustomerRules:
    stored = branch.customer_rules or {}
    known = {f.name for f in fields(CustomerRules)}
    values = {k: v for k, v in stored.items() if k in known}
    if "tiers" in values:
        values["tiers"] = tuple(values["tiers"])
    if "segment_credits" in values:
        values["segment_credits"] = {**DEFAULT_CREDITS, **values["segment_credits"]}
    return CustomerRules(**values)


def _rule_error(message: str) -> Invalid:
    return Invalid("invalid_field", f"customer_rules: {message}", {"customer_rules": [message]})


def check_rules(values: dict) -> dict:
    """Validate the overrides a manager sets."""
    from queue_app.tickets.queue_order import MAX_CREDIT

    clean: dict = {}
    if not isinstance(values, dict):
        raise _rule_error("must be an object.")
    for key, value in values.items():
        if key in _NUMBER_LIMITS:
            low, high = _NUMBER_LIMITS[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise _rule_error(f"{key} must be a number from {low} to {high}.")
            clean[key] = value
        elif key == "segment_priority":
            if not isinstance(value, bool):
                raise _rule_error("segment_priority must be true or false.")
            clean[key] = value
        elif key == "segment_credits":
            limit = int(MAX_CREDIT.total_seconds() // 60)
            if not isinstance(value, dict) or set(value) - set(SEGMENTS) or not all(
                    isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= limit for v in value.values()):
                raise _rule_error(f"segment_credits maps segments ({', '.join(SEGMENTS)}) to 0-{limit} minutes.")
            clean[key] = dict(value)
        elif key == "tiers":
            clean[key] = _check_tiers(value)
        else:
            raise _rule_error(f"unknown setting '{key}'.")
    return clean


def _check_tiers(tiers) -> list[dict]:
    if not isinstance(tiers, list) or len(tiers) > 10:
        raise _rule_error("tiers is a list of at most 10 {name, min_value, min_loyalty}.")
    clean, names = [], set()
    for tier in tiers:
        if not isinstance(tier, dict) or set(tier) - {"name", "min_value", "min_loyalty"}:
            raise _rule_error("each tier is {name, min_value, min_loyalty}.")
        name = tier.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", name) or name in names \
                or name == "standard":
            raise _rule_error("tier names are short lower-case words, unique, not 'standard'.")
        min_value, min_loyalty = tier.get("min_value", 0), tier.get("min_loyalty", 0)
        for number, high in ((min_value, 10_000), (min_loyalty, 1)):
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0 <= number <= high:
                raise _rule_error(f"tier {name}: min_value is 0-10000 and min_loyalty 0-1.")
        names.add(name)
        clean.append({"name": name, "min_value": float(min_value), "min_loyalty": float(min_loyalty)})
    return clean


def update_rules(session: Session, branch_slug: str, values: dict, *, actor_id: int | None = None) -> CustomerRules:
    clean = check_rules(values)
    with write_transaction(session):
        branch = session.scalar(select(Branch).where(Branch.slug == branch_slug))
        if branch is None:
            raise NotFound("branch_not_found", f"No branch '{branch_slug}'.")
        branch.customer_rules = {**(branch.customer_rules or {}), **clean}
        rules = rules_for(branch)
    return rules


def priority_credit(session: Session, branch: Branch, customer_id: int | None) -> timedelta:
    """Queue credit of a customer's segment at this branch, if the manager enabled it."""
    if customer_id is None:
        return timedelta(0)
    rules = rules_for(branch)
    if not rules.segment_priority:
        return timedelta(0)
    segment = session.scalar(select(CustomerStanding.segment).where(
        CustomerStanding.customer_id == customer_id, CustomerStanding.branch_id == branch.id))
    return timedelta(minutes=int(rules.segment_credits.get(segment, 0))) if segment else timedelta(0)


# --- standings -----------------------------------------------------------------------------------

@dataclass
class Computed:
    visits: int
    spend_cents: int
    no_shows: int
    first_visit_at: datetime | None
    last_visit_at: datetime | None
    usual_interval_days: float | None
    value_score: float
    loyalty_score: float
    segment: str
    tier: str


def compute_standing(visits: list[tuple[datetime, int]], no_shows: int, rules: CustomerRules,
                     now: datetime) -> Computed:
    """One customer at one branch from their finished visits [(finished_at, price_cents)]."""
    visits = sorted(visits)
    window_start = now - timedelta(days=rules.value_window_days)
    in_window = [(at, price) for at, price in visits if at >= window_start]
    spend = sum(price for _at, price in in_window)
    value = round(len(in_window) + spend / rules.spend_per_point_cents, 3)
    first = visits[0][0] if visits else None
    last = visits[-1][0] if visits else None
    days = sorted({at.date() for at, _price in visits})[-13:]  # the last twelve intervals
    intervals = [(b - a).days for a, b in zip(days, days[1:])]
    usual = float(statistics.median(intervals)) if len(intervals) >= 2 else None
    # An absence longer than the usual interval counts as an interval already: a weekly customer
    # gone for four months is no longer regular.
    gap = (now.date() - days[-1]).days if days else 0
    rhythm = intervals + [gap] if usual is not None and gap > usual else intervals
    if len(intervals) >= 2 and statistics.mean(rhythm) > 0:
        regularity = max(0.0, 1 - statistics.pstdev(rhythm) / statistics.mean(rhythm))
    else:
        regularity = 0.0
    tenure = min(1.0, (now - first).total_seconds() / 86400 / rules.tenure_full_days) if first else 0.0
    recency = max(0.0, 1 - (now - last).total_seconds() / 86400 / rules.recency_zero_days) if last else 0.0
    loyalty = round((regularity + tenure + recency) / 3, 3)
    high_value, high_loyalty = value >= rules.high_value_score, loyalty >= rules.high_loyalty_score
    segment = ("core" if high_loyalty else "at_risk_valuable") if high_value else \
        ("loyal_regular" if high_loyalty else "occasional")
    tier = next((t["name"] for t in rules.tiers
                 if value >= t.get("min_value", 0) and loyalty >= t.get("min_loyalty", 0)), "standard")
    return Computed(len(in_window), spend, no_shows, first, last, usual, value, loyalty, segment, tier)


def _tier_rank(branch_rules: dict[int, CustomerRules]) -> dict[str, int]:
    rank = {"standard": 0}
    for rules in branch_rules.values():
        for position, tier in enumerate(reversed(rules.tiers), start=1):
            rank[tier["name"]] = max(rank.get(tier["name"], 0), position)
    return rank


def recompute_branch(session: Session, branch_slug: str, *, now: datetime | None = None) -> dict:
    """Recompute every standing of one branch, then raise churn alerts. Idempotent for one `now`."""
    now = now or utcnow()
    with write_transaction(session):
        branch = session.scalar(select(Branch).where(Branch.slug == branch_slug))
        if branch is None:
            raise NotFound("branch_not_found", f"No branch '{branch_slug}'.")
        rules = rules_for(branch)
        rows = session.execute(
            select(Ticket.customer_id, Ticket.finished_at, Service.price_cents)
            .join(Service, Service.id == Ticket.service_id)
            .where(Ticket.branch_id == branch.id, Ticket.customer_id.is_not(None), Ticket.status == "done",
                   Ticket.finished_at.is_not(None), Ticket.finished_at <= now)
        ).all()
        visits: dict[int, list] = {}
        for customer_id, finished_at, price in rows:
            visits.setdefault(customer_id, []).append((finished_at, price or 0))
        missed: dict[int, int] = dict(session.execute(
            select(Ticket.customer_id, func.count()).where(
                Ticket.branch_id == branch.id, Ticket.customer_id.is_not(None), Ticket.status == "no_show")
            .group_by(Ticket.customer_id)).all())
        for customer_id, count in session.execute(
                select(Appointment.customer_id, func.count()).where(
                    Appointment.branch_id == branch.id, Appointment.customer_id.is_not(None),
                    Appointment.status == "no_show").group_by(Appointment.customer_id)).all():
            missed[customer_id] = missed.get(customer_id, 0) + count
        existing = {s.customer_id: s for s in session.scalars(
            select(CustomerStanding).where(CustomerStanding.branch_id == branch.id))}
        changed = 0
        for customer_id in sorted(set(visits) | set(missed)):
            computed = compute_standing(visits.get(customer_id, []), missed.get(customer_id, 0), rules, now)
            standing = existing.pop(customer_id, None)
            if standing is None:
                standing = CustomerStanding(customer_id=customer_id, branch_id=branch.id)
                session.add(standing)
            before = {k: getattr(standing, k) for k in asdict(computed)}
            if before != asdict(computed):
                changed += 1
            for key, value in asdict(computed).items():
                setattr(standing, key, value)
            standing.computed_at = now
        for gone in existing.values():  # erased or merged away since the last run
            session.delete(gone)
            changed += 1
        session.flush()
        _refresh_customers(session, list(visits))
        alerts = _scan_churn(session, branch, rules, now)
    return {"standings": len(visits) + len(set(missed) - set(visits)), "changed": changed, "new_alerts": alerts}


def _refresh_customers(session: Session, customer_ids: list[int]) -> None:
    """Customer.tier is the best tier over branches, last_visit_at the latest visit anywhere."""
    if not customer_ids:
        return
    branches = {b.id: rules_for(b) for b in session.scalars(select(Branch))}
    rank = _tier_rank(branches)
    for chunk in range(0, len(customer_ids), 500):
        ids = customer_ids[chunk:chunk + 500]
        standings: dict[int, list[CustomerStanding]] = {}
        for standing in session.scalars(select(CustomerStanding).where(CustomerStanding.customer_id.in_(ids))):
            standings.setdefault(standing.customer_id, []).append(standing)
        for customer in session.scalars(select(Customer).where(Customer.id.in_(ids))):
            mine = standings.get(customer.id, [])
            best = max((s.tier for s in mine), key=lambda t: rank.get(t, 0), default="standard")
            last = max((s.last_visit_at for s in mine if s.last_visit_at), default=None)
            if customer.tier != best:
                customer.tier = best
            if last and (customer.last_visit_at is None or last > customer.last_visit_at):
                customer.last_visit_at = last


def churn_reason(standing: CustomerStanding | Computed, rules: CustomerRules, now: datetime,
                 zone=timezone.utc) -> str | None:
    """Why this customer is on the churn list, or None. Days unseen count calendar days (branch zone)."""
    if standing.last_visit_at is None:
        return None
    unseen = (now.astimezone(zone).date() - standing.last_visit_at.astimezone(zone).date()).days
    if standing.segment in HIGH_VALUE and unseen >= rules.churn_days:
        return "valued_unseen"
    usual = standing.usual_interval_days
    if usual and unseen > max(usual * rules.churn_interval_factor, usual + rules.churn_grace_days):
        return "interval_exceeded"
    return None


def _insert_ignore(session: Session):
    return {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[session.get_bind().dialect.name]


def _scan_churn(session: Session, branch: Branch, rules: CustomerRules, now: datetime) -> int:
    # A customer who came back after an alert: the alert is over.
    session.execute(
        update(ChurnAlert).where(
            ChurnAlert.branch_id == branch.id, ChurnAlert.resolved_at.is_(None),
            ChurnAlert.last_visit_at < select(CustomerStanding.last_visit_at).where(
                CustomerStanding.customer_id == ChurnAlert.customer_id,
                CustomerStanding.branch_id == branch.id).scalar_subquery(),
        ).values(resolved_at=now).execution_options(synchronize_session=False))
    added = 0
    for standing in session.scalars(select(CustomerStanding).where(CustomerStanding.branch_id == branch.id)):
        reason = churn_reason(standing, rules, now, branch.zone)
        if reason is None:
            continue
        # Once per absence: the same customer, branch and last visit is never added twice.
        result = session.execute(_insert_ignore(session)(ChurnAlert).values(
            branch_id=branch.id, customer_id=standing.customer_id, reason=reason,
            last_visit_at=standing.last_visit_at, usual_interval_days=standing.usual_interval_days,
            segment=standing.segment, created_at=now,
        ).on_conflict_do_nothing(index_elements=["branch_id", "customer_id", "last_visit_at"])
            .returning(ChurnAlert.id))
        added += len(result.all())  # rowcount is -1 on some drivers for ON CONFLICT DO NOTHING
    return added


def nightly_due(session: Session, branch: Branch, now: datetime, hour: int = 3) -> bool:
    """Whether the branch's standings are older than its last local `hour` o'clock."""
    local = now.astimezone(branch.zone)
    mark = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if mark > local:
        mark -= timedelta(days=1)
    last = session.scalar(select(func.min(CustomerStanding.computed_at)).where(
        CustomerStanding.branch_id == branch.id))
    return last is None or last < mark


def segment_overview(session: Session, branch: Branch) -> dict:
    counts = dict(session.execute(
        select(CustomerStanding.segment, func.count()).where(CustomerStanding.branch_id == branch.id)
        .group_by(CustomerStanding.segment)).all())
    tiers = dict(session.execute(
        select(CustomerStanding.tier, func.count()).where(CustomerStanding.branch_id == branch.id)
        .group_by(CustomerStanding.tier)).all())
    computed = session.scalar(select(func.max(CustomerStanding.computed_at)).where(
        CustomerStanding.branch_id == branch.id))
    return {"segments": {s: counts.get(s, 0) for s in SEGMENTS}, "tiers": tiers, "computed_at": computed}


def standings(session: Session, branch: Branch, *, segment: str | None = None, limit: int = 200) -> list[CustomerStanding]:
    query = select(CustomerStanding).where(CustomerStanding.branch_id == branch.id)
    if segment:
        query = query.where(CustomerStanding.segment == segment)
    return session.scalars(query.order_by(CustomerStanding.value_score.desc(), CustomerStanding.customer_id)
                           .limit(limit)).all()


# --- churn list ----------------------------------------------------------------------------------

def churn_list(session: Session, branch: Branch, *, include_contacted: bool = True) -> list[ChurnAlert]:
    query = select(ChurnAlert).where(ChurnAlert.branch_id == branch.id, ChurnAlert.resolved_at.is_(None))
    if not include_contacted:
        query = query.where(ChurnAlert.contacted_at.is_(None))
    return session.scalars(query.order_by(ChurnAlert.contacted_at.is_not(None), ChurnAlert.last_visit_at)).all()


def mark_contacted(session: Session, alert_id: int, staff: Staff, *, now: datetime | None = None) -> ChurnAlert:
    now = now or utcnow()
    with write_transaction(session):
        alert = session.get(ChurnAlert, alert_id)
        if alert is None:
            raise NotFound("alert_not_found", f"No churn alert {alert_id}.")
        require_branch(staff, session.get(Branch, alert.branch_id))
        if alert.contacted_at is None:
            alert.contacted_at = now
            alert.contacted_by_id = staff.id
            audit.record(session, "churn.contacted", "customer", alert.customer_id, actor_id=staff.id,
                         branch_id=alert.branch_id, details={"alert": alert.id}, now=now)
    return alert


# --- history -------------------------------------------------------------------------------------

def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, (end - start).total_seconds() / 60), 1)


def history(session: Session, customer_id: int, branch_ids: list[int] | None = None, *,
            limit: int | None = None, exclude_ticket: int | None = None) -> list[dict]:
    """Every booking, check-in, ticket (with wait and service time), no-show, cancellation and
    rating, newest first. `branch_ids` limits it to those branches (None: all)."""
    ticket_q = select(Ticket).where(Ticket.customer_id == customer_id)
    if exclude_ticket is not None:
        ticket_q = ticket_q.where(Ticket.id != exclude_ticket)
    booking_q = select(Appointment).where(Appointment.customer_id == customer_id)
    feedback_q = select(Feedback).where(Feedback.customer_id == customer_id, Feedback.answered_at.is_not(None))
    if branch_ids is not None:
        ticket_q = ticket_q.where(Ticket.branch_id.in_(branch_ids))
        booking_q = booking_q.where(Appointment.branch_id.in_(branch_ids))
        feedback_q = feedback_q.where(Feedback.branch_id.in_(branch_ids))
    entries = []
    for ticket in session.scalars(ticket_q):
        waited_from = max(ticket.issued_at, ticket.effective_at)
        entries.append({
            "at": ticket.issued_at, "kind": "ticket", "branch": ticket.branch.slug, "branch_name": ticket.branch.name,
            "service": ticket.service.code, "service_name": ticket.service.name,
            "service_names": dict(ticket.service.names or {}), "label": ticket.label,
            "status": ticket.status, "counter": ticket.counter.name if ticket.counter else None,
            "wait_minutes": _minutes(waited_from, ticket.called_at),
            "service_minutes": _minutes(ticket.started_at or ticket.called_at, ticket.finished_at)
            if ticket.status == "done" else None,
            "zone": ticket.branch.timezone,
        })
    for appointment in session.scalars(booking_q):
        entries.append({
            "at": appointment.created_at, "kind": "booking", "branch": appointment.branch.slug,
            "branch_name": appointment.branch.name, "service": appointment.service.code,
            "service_name": appointment.service.name, "service_names": dict(appointment.service.names or {}),
            "status": appointment.status,
            "start": appointment.start_at, "zone": appointment.branch.timezone,
        })
        if appointment.cancelled_at:
            entries.append({"at": appointment.cancelled_at, "kind": "cancellation", "branch": appointment.branch.slug,
                            "branch_name": appointment.branch.name, "service": appointment.service.code,
                            "service_name": appointment.service.name,
                            "service_names": dict(appointment.service.names or {}), "status": "cancelled",
                            "start": appointment.start_at, "zone": appointment.branch.timezone})
    for answer in session.scalars(feedback_q):
        branch = session.get(Branch, answer.branch_id)
        service = session.get(Service, answer.service_id)
        entries.append({"at": answer.answered_at, "kind": "rating", "branch": branch.slug, "branch_name": branch.name,
                        "service": service.code, "service_name": service.name,
                        "service_names": dict(service.names or {}), "rating": answer.rating,
                        "nps": answer.nps, "comment": answer.comment, "zone": branch.timezone})
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries[:limit] if limit else entries


def summary(session: Session, customer: Customer, branch_ids: list[int] | None) -> dict:
    """Record card: identity, standings at the visible branches, counts."""
    query = select(CustomerStanding).where(CustomerStanding.customer_id == customer.id)
    if branch_ids is not None:
        query = query.where(CustomerStanding.branch_id.in_(branch_ids))
    return {"customer": customer, "standings": session.scalars(query).all()}


def record_view(session: Session, customer_id: int, staff: Staff, what: str = "record") -> None:
    """Reading a record is audited (its own small transaction)."""
    with write_transaction(session):
        audit.record(session, "customer.viewed", "customer", customer_id, actor_id=staff.id, details={"what": what})


# --- search and attach ---------------------------------------------------------------------------

def search(session: Session, staff: Staff, text: str, branch: Branch, *, limit: int = 20) -> list[dict]:
    """By phone (any format, exact or by its last digits) or name; staff see masked phone numbers."""
    text = (text or "").strip()
    if len(text) < 2:
        return []
    digits = re.sub(r"\D", "", text)
    conditions = []
    if len(digits) >= 4 and len(digits) >= len(text.replace(" ", "")) - 3:
        try:
            conditions.append(Customer.phone == normalise_phone(text, branch.country))
        except Invalid:
            pass
        conditions.append(Customer.phone.like(f"%{digits}"))
    elif "@" in text:
        conditions.append(Customer.email == text.lower())
    else:
        pattern = "%" + text.lower().replace("\\", "").replace("%", "").replace("_", "") + "%"
        conditions.append(func.lower(Customer.name).like(pattern))
    query = select(Customer).where(or_(*conditions)).order_by(Customer.name, Customer.id).limit(limit)
    if staff.role != "admin":
        # The access policy: only customers this branch knows, even for an exact phone. Staff get a
        # card to attach at the counter (masked phone, no e-mail), not the record (today's only).
        ticket_known = select(Ticket.id).where(Ticket.customer_id == Customer.id, Ticket.branch_id == branch.id)
        booking_known = select(Appointment.id).where(Appointment.customer_id == Customer.id,
                                                     Appointment.branch_id == branch.id)
        query = query.where(or_(ticket_known.exists(), booking_known.exists()))
    full = staff.has_role("manager")
    return [{"id": c.id, "name": c.name, "phone": c.phone if full else mask_phone(c.phone),
             "email": c.email if full else None, "tier": c.tier, "verified": identity.verified(c),
             "last_visit_at": c.last_visit_at} for c in session.scalars(query)]


def attach_to_ticket(session: Session, ticket_id: int, staff: Staff, *, customer_id: int | None = None,
                     phone: str | None = None, email: str | None = None, name: str = "",
                     now: datetime | None = None) -> Customer:
    """Staff at the counter put a ticket on a customer's record (found by search, or by contact)."""
    now = now or utcnow()
    with write_transaction(session):
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise NotFound("ticket_not_found", f"No ticket {ticket_id}.")
        require_branch(staff, ticket.branch, "staff")
        if customer_id is not None:
            # By id only a customer this branch knows (as its search finds them): ids are not a
            # way to reach another branch's customers.
            customer = get_customer(session, customer_id)
            if staff.role != "admin" and not _known_at(session, customer_id, [ticket.branch_id], False, now):
                raise Forbidden("other_branch", "This customer is not known at this branch; "
                                                "attach by the phone or e-mail they give.")
        else:
            if not phone and not email:
                raise Invalid("contact_required", "Give a customer, a phone number or an e-mail address.",
                              {"phone": ["A phone number or an e-mail address is needed."]})
            customer = find_or_create(session, phone=phone, email=email, region=ticket.branch.country, name=name,
                                      now=now)
        if name and not customer.name:
            customer.name = name[:200]
        previous = ticket.customer_id
        ticket.customer_id = customer.id
        # Staff vouch for the person at the counter: the ticket's messages go to these contacts.
        ticket.phone = customer.phone if customer_id is not None else (customer.phone if phone else None)
        ticket.email = customer.email if customer_id is not None else (customer.email if email else None)
        ticket.language = ticket.language or customer.language
        if ticket.status == "done":
            customer.last_visit_at = max(filter(None, [customer.last_visit_at, ticket.finished_at]))
        audit.record(session, "customer.attached", "customer", customer.id, actor_id=staff.id,
                     branch_id=ticket.branch_id, details={"ticket": ticket.id, "previous": previous}, now=now)
    return customer


def ticket_customer(session: Session, ticket_id: int, staff: Staff, *, recent: int = 5) -> dict:
    """For the counter: the current ticket's customer with their earlier visits at these branches."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("ticket_not_found", f"No ticket {ticket_id}.")
    require_branch(staff, ticket.branch, "staff")
    if ticket.customer_id is None:
        return {"customer": None, "standing": None, "recent": []}
    branch_ids = visible_branches(session, staff, ticket.customer_id)
    customer = session.get(Customer, ticket.customer_id)
    standing = session.get(CustomerStanding, (customer.id, ticket.branch_id))
    return {"customer": customer, "standing": standing,
            "recent": history(session, customer.id, branch_ids, limit=recent, exclude_ticket=ticket.id)}


# --- merge, export, erase ------------------------------------------------------------------------

def merge(session: Session, keep_id: int, other_id: int, staff: Staff, *, now: datetime | None = None) -> Customer:
    """Fold `other` into `keep`: every ticket, booking, answer and alert moves; contacts fill gaps."""
    if keep_id == other_id:
        raise Invalid("same_customer", "A record cannot be merged into itself.")
    require_whole_record(session, staff, keep_id)
    require_whole_record(session, staff, other_id)
    now = now or utcnow()
    with write_transaction(session):
        keep, other = get_customer(session, keep_id), get_customer(session, other_id)
        for model in (Ticket, Appointment, Feedback):
            session.execute(update(model).where(model.customer_id == other.id).values(customer_id=keep.id)
                            .execution_options(synchronize_session=False))
        # Alerts and standings are recomputed from the merged history on the next run.
        session.execute(delete(ChurnAlert).where(ChurnAlert.customer_id == other.id))
        session.execute(delete(CustomerStanding).where(CustomerStanding.customer_id == other.id))
        phone, email, name = other.phone, other.email, other.name
        keep.strikes += other.strikes
        keep.last_visit_at = max(filter(None, [keep.last_visit_at, other.last_visit_at]), default=None)
        keep.created_at = min(filter(None, [keep.created_at, other.created_at]), default=None)
        if other.booking_blocked_until and (keep.booking_blocked_until is None
                                            or other.booking_blocked_until > keep.booking_blocked_until):
            keep.booking_blocked_until = other.booking_blocked_until
        session.delete(other)
        session.flush()  # the unique phone and e-mail are free now
        keep.phone = keep.phone or phone
        keep.email = keep.email or email
        keep.name = keep.name or name
        audit.record(session, "customer.merged", "customer", keep.id, actor_id=staff.id,
                     details={"merged": other_id}, now=now)
    return keep


def _iso(moment):
    return moment.isoformat() if isinstance(moment, datetime) else moment


def export(session: Session, customer_id: int, staff: Staff, *, now: datetime | None = None) -> dict:
    """Everything stored about the person (JSON-ready); audited. A manager gets the visits at
    their own branches (another branch's visits are that branch's to disclose); an admin, all."""
    visible = require_manager_of(session, staff, customer_id)
    customer = get_customer(session, customer_id)
    standings = select(CustomerStanding).where(CustomerStanding.customer_id == customer_id)
    bookings = select(Appointment).where(Appointment.customer_id == customer_id)
    if visible is not None:
        standings = standings.where(CustomerStanding.branch_id.in_(visible))
        bookings = bookings.where(Appointment.branch_id.in_(visible))
    data = {
        "customer": {"id": customer.id, "name": customer.name, "phone": customer.phone, "email": customer.email,
                     "language": customer.language, "tier": customer.tier, "strikes": customer.strikes,
                     "last_visit_at": _iso(customer.last_visit_at), "created_at": _iso(customer.created_at),
                     "booking_blocked_until": _iso(customer.booking_blocked_until)},
        "standings": [{"branch": session.get(Branch, s.branch_id).slug, "segment": s.segment, "tier": s.tier,
                       "visits": s.visits, "spend_cents": s.spend_cents, "no_shows": s.no_shows,
                       "value_score": s.value_score, "loyalty_score": s.loyalty_score,
                       "usual_interval_days": s.usual_interval_days,
                       "first_visit_at": _iso(s.first_visit_at), "last_visit_at": _iso(s.last_visit_at)}
                      for s in session.scalars(standings)],
        "history": [{k: _iso(v) for k, v in entry.items()} for entry in history(session, customer_id, visible)],
        "bookings": [{"branch": a.branch.slug, "service": a.service.code, "name": a.name, "start": _iso(a.start_at),
                      "status": a.status, "language": a.language, "created_at": _iso(a.created_at)}
                     for a in session.scalars(bookings)],
        "branches": None if visible is None else sorted(session.get(Branch, b).slug for b in visible),
        "exported_at": _iso(now or utcnow()),
    }
    with write_transaction(session):
        audit.record(session, "customer.exported", "customer", customer_id, actor_id=staff.id, now=now)
    return data


def erase(session: Session, customer_id: int, staff: Staff, *, now: datetime | None = None) -> dict:
    """Remove the person; keep anonymous tickets, waits, bookings and ratings. Audited."""
    require_whole_record(session, staff, customer_id)
    now = now or utcnow()
    with write_transaction(session):
        customer = get_customer(session, customer_id)
        booking_ids = select(Appointment.id).where(Appointment.customer_id == customer_id)
        # Every contact of the person: the record's and those typed on their bookings and tickets.
        typed = session.execute(select(Appointment.phone, Appointment.email)
                                .where(Appointment.customer_id == customer_id)).all() + \
            session.execute(select(Ticket.phone, Ticket.email).where(Ticket.customer_id == customer_id)).all()
        contacts = sorted({c for c in (customer.phone, customer.email, *(v for row in typed for v in row)) if c})
        feedback_ids = select(Feedback.id).where(Feedback.customer_id == customer_id)
        # Messages to the person: unsent ones are dropped, every one loses recipient and text.
        feedback_keys = [f"feedback:{ticket_id}" for ticket_id in session.scalars(
            select(Feedback.ticket_id).where(Feedback.customer_id == customer_id))]
        about_them = or_(Notification.appointment_id.in_(booking_ids),
                         Notification.recipient.in_(contacts) if contacts else false(),
                         Notification.dedupe_key.in_(feedback_keys) if feedback_keys else false())
        session.execute(update(Notification).where(about_them, Notification.status.in_(("pending", "sending")))
                        .values(status="cancelled", last_error="recipient erased")
                        .execution_options(synchronize_session=False))
        messages = session.execute(update(Notification).where(about_them)
                                   .values(recipient="", payload={}, last_error="")
                                   .execution_options(synchronize_session=False)).rowcount
        session.execute(update(ContactProof).where(ContactProof.appointment_id.in_(booking_ids))
                        .values(contact="", used_at=func.coalesce(ContactProof.used_at, now))
                        .execution_options(synchronize_session=False))
        session.execute(update(Appointment).where(Appointment.customer_id == customer_id)
                        .values(name="", phone=None, email=None, customer_id=None, idempotency_token=None,
                                idempotency_fingerprint=None)
                        .execution_options(synchronize_session=False))
        tickets = session.execute(update(Ticket).where(Ticket.customer_id == customer_id)
                                  .values(customer_id=None, phone=None, email=None)
                                  .execution_options(synchronize_session=False)).rowcount
        session.execute(update(Feedback).where(Feedback.id.in_(feedback_ids)).values(customer_id=None, comment="")
                        .execution_options(synchronize_session=False))
        session.execute(delete(ChurnAlert).where(ChurnAlert.customer_id == customer_id))
        session.execute(delete(CustomerStanding).where(CustomerStanding.customer_id == customer_id))
        session.delete(customer)
        audit.record(session, "customer.erased", "customer", customer_id, actor_id=staff.id,
                     details={"tickets_kept": tickets, "messages_cleared": messages}, now=now)
    return {"customer": customer_id, "tickets_kept": tickets, "messages_cleared": messages}


# --- feedback ------------------------------------------------------------------------------------

def _check_answer(rating, nps, comment) -> str:
    problems = {}
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        problems["rating"] = ["A whole number from 1 to 5."]
    if nps is not None and (isinstance(nps, bool) or not isinstance(nps, int) or not 0 <= nps <= 10):
        problems["nps"] = ["A whole number from 0 to 10."]
    comment = (comment or "").strip()
    if len(comment) > 2000:
        problems["comment"] = ["At most 2000 characters."]
    if problems:
        raise Invalid("invalid_field", "The answer is not valid: " + ", ".join(problems) + ".", problems)
    return comment


def feedback_state(session: Session, ticket: Ticket, now: datetime | None = None) -> str:
    """'not_finished', 'open', 'answered' or 'closed' (too long after the visit)."""
    if ticket.status != "done" or ticket.finished_at is None:
        return "not_finished"
    answered = session.scalar(select(Feedback.answered_at).where(Feedback.ticket_id == ticket.id))
    if answered is not None:
        return "answered"
    if (now or utcnow()) - ticket.finished_at > timedelta(days=FEEDBACK_DAYS):
        return "closed"
    return "open"


def submit_feedback(session: Session, ticket_id: int, rating: int, nps: int | None = None, comment: str = "", *,
                    channel: str = "tracking", now: datetime | None = None) -> Feedback:
    """The one answer for a finished visit; a second is refused (409 feedback_given)."""
    comment = _check_answer(rating, nps, comment)
    now = now or utcnow()
    with write_transaction(session):
        ticket = session.scalar(select(Ticket).where(Ticket.id == ticket_id).with_for_update(of=Ticket))
        if ticket is None:
            raise NotFound("ticket_not_found", f"No ticket {ticket_id}.")
        state = feedback_state(session, ticket, now)
        if state == "not_finished":
            raise Conflict("not_finished", "Feedback opens when the visit is over.")
        if state == "answered":
            raise Conflict("feedback_given", "This visit was rated already; thank you.")
        if state == "closed":
            raise Conflict("feedback_closed", f"Visits can be rated for {FEEDBACK_DAYS} days.")
        answer = session.scalar(select(Feedback).where(Feedback.ticket_id == ticket.id))
        if answer is None:
            answer = Feedback(ticket_id=ticket.id, branch_id=ticket.branch_id, service_id=ticket.service_id,
                              counter_id=ticket.counter_id, staff_id=ticket.staff_id, customer_id=ticket.customer_id)
            session.add(answer)
        answer.rating, answer.nps, answer.comment = rating, nps, comment
        answer.channel, answer.answered_at = channel, now
        session.flush()
    return answer


def ticket_for_feedback_token(session: Session, token: str) -> Ticket:
    answer = session.scalar(select(Feedback).where(Feedback.token_hash == token_hash(token or "")))
    if answer is None:
        raise NotFound("feedback_not_found", "No visit for this link.")
    return session.get(Ticket, answer.ticket_id)


# The feedback mail in English, translated into the customer's language from the shared catalogs
# when it is written (notifications/texts.py).
FEEDBACK_TEXTS = (
    N_("How was your visit to %(branch)s?"),
    N_("Hello %(name)s,\n\nthank you for visiting %(branch)s (%(service)s, ticket %(label)s).\n\n"
       "Would you tell us how it went? It takes half a minute:\n%(url)s\n\n"
       "The link works for %(days)s days.\n"),
)


def invite_feedback(session: Session, base_url: str, *, now: datetime | None = None,
                    since: timedelta = timedelta(days=1)) -> int:
    """Mail a feedback link (through the outbox) after each finished visit that left an e-mail
    address (the ticket's own, identity.py). Idempotent: one Feedback row per ticket, one message
    per dedupe key."""
    now = now or utcnow()
    with write_transaction(session):
        rows = session.execute(
            select(Ticket, Customer).join(Customer, Customer.id == Ticket.customer_id)
            .outerjoin(Feedback, Feedback.ticket_id == Ticket.id)
            .where(Ticket.status == "done", Ticket.finished_at >= now - since, Ticket.finished_at <= now,
                   Ticket.email.is_not(None), Feedback.id.is_(None))
        ).all()
        for ticket, customer in rows:
            token = new_token()
            session.add(Feedback(ticket_id=ticket.id, branch_id=ticket.branch_id, service_id=ticket.service_id,
                                 counter_id=ticket.counter_id, staff_id=ticket.staff_id, customer_id=customer.id,
                                 token_hash=token_hash(token), channel="mail", invited_at=now))
            language = ticket.language if ticket.language in texts.LANGUAGES else "en"
            subject, body = FEEDBACK_TEXTS
            values = {"branch": ticket.branch.name, "service": localized_name(ticket.service, language),
                      "label": ticket.label,
                      # The record's name only when the record holds this address (identity.py).
                      "name": (customer.name or "") if customer.email == ticket.email else "",
                      "url": f"{base_url.rstrip('/')}/f/{token}", "days": FEEDBACK_DAYS}
            session.execute(_insert_ignore(session)(Notification).values(
                channel="email", recipient=ticket.email, template="feedback_request", language=language,
                payload={"subject": texts.gettext(language, subject, **values),
                         "body": texts.gettext(language, body, **values)},
                dedupe_key=f"feedback:{ticket.id}", status="pending", attempts=0, next_attempt_at=now,
                last_error="", created_at=now,
            ).on_conflict_do_nothing(index_elements=["dedupe_key"]))
    return len(rows)


def _aggregate(rows: list[tuple]) -> dict:
    ratings = [r for r, _n in rows if r is not None]
    scores = [n for _r, n in rows if n is not None]
    nps = None
    if scores:
        promoters = sum(1 for n in scores if n >= 9)
        detractors = sum(1 for n in scores if n <= 6)
        nps = round(100 * (promoters - detractors) / len(scores), 1)
    return {"answers": len(rows), "average_rating": round(sum(ratings) / len(ratings), 2) if ratings else None,
            "nps": nps, "nps_answers": len(scores)}


def feedback_summary(session: Session, branch: Branch, *, start: datetime | None = None,
                     end: datetime | None = None) -> dict:
    """Average rating and NPS (% promoters 9-10 minus % detractors 0-6) overall, per service, counter, staff."""
    query = select(Feedback).where(Feedback.branch_id == branch.id, Feedback.answered_at.is_not(None))
    if start:
        query = query.where(Feedback.answered_at >= start)
    if end:
        query = query.where(Feedback.answered_at < end)
    answers = session.scalars(query).all()
    names = {
        "service": {s.id: f"{s.code} {s.name}" for s in session.scalars(select(Service).where(Service.branch_id == branch.id))},
        "counter": {c.id: c.name for c in session.scalars(select(Counter).where(Counter.branch_id == branch.id))},
        "staff": {s.id: s.name or f"#{s.id}" for s in session.scalars(select(Staff)).unique()},
    }
    result = {"overall": _aggregate([(a.rating, a.nps) for a in answers])}
    for key, attr in (("service", "service_id"), ("counter", "counter_id"), ("staff", "staff_id")):
        groups: dict = {}
        for answer in answers:
            groups.setdefault(getattr(answer, attr), []).append((answer.rating, answer.nps))
        result[f"by_{key}"] = [{"id": ident, "name": names[key].get(ident, "—"), **_aggregate(rows)}
                               for ident, rows in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))]
    result["comments"] = [{"rating": a.rating, "nps": a.nps, "comment": a.comment, "answered_at": a.answered_at}
                          for a in sorted(answers, key=lambda a: a.answered_at, reverse=True) if a.comment][:20]
    return result
