"""Manager pages for a branch's outbound webhooks: endpoints (secret shown once), delivery log, test, retry.

Views are thin: forms parse and check CSRF, queue_app/webhooks/operations.py does the work.
"""
from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField, SubmitField
from wtforms.validators import DataRequired

from queue_app.accounts.roles import role_required, staff_branch
from queue_app.catalogue.models import Branch
from queue_app.core.errors import DomainError
from queue_app.core.extensions import db
from queue_app.core.models import utcnow
from queue_app.web.form_fields import MultiCheckboxField, choices, strip_spaces
from queue_app.web.input_rules import StrictText
from queue_app.webhooks import operations as webhooks
from queue_app.webhooks.models import WebhookDelivery, WebhookEndpoint

bp = Blueprint("manage_webhooks", __name__, url_prefix="/manage")

_NEW_SECRET = "webhook_new_secret"  # shown once, on the page the form redirects to
EVENT_LABELS = {
    "ticket.issued": _l("Ticket issued"), "ticket.called": _l("Ticket called"),
    "ticket.recalled": _l("Ticket called again"), "ticket.started": _l("Service started"),
    "ticket.finished": _l("Service finished"), "ticket.no_show": _l("Ticket no-show"),
    "ticket.transferred": _l("Ticket transferred"), "ticket.left": _l("Customer left the queue"),
    "ticket.postponed": _l("Customer asked for more time"), "ticket.expired": _l("Ticket closed at day end"),
    "booking.created": _l("Booking made"), "booking.rescheduled": _l("Booking moved"),
    "booking.cancelled": _l("Booking cancelled"), "booking.checked_in": _l("Booking checked in"),
    "booking.no_show": _l("Booking missed"),
}
STATUS_LABELS = {"pending": _l("Waiting to be sent"), "sending": _l("Sending"), "delivered": _l("Delivered"),
                 "failed": _l("Failed"), "cancelled": _l("Dropped")}


class EndpointForm(FlaskForm):
    url = StringField(_l("Receiver URL"), validators=[DataRequired(), StrictText(max=500)], filters=[strip_spaces],
                      description=_l("An https:// address of your system that accepts POST requests."))
    description = StringField(_l("Description"), validators=[StrictText(max=200)], filters=[strip_spaces])
    event_types = MultiCheckboxField(_l("Events to send"), choices=choices(EVENT_LABELS),
                                     validators=[DataRequired()])
    active = BooleanField(_l("Send events"), default=True)
    submit = SubmitField(_l("Save webhook"))


class ActionForm(FlaskForm):
    submit = SubmitField()




def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        abort(404)
    staff_branch(endpoint.branch.slug)
    return endpoint


def _local(moment: datetime | None, branch: Branch) -> str:
    return moment.astimezone(branch.zone).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _list_page(branch: Branch, form: EndpointForm | None = None):
    secret = session.pop(_NEW_SECRET, None) if request.method == "GET" else None
    endpoints = webhooks.branch_endpoints(db.session, branch.id)
    return render_template(
        "webhooks/endpoints.html", branch=branch, endpoints=endpoints, event_labels=EVENT_LABELS,
        form=form or EndpointForm(formdata=None), new_secret=secret if secret and secret.get("branch") == branch.slug
        else None, local=lambda moment: _local(moment, branch),
    ), 400 if request.method == "POST" else 200


@bp.get("/branches/<slug>/webhooks")
@login_required
@role_required("manager")
def endpoints(slug):
    return _list_page(staff_branch(slug))


@bp.post("/branches/<slug>/webhooks")
@login_required
@role_required("manager")
def create_endpoint(slug):
    branch = staff_branch(slug)
    form = EndpointForm()
    if form.validate_on_submit():
        try:
            created = webhooks.create_endpoint(db.session, branch.slug, form.url.data, form.event_types.data,
                                               description=form.description.data or "", active=form.active.data,
                                               created_by_id=current_user.id)
        except DomainError as error:
            form.url.errors = [*form.url.errors, error.message]
        else:
            session[_NEW_SECRET] = {"branch": branch.slug, "id": created.endpoint.id, "secret": created.secret}
            return redirect(url_for(".endpoint", endpoint_id=created.endpoint.id))
    return _list_page(branch, form)


def _detail_page(endpoint: WebhookEndpoint, form: EndpointForm | None = None):
    branch = endpoint.branch
    secret = session.pop(_NEW_SECRET, None) if request.method == "GET" else None
    if secret and secret.get("id") != endpoint.id:
        secret = None
    shown = request.args.get("status") if request.args.get("status") in STATUS_LABELS else None
    rows = webhooks.deliveries(db.session, endpoint.id, limit=100, status=shown)
    if form is None:
        form = EndpointForm(formdata=None, obj=endpoint)
    until = endpoint.previous_secret_until
    overlap_until = _local(until, branch) if until and until > utcnow() else None
    return render_template(
        "webhooks/endpoint.html", branch=branch, endpoint=endpoint, form=form, rows=rows, overlap_until=overlap_until,
        attempts=webhooks.attempts_of(db.session, [r.id for r in rows]), status_labels=STATUS_LABELS,
        event_labels=EVENT_LABELS, shown=shown, action_form=ActionForm(formdata=None), new_secret=secret,
        local=lambda moment: _local(moment, branch),
    ), 400 if request.method == "POST" else 200


@bp.get("/webhooks/<int:endpoint_id>")
@login_required
@role_required("manager")
def endpoint(endpoint_id):
    return _detail_page(_endpoint(endpoint_id))


@bp.post("/webhooks/<int:endpoint_id>")
@login_required
@role_required("manager")
def update_endpoint(endpoint_id):
    endpoint = _endpoint(endpoint_id)
    form = EndpointForm()
    if form.validate_on_submit():
        try:
            webhooks.update_endpoint(db.session, endpoint.id, url=form.url.data, description=form.description.data or "",
                                     event_types=form.event_types.data, active=form.active.data)
        except DomainError as error:
            form.url.errors = [*form.url.errors, error.message]
        else:
            flash(_("Webhook saved."))
            return redirect(url_for(".endpoint", endpoint_id=endpoint.id))
    return _detail_page(endpoint, form)


def _action(endpoint_id: int) -> WebhookEndpoint:
    endpoint = _endpoint(endpoint_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    return endpoint


@bp.post("/webhooks/<int:endpoint_id>/test")
@login_required
@role_required("manager")
def send_test(endpoint_id):
    endpoint = _action(endpoint_id)
    webhooks.send_test(db.session, endpoint.id)
    flash(_("A test event is queued; it is sent within seconds and shows in the log below."))
    return redirect(url_for(".endpoint", endpoint_id=endpoint.id))


@bp.post("/webhooks/<int:endpoint_id>/rotate-secret")
@login_required
@role_required("manager")
def rotate_secret(endpoint_id):
    endpoint = _action(endpoint_id)
    secret = webhooks.rotate_secret(db.session, endpoint.id)
    session[_NEW_SECRET] = {"branch": endpoint.branch.slug, "id": endpoint.id, "secret": secret}
    return redirect(url_for(".endpoint", endpoint_id=endpoint.id))


@bp.post("/webhooks/<int:endpoint_id>/delete")
@login_required
@role_required("manager")
def delete_endpoint(endpoint_id):
    endpoint = _action(endpoint_id)
    slug = endpoint.branch.slug
    webhooks.delete_endpoint(db.session, endpoint.id)
    flash(_("Webhook removed."))
    return redirect(url_for(".endpoints", slug=slug))


@bp.post("/webhook-deliveries/<int:delivery_id>/retry")
@login_required
@role_required("manager")
def retry_delivery(delivery_id):
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        abort(404)
    endpoint = _action(delivery.endpoint_id)
    webhooks.retry_delivery(db.session, delivery.id)
    flash(_("The delivery is queued again."))
    return redirect(url_for(".endpoint", endpoint_id=endpoint.id))
