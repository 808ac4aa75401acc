"""The public feed of every branch's live waits (GET /api/v1/waits): read-only, no sign-in, no
personal data; cacheable for CACHE_S seconds and open to other sites' pages (CORS), so a bank's
own branch pages and the embeddable widget can read it. Figures: tickets/branch_waits.py."""
from flask import current_app, jsonify, request, url_for
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Branch
from queue_app.core.extensions import db, limiter
from queue_app.tickets import branch_waits
from queue_app.web.api.schemas import NAMES_OUT

blp = Blueprint("api_waits", __name__, description="Live waits of every branch (public, read-only, CORS)")


class ServiceWaitSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    names = fields.Dict(**NAMES_OUT)
    state = fields.String(required=True, metadata={
        "description": "waiting: minutes and the 80 % range low-high are given; no_counter: no counter "
                       "serves the service now (opens_at: when the next one opens, null if none today; "
                       "minutes, when given, count from then); closed: no counter open or due today."})
    minutes = fields.Integer(required=True, allow_none=True, metadata={
        "description": "Minutes until a ticket taken now is called."})
    low = fields.Integer(required=True, allow_none=True)
    high = fields.Integer(required=True, allow_none=True)
    opens_at = fields.String(required=True, allow_none=True, metadata={"description": "Branch local time."})


class LinksSchema(Schema):
    page = fields.String(required=True, metadata={"description": "The branch list."})
    book = fields.String(required=True, allow_none=True, metadata={
        "description": "The branch's booking page; null when nothing can be booked online."})
    join = fields.String(required=True, allow_none=True, metadata={
        "description": "Join the queue from a phone; null when the branch takes tickets only at its kiosks."})
    embed = fields.String(required=True, metadata={"description": "The widget page, for an <iframe>."})


class BranchWaitsSchema(Schema):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    timezone = fields.String(required=True, metadata={"description": "IANA zone; times are local to it."})
    open_now = fields.Boolean(required=True, metadata={"description": "Within today's opening hours."})
    opens_at = fields.String(required=True, allow_none=True, metadata={
        "description": "When closed: the next opening within two weeks, ISO 8601 in branch local time "
                       "with its offset; null when open or none is planned."})
    latitude = fields.Float(required=True, allow_none=True, metadata={"description": "WGS 84 degrees."})
    longitude = fields.Float(required=True, allow_none=True, metadata={"description": "WGS 84 degrees."})
    remote_tickets = fields.Boolean(required=True, metadata={
        "description": "Whether phones may join the queue remotely."})
    services = fields.List(fields.Nested(ServiceWaitSchema), required=True, metadata={
        "description": "Active services in code order, each with the wait for a ticket taken now."})
    updated_at = fields.String(required=True, metadata={"description": "When these figures were made."})
    links = fields.Nested(LinksSchema, required=True)


class WaitsSchema(Schema):
    branches = fields.List(fields.Nested(BranchWaitsSchema), required=True)


def _absolute(endpoint: str, **values) -> str:
    return current_app.config["QUEUE_APP_BASE_URL"] + url_for(endpoint, **values)


def _with_links(figures: dict) -> dict:
    slug = figures["slug"]
    return {**figures, "links": {
        "page": _absolute("public.index"),
        "book": _absolute("booking_pages.book_page", slug=slug) if figures["bookable"] else None,
        # The join page (/j/<slug>) is its own feature; the link is its agreed address.
        "join": current_app.config["QUEUE_APP_BASE_URL"] + f"/j/{slug}" if figures["remote_tickets"] else None,
        "embed": _absolute("public.embed_waits", slug=slug),
    }}


def _answer(schema: Schema, body: dict):
    """JSON with the cache and conditional-request headers; a matching If-None-Match gets a 304."""
    response = jsonify(schema.dump(body))
    response.headers["Cache-Control"] = f"public, max-age={int(branch_waits.CACHE_S)}"
    response.add_etag()
    return response.make_conditional(request)


@blp.after_request
def _cors(response):
    # Public figures only, and no cookie is read: any site's page may fetch them (GET; the
    # preflight that a page's own headers may trigger is answered by Flask's automatic OPTIONS).
    response.headers["Access-Control-Allow-Origin"] = "*"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Accept, Accept-Language, If-None-Match, Content-Type"
        response.headers["Access-Control-Max-Age"] = "86400"
    else:
        response.headers["Access-Control-Expose-Headers"] = "ETag"
    return response


def _rate_limit() -> str:
    return current_app.config["WAITS_RATE_LIMIT"]


@blp.route("/waits", methods=["GET"])
@limiter.limit(_rate_limit)
@blp.response(200, WaitsSchema)
def all_waits():
    """Every branch's live waits: per active service the wait for a ticket taken now, open now or
    when it opens, coordinates (public; cached 15 s; CORS)."""
    branches = db.session.scalars(select(Branch).order_by(Branch.slug)).all()
    found = branch_waits.waits(db.session, branches)
    return _answer(WaitsSchema(), {"branches": [_with_links(f) for f in found]})


@blp.route("/waits/<string:slug>", methods=["GET"])
@limiter.limit(_rate_limit)
@blp.response(200, BranchWaitsSchema)
def one_branch_waits(slug):
    """One branch's live waits, as in GET /waits (public; cached 15 s; CORS)."""
    branch = catalogue.get_branch(db.session, slug)
    return _answer(BranchWaitsSchema(), _with_links(branch_waits.waits(db.session, [branch])[0]))
