"""Branches, services, counters and staff: public catalogue reads, admin and manager edits."""
from flask import current_app
from flask_smorest import Blueprint
from sqlalchemy import select

from queue_app.accounts.access import require_staff
from queue_app.accounts.models import Staff
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.catalogue.schemas import (
    BranchCreate,
    BranchSchema,
    BranchUpdate,
    CounterCreate,
    CounterSchema,
    CounterUpdate,
    ServiceCreate,
    ServiceSchema,
    ServiceUpdate,
    StaffCreate,
    StaffSchema,
    StaffUpdate,
)
from queue_app.core.extensions import db
from queue_app.web.api import abort
from queue_app.web.api.serialize import branch_dict, counter_dict, service_dict, staff_dict

blp = Blueprint("api_catalogue", __name__, description="Branches, services, counters and staff")
BEARER = [{"bearer": []}]


@blp.route("/branches", methods=["GET"])
@blp.response(200, BranchSchema(many=True))
def list_branches():
    """All branches (public)."""
    return [branch_dict(b) for b in db.session.scalars(select(Branch).order_by(Branch.slug))]


@blp.route("/branches", methods=["POST"])
@blp.arguments(BranchCreate())
@blp.response(201, BranchSchema)
@blp.doc(security=BEARER)
def create_branch(body):
    """Create a branch (admin)."""
    require_staff("admin")
    return branch_dict(catalogue.create_branch(db.session, **body))


@blp.route("/branches/<string:slug>", methods=["GET"])
@blp.response(200, BranchSchema)
def get_branch(slug):
    """One branch (public)."""
    return branch_dict(catalogue.get_branch(db.session, slug))


@blp.route("/branches/<string:slug>", methods=["PATCH"])
@blp.arguments(BranchUpdate())
@blp.response(200, BranchSchema)
@blp.doc(security=BEARER)
def update_branch(body, slug):
    """Edit a branch: name, time zone, opening hours, closed dates, phone, booking rules (admin)."""
    require_staff("admin")
    return branch_dict(catalogue.update_branch(db.session, slug, **body))


@blp.route("/branches/<string:slug>/services", methods=["GET"])
@blp.response(200, ServiceSchema(many=True))
def list_services(slug):
    """Active services of a branch (public)."""
    branch = catalogue.get_branch(db.session, slug)
    services = db.session.scalars(
        select(Service).where(Service.branch_id == branch.id, Service.active.is_(True)).order_by(Service.code)
    )
    return [service_dict(s) for s in services]


@blp.route("/branches/<string:slug>/services", methods=["POST"])
@blp.arguments(ServiceCreate())
@blp.response(201, ServiceSchema)
@blp.doc(security=BEARER)
def create_service(body, slug):
    """Add a service to a branch (admin)."""
    require_staff("admin")
    return service_dict(catalogue.create_service(db.session, slug, **body))


@blp.route("/services/<int:service_id>", methods=["PATCH"])
@blp.arguments(ServiceUpdate())
@blp.response(200, ServiceSchema)
@blp.doc(security=BEARER)
def update_service(body, service_id):
    """Edit a service: name, minutes, checklist, enabled (admin)."""
    require_staff("admin")
    return service_dict(catalogue.update_service(db.session, service_id, **body))


@blp.route("/branches/<string:slug>/counters", methods=["GET"])
@blp.response(200, CounterSchema(many=True))
@blp.doc(security=BEARER)
def list_counters(slug):
    """Counters of a branch with their services and state (staff of the branch)."""
    branch = catalogue.get_branch(db.session, slug)
    require_staff(branch_id=branch.id)
    counters = db.session.scalars(select(Counter).where(Counter.branch_id == branch.id).order_by(Counter.name))
    return [counter_dict(c) for c in counters]


@blp.route("/branches/<string:slug>/counters", methods=["POST"])
@blp.arguments(CounterCreate())
@blp.response(201, CounterSchema)
@blp.doc(security=BEARER)
def create_counter(body, slug):
    """Add a counter (admin)."""
    require_staff("admin")
    return counter_dict(catalogue.create_counter(db.session, slug, **body))


@blp.route("/counters/<int:counter_id>", methods=["PATCH"])
@blp.arguments(CounterUpdate())
@blp.response(200, CounterSchema)
@blp.doc(security=BEARER)
def update_counter(body, counter_id):
    """Open, pause or close a counter and set its services (manager of the branch); rename (admin)."""
    counter = db.session.get(Counter, counter_id)
    if counter is None:
        abort(404, "counter_not_found", f"No counter {counter_id}.")
    staff = require_staff("manager", branch_id=counter.branch_id)
    if ({"name", "names"} & body.keys()) and not staff.has_role("admin"):
        abort(403, "role_required", "Renaming a counter needs the admin role.")
    return counter_dict(catalogue.update_counter(db.session, counter_id, **body))


@blp.route("/staff", methods=["GET"])
@blp.response(200, StaffSchema(many=True))
@blp.doc(security=BEARER)
def list_staff():
    """All staff accounts (admin)."""
    require_staff("admin")
    return [staff_dict(s) for s in db.session.scalars(select(Staff).order_by(Staff.email)).unique()]


@blp.route("/staff", methods=["POST"])
@blp.arguments(StaffCreate())
@blp.response(201, StaffSchema)
@blp.doc(security=BEARER)
def create_staff(body):
    """Create a staff account (admin)."""
    require_staff("admin")
    return staff_dict(catalogue.create_staff(db.session, **body, hash_cost=current_app.config["PASSWORD_HASH_COST"]))


@blp.route("/staff/<int:staff_id>", methods=["PATCH"])
@blp.arguments(StaffUpdate())
@blp.response(200, StaffSchema)
@blp.doc(security=BEARER)
def update_staff(body, staff_id):
    """Change a staff account's role, branches, password or active flag (admin)."""
    require_staff("admin")
    return staff_dict(catalogue.update_staff(db.session, staff_id, **body,
                                             hash_cost=current_app.config["PASSWORD_HASH_COST"]))
