"""API shapes of the forecast, the staffing plan and branch statistics."""
from marshmallow import Schema, fields, validate

from queue_app.web.api.schemas import StrictSchema
from queue_app.web.input_rules import When


class PlanDayQuery(StrictSchema):
    date = When("date", metadata={"description": "Branch local date; default today."})


class ForecastOfService(Schema):
    service = fields.String(required=True)
    walk_in_mean = fields.Float(required=True)
    walk_in_p10 = fields.Float(required=True)
    walk_in_p90 = fields.Float(required=True)
    booking_mean = fields.Float(required=True)


class ForecastInterval(Schema):
    start = fields.String(required=True, metadata={"description": "Branch local time with offset."})
    minutes = fields.Integer(required=True)
    services = fields.List(fields.Nested(ForecastOfService), required=True)


class ForecastDay(Schema):
    branch = fields.String(required=True)
    date = fields.Date(required=True)
    intervals = fields.List(fields.Nested(ForecastInterval), required=True)


class StaffingInterval(Schema):
    start = fields.String(required=True)
    minutes = fields.Integer(required=True)
    forecast_arrivals = fields.Float(required=True)
    offered_load = fields.Float(required=True)
    counters_planned = fields.Integer(required=True)
    counters_override = fields.Integer(required=True, allow_none=True)
    counters = fields.Integer(required=True)
    booking_slots = fields.Integer(required=True)
    booking_slots_override = fields.Integer(required=True, allow_none=True)
    slots = fields.Integer(required=True)


class StaffingDay(Schema):
    branch = fields.String(required=True)
    date = fields.Date(required=True)
    intervals = fields.List(fields.Nested(StaffingInterval), required=True)


class StaffingOverrideRequest(StrictSchema):
    start = When("datetime", required=True, metadata={"description": "The interval's start, with its offset."})
    counters = fields.Integer(validate=validate.Range(min=0, max=500), allow_none=True)
    booking_slots = fields.Integer(validate=validate.Range(min=0, max=500), allow_none=True)
    clear = fields.Boolean(load_default=False, metadata={"description": "Drop both overrides of the interval."})


class PlanRecomputed(Schema):
    intervals = fields.Integer(required=True)


class StatsQuery(StrictSchema):
    from_ = When("date", data_key="from",
                 metadata={"description": "First branch-local day; default 6 days before `to`."})
    to = When("date", metadata={"description": "Last branch-local day (inclusive); default today. At most 92 days."})


class Figures(Schema):
    arrivals = fields.Integer(required=True)
    walk_ins = fields.Integer(required=True)
    called = fields.Integer(required=True)
    served = fields.Integer(required=True)
    no_shows = fields.Integer(required=True)
    abandoned = fields.Integer(required=True, metadata={"description": "Left the queue without being called."})
    abandonment = fields.Float(required=True, allow_none=True)
    avg_wait = fields.Float(required=True, allow_none=True, metadata={"description": "Minutes to the first call."})
    p90_wait = fields.Float(required=True, allow_none=True)
    service_level = fields.Float(required=True, allow_none=True,
                                 metadata={"description": "Called within the target wait, of those called or left."})
    avg_visit = fields.Float(required=True, allow_none=True, metadata={"description": "Minutes from call to finish."})


class IntervalFigures(Figures):
    starts_at = fields.String(required=True, metadata={"description": "UTC start of the interval."})
    local = fields.String(required=True, metadata={"description": "Branch local date and time."})
    forecast = fields.Float(required=True, allow_none=True)
    forecast_p10 = fields.Float(required=True, allow_none=True)
    forecast_p90 = fields.Float(required=True, allow_none=True)


class DayFigures(Figures):
    date = fields.String(required=True)


class ServiceFigures(Figures):
    service_id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)


class CounterFigures(Figures):
    counter_id = fields.Integer(required=True)
    name = fields.String(required=True)


class AccuracyFigures(Schema):
    pairs = fields.Integer(required=True, metadata={
        "description": "Walk-ins called after being shown an estimate (bookings and those who gave up are not pairs)."})
    waited = fields.Integer(required=True, metadata={"description": "Pairs whose actual wait was more than 0."})
    within_range = fields.Float(required=True, allow_none=True, metadata={
        "description": "Share of `waited` with estimate_low <= actual <= estimate_high (bounds included)."})
    mean_estimate = fields.Float(required=True, allow_none=True, metadata={"description": "Minutes shown at issue."})
    mean_actual = fields.Float(required=True, allow_none=True, metadata={"description": "Minutes from issue to call."})
    mean_absolute_error = fields.Float(required=True, allow_none=True, metadata={"description": "Minutes."})
    bias = fields.Float(required=True, allow_none=True, metadata={
        "description": "Mean of estimate minus actual, minutes: positive when estimates run long."})


class AccuracyBand(AccuracyFigures):
    band = fields.String(required=True, metadata={"description": "Band of the shown estimate, e.g. `5-15`."})
    low = fields.Float(required=True, metadata={"description": "Estimates from this many minutes..."})
    high = fields.Float(required=True, allow_none=True, metadata={"description": "...to below this; null: no end."})


class AccuracyService(AccuracyFigures):
    service_id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)


class AccuracyDay(AccuracyFigures):
    date = fields.String(required=True, metadata={"description": "Branch-local day of issue."})
    closed = fields.Boolean(required=True, metadata={"description": "The day is over (before today)."})


class AccuracyPoint(Schema):
    estimate = fields.Integer(required=True, metadata={"description": "Whole minutes shown at issue."})
    and_longer = fields.Boolean(required=True, metadata={"description": "The point holds every estimate this long "
                                                                        "or longer (the chart's cap)."})
    pairs = fields.Integer(required=True)
    mean_actual = fields.Float(required=True)
    p10_actual = fields.Float(required=True)
    p90_actual = fields.Float(required=True)


class AccuracyChart(Schema):
    cap_minutes = fields.Integer(required=True)
    points = fields.List(fields.Nested(AccuracyPoint), required=True, metadata={
        "description": "Actual waits per estimated minute, for a chart of estimated against actual."})


class EstimateAccuracySchema(Schema):
    total = fields.Nested(AccuracyFigures, required=True)
    bands = fields.List(fields.Nested(AccuracyBand), required=True, metadata={"description": "Every band, in order."})
    services = fields.List(fields.Nested(AccuracyService), required=True, metadata={
        "description": "Services with pairs."})
    days = fields.List(fields.Nested(AccuracyDay), required=True, metadata={"description": "Every day of the range."})
    chart = fields.Nested(AccuracyChart, required=True)


class StatsSchema(Schema):
    branch = fields.String(required=True)
    from_ = fields.String(data_key="from", required=True)
    to = fields.String(required=True)
    interval_minutes = fields.Integer(required=True)
    target_wait_minutes = fields.Integer(required=True)
    target = fields.Float(required=True)
    total = fields.Nested(Figures, required=True)
    days = fields.List(fields.Nested(DayFigures), required=True)
    intervals = fields.List(fields.Nested(IntervalFigures), required=True)
    services = fields.List(fields.Nested(ServiceFigures), required=True)
    counters = fields.List(fields.Nested(CounterFigures), required=True)
    estimate_accuracy = fields.Nested(EstimateAccuracySchema, required=True, metadata={
        "description": "The wait estimates shown at issue against the waits that followed, for the same days."})
