"""Customer records, history, feedback, segments, churn list and the audit log.

Access: `require_staff` says who is calling; `customer_access.visible_branches` (the same rule the pages
use) says which customer records and which branches' history they reach.
"""
from datetime import datetime, time, timedelta

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select

from queue_app.accounts.access import require_staff
from queue_app.accounts.models import Staff
from queue_app.audit.models import AuditEntry
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Branch
from queue_app.core.extensions import db, limiter
from queue_app.customers import access as customer_access
from queue_app.customers import churn as customer_churn
from queue_app.customers import feedback as customer_feedback
from queue_app.customers import operations as customers
from queue_app.customers import privacy as customer_privacy
from queue_app.customers import standing as customer_standing
from queue_app.customers.models import Customer
from queue_app.customers.schemas import (
    AttachRequest,
    AuditEntrySchema,
    AuditQuery,
    ChurnAlertSchema,
    CustomerBrief,
    CustomerRecordSchema,
    CustomerSearchQuery,
    ErasedSchema,
    FeedbackAnswerSchema,
    FeedbackRequest,
    FeedbackSummarySchema,
    HistorySchema,
    MergeRequest,
    PeriodQuery,
    RecomputedSchema,
    RulesSchema,
    SegmentsQuery,
    SegmentsSchema,
    TicketCustomerSchema,
)
from queue_app.tickets import queueing
from queue_app.tickets.models import Ticket
from queue_app.web.api import abort
from queue_app.web.api.serialize import local_iso

blp = Blueprint("api_customers", __name__, description="Customer records, feedback, segments and churn")
BEARER = [{"bearer": []}]


# --- shapes --------------------------------------------------------------------------------------


# --- serialisers -----------------------------------------------------------------------------------

def _utc(moment):
    return moment.isoformat(timespec="seconds") if moment else None


def brief(customer: Customer, staff) -> dict:
    """A record's card as the caller may see it (customers.contact_view: staff get masked phones)."""
    return {"id": customer.id, "name": customer.name, **customers.contact_view(customer, staff),
            "tier": customer.tier, "last_visit_at": _utc(customer.last_visit_at)}


def standing_dict(standing) -> dict:
    branch = db.session.get(Branch, standing.branch_id)
    zone = branch.zone
    return {"branch": branch.slug, "segment": standing.segment, "tier": standing.tier, "visits": standing.visits,
            "spend_cents": standing.spend_cents, "no_shows": standing.no_shows, "value_score": standing.value_score,
            "loyalty_score": standing.loyalty_score, "usual_interval_days": standing.usual_interval_days,
            "first_visit_at": local_iso(standing.first_visit_at, zone),
            "last_visit_at": local_iso(standing.last_visit_at, zone)}


def history_dict(entry: dict) -> dict:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(entry["zone"])
    out = {k: v for k, v in entry.items() if k not in ("zone", "branch_name")}
    out["at"] = local_iso(entry["at"], zone)
    if "start" in entry:
        out["start"] = local_iso(entry["start"], zone)
    return out


def _branch(slug: str, role: str = "manager"):
    branch = catalogue.get_branch(db.session, slug)
    require_staff(role, branch_id=branch.id)
    return branch


# --- records -------------------------------------------------------------------------------------

@blp.route("/branches/<string:slug>/customers", methods=["GET"])
@blp.arguments(CustomerSearchQuery(), location="query")
@blp.response(200, CustomerBrief(many=True))
@blp.doc(security=BEARER)
def search_customers(query, slug):
    """Find customers by phone (any format, or its last digits) or name (staff of the branch; staff
    see phone numbers masked)."""
    branch = catalogue.get_branch(db.session, slug)
    staff = require_staff(branch_id=branch.id)
    if not query.get("q"):
        abort(422, "validation_failed", "Give q: a phone number, its last digits, or part of a name.")
    found = customers.search(db.session, staff, query["q"], branch)
    return [{**row, "last_visit_at": _utc(row["last_visit_at"])} for row in found]


@blp.route("/customers/<int:customer_id>", methods=["GET"])
@blp.response(200, CustomerRecordSchema)
@blp.doc(security=BEARER)
def get_customer(customer_id):
    """A customer's record: contact, standings and recent visits at the branches you may see."""
    staff = require_staff()
    branch_ids = customer_access.visible_branches(db.session, staff, customer_id)
    customer = customers.get_customer(db.session, customer_id)
    record = customers.summary(db.session, customer, branch_ids)
    result = {**brief(customer, staff), "language": customer.language, "strikes": customer.strikes,
              "booking_blocked_until": _utc(customer.booking_blocked_until),
              "standings": [standing_dict(s) for s in record["standings"]],
              "recent": [history_dict(e) for e in customers.history(db.session, customer_id, branch_ids, limit=10)]}
    customers.record_view(db.session, customer_id, staff)
    return result


@blp.route("/customers/<int:customer_id>/history", methods=["GET"])
@blp.response(200, HistorySchema)
@blp.doc(security=BEARER)
def customer_history(customer_id):
    """Every booking, ticket (with wait and service minutes), no-show, cancellation and rating, newest first."""
    staff = require_staff()
    branch_ids = customer_access.visible_branches(db.session, staff, customer_id)
    entries = [history_dict(e) for e in customers.history(db.session, customer_id, branch_ids)]
    customers.record_view(db.session, customer_id, staff, "history")
    return {"customer": customer_id, "entries": entries}


@blp.route("/customers/<int:customer_id>/export", methods=["GET"])
@blp.response(200, Schema.from_dict({
    "customer": fields.Dict(required=True), "standings": fields.List(fields.Dict(), required=True),
    "history": fields.List(fields.Dict(), required=True), "bookings": fields.List(fields.Dict(), required=True),
    "branches": fields.List(fields.String(), required=True, allow_none=True, metadata={
        "description": "The branches whose visits are included (a manager's own); null: all (admins)."}),
    "exported_at": fields.String(required=True)}, name="CustomerExport"))
@blp.doc(security=BEARER)
def export_customer(customer_id):
    """Everything stored about the person, as JSON; audited. Managers of a branch that knows them
    get that branch's visits, admins every branch's."""
    staff = require_staff("manager")
    return customer_privacy.export(db.session, customer_id, staff)


@blp.route("/customers/<int:customer_id>", methods=["DELETE"])
@blp.response(200, ErasedSchema)
@blp.doc(security=BEARER)
def erase_customer(customer_id):
    """Erase the person on their request: contact, name, comments and messages go; anonymous visits stay."""
    staff = require_staff("manager")
    return customer_privacy.erase(db.session, customer_id, staff)


@blp.route("/customers/<int:customer_id>/merge", methods=["POST"])
@blp.arguments(MergeRequest())
@blp.response(200, CustomerBrief)
@blp.doc(security=BEARER)
def merge_customers(body, customer_id):
    """Fold record `other` into this one: every visit, booking and answer moves over."""
    staff = require_staff("manager")
    return brief(customer_privacy.merge(db.session, customer_id, body["other"], staff), staff)


@blp.route("/tickets/<int:ticket_id>/customer", methods=["GET"])
@blp.response(200, TicketCustomerSchema)
@blp.doc(security=BEARER)
def ticket_customer(ticket_id):
    """For the counter: the ticket's customer and their recent visits (staff of the branch)."""
    staff = require_staff()
    found = customers.ticket_customer(db.session, ticket_id, staff)
    if found["customer"] is None:
        return found
    customers.record_view(db.session, found["customer"].id, staff, "counter")
    return {"customer": brief(found["customer"], staff), "standing": standing_dict(found["standing"]) if found["standing"] else None,
            "recent": [history_dict(e) for e in found["recent"]]}


@blp.route("/tickets/<int:ticket_id>/customer", methods=["POST"])
@blp.arguments(AttachRequest())
@blp.response(200, CustomerBrief)
@blp.doc(security=BEARER)
def attach_customer(body, ticket_id):
    """Put the ticket on a customer's record: an existing one (`customer_id`) or by phone / e-mail."""
    staff = require_staff()
    customer = customers.attach_to_ticket(db.session, ticket_id, staff, customer_id=body.get("customer_id"),
                                          phone=body.get("phone"), email=body.get("email"), name=body.get("name", ""))
    return brief(customer, staff)


# --- feedback ------------------------------------------------------------------------------------

def _answer(ticket: Ticket, body: dict, channel: str) -> dict:
    answer = customer_feedback.submit_feedback(db.session, ticket.id, body["rating"], body.get("nps"),
                                       body.get("comment", ""), channel=channel)
    return {"ticket": ticket.label, "rating": answer.rating, "nps": answer.nps,
            "answered_at": local_iso(answer.answered_at, ticket.branch.zone)}


@blp.route("/tickets/<string:token>/feedback", methods=["POST"])
@limiter.limit(lambda: current_app.config["LOOKUP_RATE_LIMIT"])
@blp.arguments(FeedbackRequest())
@blp.response(201, FeedbackAnswerSchema)
def ticket_feedback(body, token):
    """The holder rates the finished visit (1-5, optional comment, 0-10 recommend); once."""
    return _answer(queueing.find_by_token(db.session, token), body, "tracking")


@blp.route("/feedback/<string:token>", methods=["POST"])
@limiter.limit(lambda: current_app.config["LOOKUP_RATE_LIMIT"])
@blp.arguments(FeedbackRequest())
@blp.response(201, FeedbackAnswerSchema)
def mailed_feedback(body, token):
    """The same answer through the link in the feedback mail; once per visit."""
    return _answer(customer_feedback.ticket_for_feedback_token(db.session, token), body, "mail")


def _period(query: dict, branch) -> tuple[datetime | None, datetime | None]:
    zone = branch.zone
    start = datetime.combine(query["from_"], time(0), zone) if query.get("from_") else None
    end = datetime.combine(query["to"] + timedelta(days=1), time(0), zone) if query.get("to") else None
    return start, end


@blp.route("/branches/<string:slug>/feedback", methods=["GET"])
@blp.arguments(PeriodQuery(), location="query")
@blp.response(200, FeedbackSummarySchema)
@blp.doc(security=BEARER)
def feedback_summary(query, slug):
    """Average rating and NPS overall and per service, counter and staff member (manager)."""
    branch = _branch(slug)
    start, end = _period(query, branch)
    summary = customer_feedback.feedback_summary(db.session, branch, start=start, end=end)
    summary["comments"] = [{**c, "answered_at": local_iso(c["answered_at"], branch.zone)} for c in summary["comments"]]
    return {"branch": branch.slug, **summary}


# --- segments, rules, churn ------------------------------------------------------------------------

@blp.route("/branches/<string:slug>/segments", methods=["GET"])
@blp.arguments(SegmentsQuery(), location="query")
@blp.response(200, SegmentsSchema)
@blp.doc(security=BEARER)
def segments(query, slug):
    """Customers per segment and tier, and the most valuable customers (of a segment) (manager)."""
    branch = _branch(slug)
    staff = require_staff("manager", branch_id=branch.id)
    overview = customer_standing.segment_overview(db.session, branch)
    rows = customer_standing.standings(db.session, branch, segment=query.get("segment"))
    return {"branch": branch.slug, "segments": overview["segments"], "tiers": overview["tiers"],
            "computed_at": local_iso(overview["computed_at"], branch.zone),
            "customers": [{**standing_dict(s), "customer": brief(s.customer, staff)} for s in rows]}


@blp.route("/branches/<string:slug>/segments/recompute", methods=["POST"])
@blp.response(200, RecomputedSchema)
@blp.doc(security=BEARER)
def recompute(slug):
    """Recompute standings, tiers and churn alerts now (the nightly job does the same)."""
    branch = _branch(slug)
    return customer_standing.recompute_branch(db.session, branch.slug)


def _rules_dict(rules) -> dict:
    from dataclasses import asdict

    return {**asdict(rules), "tiers": list(rules.tiers)}


@blp.route("/branches/<string:slug>/customer-rules", methods=["GET"])
@blp.response(200, RulesSchema)
@blp.doc(security=BEARER)
def get_rules(slug):
    """Segment thresholds, named tiers, churn rules and segment queue credit (manager)."""
    return _rules_dict(customer_standing.rules_for(_branch(slug)))


@blp.route("/branches/<string:slug>/customer-rules", methods=["PATCH"])
@blp.arguments(RulesSchema())
@blp.response(200, RulesSchema)
@blp.doc(security=BEARER)
def update_rules(body, slug):
    """Change any of the settings; they apply from the next recompute (manager)."""
    branch = _branch(slug)
    return _rules_dict(customer_standing.update_rules(db.session, branch.slug, body))


def alert_dict(alert, zone, staff) -> dict:
    by = db.session.get(Staff, alert.contacted_by_id) if alert.contacted_by_id else None
    return {"id": alert.id, "customer": brief(alert.customer, staff), "reason": alert.reason, "segment": alert.segment,
            "last_visit_at": local_iso(alert.last_visit_at, zone), "usual_interval_days": alert.usual_interval_days,
            "created_at": local_iso(alert.created_at, zone), "contacted_at": local_iso(alert.contacted_at, zone),
            "contacted_by": (by.name or by.email) if by else None}


@blp.route("/branches/<string:slug>/churn", methods=["GET"])
@blp.response(200, ChurnAlertSchema(many=True))
@blp.doc(security=BEARER)
def churn(slug):
    """Customers the branch may be losing: usual interval exceeded, or valued and unseen (manager)."""
    branch = _branch(slug)
    staff = require_staff("manager", branch_id=branch.id)
    return [alert_dict(a, branch.zone, staff) for a in customer_churn.churn_list(db.session, branch)]


@blp.route("/churn-alerts/<int:alert_id>/contacted", methods=["POST"])
@blp.response(200, ChurnAlertSchema)
@blp.doc(security=BEARER)
def contacted(alert_id):
    """Mark a churn alert as contacted (manager of its branch)."""
    staff = require_staff("manager")
    alert = customer_churn.mark_contacted(db.session, alert_id, staff)

    return alert_dict(alert, db.session.get(Branch, alert.branch_id).zone, staff)


# --- audit ---------------------------------------------------------------------------------------

@blp.route("/audit", methods=["GET"])
@blp.arguments(AuditQuery(), location="query")
@blp.response(200, AuditEntrySchema(many=True))
@blp.doc(security=BEARER)
def audit_log(query):
    """Who viewed or changed which record, newest first (admin)."""
    require_staff("admin")
    return [audit_dict(e) for e in audit_entries(query.get("target_type"), query.get("target_id"), query["limit"])]


def audit_entries(target_type=None, target_id=None, limit=200) -> list[AuditEntry]:
    statement = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if target_type:
        statement = statement.where(AuditEntry.target_type == target_type)
    if target_id:
        statement = statement.where(AuditEntry.target_id == target_id)
    return db.session.scalars(statement).all()


def audit_dict(entry: AuditEntry) -> dict:
    return {"id": entry.id, "at": _utc(entry.at), "actor": entry.actor.email if entry.actor else None,
            "action": entry.action, "target_type": entry.target_type, "target_id": entry.target_id,
            "branch_id": entry.branch_id, "details": entry.details or {}}
