"""Manager and admin pages: thin views over queue_app/catalogue/operations.py.

Every view parses a form, checks role and branch, calls one domain function, then flashes and
redirects. A page rendered in answer to a POST is therefore always a refused form: status 400.
"""
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from queue_app.accounts.models import Staff
from queue_app.accounts.roles import role_required, staff_branch
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.forms import (
    NAME_FIELD_KEYS,
    BranchForm,
    CounterForm,
    NewBranchForm,
    NewCounterForm,
    NewServiceForm,
    ServiceEditForm,
    StaffEditForm,
    StaffForm,
)
from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.core.errors import DomainError
from queue_app.core.extensions import db
from queue_app.web.form_fields import COUNTER_STATE_LABELS, ROLE_LABELS, choices

bp = Blueprint("manage", __name__, url_prefix="/manage")


def _render(template: str, **context):
    return render_template(template, **context), 400 if request.method == "POST" else 200


def _show_error(form, error: DomainError, default_field: str) -> None:
    """Put a domain error next to the fields it names, or next to `default_field` (e.g. a duplicate code)."""
    placed = False
    for name, messages in error.fields.items():
        if name in form:
            form[name].errors = [*form[name].errors, *messages]
            placed = True
    if not placed:
        form[default_field].errors = [*form[default_field].errors, error.message]




def _service_choices(branch: Branch):
    return choices({s.code: f"{s.code} {s.name}" for s in branch.services})  # branch.services is in code order


def _branch_choices():
    return choices({b.slug: b.name for b in db.session.scalars(select(Branch).order_by(Branch.name))})


@bp.get("/")
@login_required
@role_required("manager")
def index():
    if current_user.has_role("admin"):
        branches = db.session.scalars(select(Branch).order_by(Branch.name)).all()
    else:
        branches = sorted(current_user.branches, key=lambda b: b.name)
    return render_template("catalogue/index.html", branches=branches)


# Counters: managers of the branch and admins.

def _counters_page(branch: Branch, row_forms: dict | None = None, add_form: NewCounterForm | None = None):
    """The counters table; `row_forms` and `add_form` carry a refused form back with its errors."""
    row_forms = dict(row_forms or {})
    for counter in branch.counters:
        if counter.id not in row_forms:
            form = CounterForm(formdata=None, state=counter.state, services=[s.code for s in counter.services])
            form.fill_names(counter.names)
            form.services.choices = _service_choices(branch)
            row_forms[counter.id] = form
    if add_form is None and current_user.has_role("admin"):
        add_form = NewCounterForm(formdata=None)
        add_form.services.choices = _service_choices(branch)
    return _render("catalogue/counters.html", branch=branch, row_forms=row_forms, add_form=add_form,
                   name_fields=NAME_FIELD_KEYS, edits_names=current_user.has_role("admin"),
                   state_labels=COUNTER_STATE_LABELS)


@bp.get("/branches/<slug>/counters")
@login_required
@role_required("manager")
def counters(slug):
    return _counters_page(staff_branch(slug))


@bp.post("/counters/<int:counter_id>")
@login_required
@role_required("manager")
def update_counter(counter_id):
    counter = db.session.get(Counter, counter_id)
    if counter is None:
        abort(404)
    branch = staff_branch(counter.branch.slug)
    name = counter.name
    form = CounterForm()
    form.services.choices = _service_choices(branch)
    if form.validate_on_submit():
        try:
            fields = {"state": form.state.data, "services": form.services.data}
            if current_user.has_role("admin"):
                fields["names"] = form.names_data()
            catalogue.update_counter(db.session, counter_id, **fields)
        except DomainError as error:
            _show_error(form, error, "state")
        else:
            flash(_("%(counter)s saved.", counter=name))
            return redirect(url_for(".counters", slug=branch.slug))
    return _counters_page(branch, row_forms={counter_id: form})


@bp.post("/branches/<slug>/counters")
@login_required
@role_required("admin")
def create_counter(slug):
    branch = staff_branch(slug)
    form = NewCounterForm()
    form.services.choices = _service_choices(branch)
    if form.validate_on_submit():
        try:
            catalogue.create_counter(db.session, branch.slug, form.name.data, form.services.data,
                                     names=form.names_data())
        except DomainError as error:
            _show_error(form, error, "name")
        else:
            flash(_("Counter %(name)s added (closed until someone opens it).", name=form.name.data))
            return redirect(url_for(".counters", slug=slug))
    return _counters_page(branch, add_form=form)


# Branches, services and staff accounts: admins only.

@bp.route("/branches/new", methods=["GET", "POST"])
@login_required
@role_required("admin")
def new_branch():
    form = NewBranchForm()
    if form.validate_on_submit():
        try:
            catalogue.create_branch(db.session, slug=form.slug.data, **form.domain_fields())
        except DomainError as error:
            _show_error(form, error, "slug")
        else:
            flash(_("Branch %(name)s created.", name=form.name.data))
            return redirect(url_for(".index"))
    return _render("catalogue/branch_form.html", form=form, branch=None)


@bp.route("/branches/<slug>/edit", methods=["GET", "POST"])
@login_required
@role_required("admin")
def edit_branch(slug):
    branch = staff_branch(slug)
    form = BranchForm(obj=branch)
    if form.validate_on_submit():
        try:
            catalogue.update_branch(db.session, slug, **form.domain_fields())
        except DomainError as error:
            _show_error(form, error, "name")
        else:
            flash(_("Branch %(name)s saved.", name=form.name.data))
            return redirect(url_for(".index"))
    return _render("catalogue/branch_form.html", form=form, branch=branch)


@bp.route("/branches/<slug>/services", methods=["GET", "POST"])
@login_required
@role_required("admin")
def services(slug):
    branch = staff_branch(slug)
    form = NewServiceForm()
    if form.validate_on_submit():
        try:
            catalogue.create_service(db.session, slug, code=form.code.data, **form.domain_fields())
        except DomainError as error:
            _show_error(form, error, "code")
        else:
            flash(_("Service %(code)s added.", code=form.code.data.upper()))
            return redirect(url_for(".services", slug=slug))
    return _render("catalogue/services.html", branch=branch, form=form, name_fields=NAME_FIELD_KEYS)


@bp.route("/services/<int:service_id>/edit", methods=["GET", "POST"])
@login_required
@role_required("admin")
def edit_service(service_id):
    service = db.session.get(Service, service_id)
    if service is None:
        abort(404)
    slug, code = service.branch.slug, service.code
    form = ServiceEditForm(obj=service)
    if request.method == "GET":
        form.fill_names(service.names)
    if form.validate_on_submit():
        try:
            catalogue.update_service(db.session, service_id, **form.domain_fields())
        except DomainError as error:
            _show_error(form, error, "name")
        else:
            flash(_("Service %(code)s saved.", code=code))
            return redirect(url_for(".services", slug=slug))
    return _render("catalogue/service_form.html", form=form, service=service, name_fields=NAME_FIELD_KEYS)


@bp.route("/staff", methods=["GET", "POST"])
@login_required
@role_required("admin")
def staff():
    form = StaffForm()
    form.branches.choices = _branch_choices()
    if form.validate_on_submit():
        try:
            catalogue.create_staff(db.session, form.email.data, form.password.data, form.role.data,
                                   form.branches.data, name=form.name.data,
                                   hash_cost=current_app.config["PASSWORD_HASH_COST"])
        except DomainError as error:
            _show_error(form, error, "email")
        else:
            flash(_("Staff account %(email)s created.", email=form.email.data))
            return redirect(url_for(".staff"))
    accounts = db.session.scalars(select(Staff).order_by(Staff.email)).unique().all()
    return _render("catalogue/staff.html", form=form, accounts=accounts, role_labels=ROLE_LABELS)


@bp.route("/staff/<int:staff_id>/edit", methods=["GET", "POST"])
@login_required
@role_required("admin")
def edit_staff(staff_id):
    account = db.session.get(Staff, staff_id)
    if account is None:
        abort(404)
    # Not obj=account: the form wants branch slugs, the model holds Branch objects.
    form = StaffEditForm(name=account.name, role=account.role, active=account.active,
                         branches=[b.slug for b in account.branches])
    form.branches.choices = _branch_choices()
    if form.validate_on_submit():
        email = account.email
        try:
            catalogue.update_staff(db.session, staff_id, **form.domain_fields(),
                                   hash_cost=current_app.config["PASSWORD_HASH_COST"])
        except DomainError as error:
            _show_error(form, error, "role")
        else:
            flash(_("Staff account %(email)s saved.", email=email))
            return redirect(url_for(".staff"))
    return _render("catalogue/staff_form.html", form=form, account=account)
