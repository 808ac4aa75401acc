"""API shapes of customer records, history, feedback, segments, rules, churn and the audit log."""
from marshmallow import Schema, fields, validate

from queue_app.customers.models import SEGMENTS
from queue_app.web.input_rules import Text, When


class CustomerSearchQuery(Schema):
    # Needed; checked after the caller is known, so a stranger gets 401/403, not a field list.
    q = Text(min=2, max=100)


class ContactsVerified(Schema):
    phone = fields.Boolean(allow_none=True, metadata={"description": "proven by the customer; null: no phone"})
    email = fields.Boolean(allow_none=True, metadata={"description": "proven by the customer; null: no e-mail"})


class CustomerBrief(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    verified = fields.Nested(ContactsVerified)
    tier = fields.String(required=True)
    last_visit_at = fields.String(allow_none=True)


class StandingSchema(Schema):
    branch = fields.String(required=True)
    segment = fields.String(required=True)
    tier = fields.String(required=True)
    visits = fields.Integer(required=True)
    spend_cents = fields.Integer(required=True)
    no_shows = fields.Integer(required=True)
    value_score = fields.Float(required=True)
    loyalty_score = fields.Float(required=True)
    usual_interval_days = fields.Float(allow_none=True)
    first_visit_at = fields.String(allow_none=True)
    last_visit_at = fields.String(allow_none=True)


class HistoryEntrySchema(Schema):
    at = fields.String(required=True)
    kind = fields.String(required=True, metadata={"enum": ["ticket", "booking", "cancellation", "rating"]})
    branch = fields.String(required=True)
    service = fields.String(required=True)
    service_name = fields.String()
    status = fields.String()
    label = fields.String()
    counter = fields.String(allow_none=True)
    wait_minutes = fields.Float(allow_none=True)
    service_minutes = fields.Float(allow_none=True)
    start = fields.String(allow_none=True)
    rating = fields.Integer(allow_none=True)
    nps = fields.Integer(allow_none=True)
    comment = fields.String(allow_none=True)


class CustomerRecordSchema(CustomerBrief):
    language = fields.String(required=True)
    strikes = fields.Integer(required=True)
    booking_blocked_until = fields.String(allow_none=True)
    standings = fields.List(fields.Nested(StandingSchema), required=True)
    recent = fields.List(fields.Nested(HistoryEntrySchema), required=True)


class HistorySchema(Schema):
    customer = fields.Integer(required=True)
    entries = fields.List(fields.Nested(HistoryEntrySchema), required=True)


class TicketCustomerSchema(Schema):
    customer = fields.Nested(CustomerBrief, allow_none=True, required=True)
    standing = fields.Nested(StandingSchema, allow_none=True, required=True)
    recent = fields.List(fields.Nested(HistoryEntrySchema), required=True)


class AttachRequest(Schema):
    customer_id = fields.Integer(validate=validate.Range(min=1, max=2**63 - 1))
    phone = Text(max=40)
    email = Text(max=254)
    name = Text(max=200)


class MergeRequest(Schema):
    other = fields.Integer(required=True, validate=validate.Range(min=1, max=2**63 - 1))


class ErasedSchema(Schema):
    customer = fields.Integer(required=True)
    tickets_kept = fields.Integer(required=True)
    messages_cleared = fields.Integer(required=True)


class FeedbackRequest(Schema):
    rating = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    nps = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=10))
    comment = Text(max=2000)


class FeedbackAnswerSchema(Schema):
    ticket = fields.String(required=True)
    rating = fields.Integer(required=True)
    nps = fields.Integer(allow_none=True)
    answered_at = fields.String(required=True)


class AggregateSchema(Schema):
    answers = fields.Integer(required=True)
    average_rating = fields.Float(allow_none=True)
    nps = fields.Float(allow_none=True)
    nps_answers = fields.Integer(required=True)


class GroupAggregateSchema(AggregateSchema):
    id = fields.Integer(allow_none=True)
    name = fields.String(required=True)


class CommentSchema(Schema):
    rating = fields.Integer(allow_none=True)
    nps = fields.Integer(allow_none=True)
    comment = fields.String(required=True)
    answered_at = fields.String(required=True)


class FeedbackSummarySchema(Schema):
    branch = fields.String(required=True)
    overall = fields.Nested(AggregateSchema, required=True)
    by_service = fields.List(fields.Nested(GroupAggregateSchema), required=True)
    by_counter = fields.List(fields.Nested(GroupAggregateSchema), required=True)
    by_staff = fields.List(fields.Nested(GroupAggregateSchema), required=True)
    comments = fields.List(fields.Nested(CommentSchema), required=True)


class PeriodQuery(Schema):
    from_ = When("date", data_key="from")
    to = When("date")


class SegmentsQuery(Schema):
    segment = Text(validate=validate.OneOf(SEGMENTS))


class SegmentRowSchema(StandingSchema):
    customer = fields.Nested(CustomerBrief, required=True)


class SegmentsSchema(Schema):
    branch = fields.String(required=True)
    segments = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    tiers = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    computed_at = fields.String(allow_none=True)
    customers = fields.List(fields.Nested(SegmentRowSchema), required=True)


class RecomputedSchema(Schema):
    standings = fields.Integer(required=True)
    changed = fields.Integer(required=True)
    new_alerts = fields.Integer(required=True)


class TierSchema(Schema):
    name = Text(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_-]{0,31}$"))
    min_value = fields.Float(validate=validate.Range(min=0, max=10_000))
    min_loyalty = fields.Float(validate=validate.Range(min=0, max=1))


class RulesSchema(Schema):
    value_window_days = fields.Integer(validate=validate.Range(min=7, max=3650))
    spend_per_point_cents = fields.Integer(validate=validate.Range(min=1, max=10**9))
    high_value_score = fields.Float(validate=validate.Range(min=0, max=10_000))
    high_loyalty_score = fields.Float(validate=validate.Range(min=0, max=1))
    tenure_full_days = fields.Integer(validate=validate.Range(min=1, max=3650))
    recency_zero_days = fields.Integer(validate=validate.Range(min=1, max=3650))
    churn_days = fields.Integer(validate=validate.Range(min=1, max=3650))
    churn_interval_factor = fields.Float(validate=validate.Range(min=1, max=10))
    churn_grace_days = fields.Integer(validate=validate.Range(min=0, max=365))
    tiers = fields.List(fields.Nested(TierSchema), validate=validate.Length(max=10))
    segment_priority = fields.Boolean()
    segment_credits = fields.Dict(keys=Text(validate=validate.OneOf(SEGMENTS)),
                                  values=fields.Integer(validate=validate.Range(min=0, max=10)))


class ChurnAlertSchema(Schema):
    id = fields.Integer(required=True)
    customer = fields.Nested(CustomerBrief, required=True)
    reason = fields.String(required=True, metadata={"enum": ["interval_exceeded", "valued_unseen"]})
    segment = fields.String(required=True)
    last_visit_at = fields.String(required=True)
    usual_interval_days = fields.Float(allow_none=True)
    created_at = fields.String(required=True)
    contacted_at = fields.String(allow_none=True)
    contacted_by = fields.String(allow_none=True)


class AuditQuery(Schema):
    target_type = Text(max=32)
    target_id = fields.Integer(validate=validate.Range(min=1, max=2**63 - 1))
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))


class AuditEntrySchema(Schema):
    id = fields.Integer(required=True)
    at = fields.String(required=True)
    actor = fields.String(allow_none=True)
    action = fields.String(required=True)
    target_type = fields.String(required=True)
    target_id = fields.Integer(allow_none=True)
    branch_id = fields.Integer(allow_none=True)
    details = fields.Dict(required=True)
