"""A branch's customer rules (tiers, priority credits, churn thresholds), the nightly standings
(segments, tiers, value, loyalty) and the churn alerts they raise.

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
"""
import re
import statistics
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from queue_app.booking.models import Appointment
from queue_app.catalogue.models import Branch, Service
from queue_app.core.errors import Invalid, NotFound
from queue_app.core.models import utcnow
from queue_app.core.transaction import write_transaction
from queue_app.customers.models import (
    SEGMENTS,
    ChurnAlert,
    Customer,
    CustomerStanding,
)
from queue_app.tickets.models import Ticket
from queue_app.tickets.queue_order import MAX_CREDIT

HIGH_VALUE = ("core", "at_risk_valuable")


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
