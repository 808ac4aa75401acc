"""Manager page for a branch's kiosk devices: pairing codes, devices with their printer state.

A manager creates a one-time pairing code for a device name; the code is shown once (it is kept
only as a hash) and `queue-kiosk pair CODE --server URL` on the lobby machine turns it into a
device. Devices report their printer state in heartbeats, shown here; a lost device is retired.
"""
from datetime import datetime

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired

from queue_app.accounts.roles import role_required, staff_branch
from queue_app.catalogue.models import Branch
from queue_app.core.errors import DomainError
from queue_app.core.extensions import db
from queue_app.kiosks import operations as kiosks
from queue_app.kiosks.models import KioskDevice
from queue_app.web.input_rules import StrictText

bp = Blueprint("manage_kiosks", __name__, url_prefix="/manage")

_NEW_CODE = "kiosk_pairing_code"  # the code just created, shown once on the next page view
PRINTER_LABELS = {
    "ok": _l("Printer ready"), "paper_low": _l("Paper running low"), "paper_out": _l("Paper out"),
    "offline": _l("Printer offline"), "error": _l("Printer error"), "none": _l("No printer (browser printing)"),
}
STATUS_LABELS = {"online": _l("Online"), "offline": _l("Not responding"), "never": _l("Not heard from yet")}
# Which part of the device was heard from last: the kiosk page in its browser, or its print bridge.
SEEN_BY_LABELS = {"page": _l("by the kiosk page"), "bridge": _l("by the print bridge")}


class PairingCodeForm(FlaskForm):
    name = StringField(_l("Device name"), validators=[DataRequired(), StrictText(max=100)],
                       description=_l("Where the kiosk stands, e.g. “Lobby left”."),
                       filters=[lambda v: v.strip() if isinstance(v, str) else v])
    submit = SubmitField(_l("Create pairing code"))


class RetireForm(FlaskForm):
    submit = SubmitField(_l("Retire device"))




def _local(moment: datetime | None, branch: Branch) -> str:
    return moment.astimezone(branch.zone).strftime("%Y-%m-%d %H:%M") if moment else ""


def _page(branch: Branch, form: PairingCodeForm | None = None):
    devices = kiosks.branch_devices(db.session, branch.id)
    new_code = session.pop(_NEW_CODE, None) if request.method == "GET" else None
    if new_code and new_code.get("branch") != branch.slug:
        new_code = None
    rows = [{
        "device": device,
        "status": kiosks.device_status(device) if device.active else None,
        "last_seen": _local(kiosks.last_contact(device)[0], branch),
        "seen_by": kiosks.last_contact(device)[1],
        "printer": (device.printer_state or {}).get("state"),
        "printer_detail": (device.printer_state or {}).get("detail", ""),
    } for device in devices]
    return render_template(
        "kiosks/manage.html", branch=branch, rows=rows, form=form or PairingCodeForm(formdata=None),
        retire_form=RetireForm(formdata=None), new_code=new_code, printer_labels=PRINTER_LABELS,
        status_labels=STATUS_LABELS, seen_by_labels=SEEN_BY_LABELS, open_codes=kiosks.open_pairing_codes(db.session, branch.id),
        local=lambda moment: _local(moment, branch), server_url=current_app.config["QUEUE_APP_BASE_URL"],
        minutes=kiosks.PAIRING_MINUTES,
    ), 400 if request.method == "POST" else 200


@bp.get("/branches/<slug>/kiosks")
@login_required
@role_required("manager")
def devices(slug):
    return _page(staff_branch(slug))


@bp.post("/branches/<slug>/kiosks")
@login_required
@role_required("manager")
def create_pairing_code(slug):
    branch = staff_branch(slug)
    form = PairingCodeForm()
    if form.validate_on_submit():
        try:
            created = kiosks.create_pairing_code(db.session, branch.slug, form.name.data, created_by_id=current_user.id)
        except DomainError as error:
            form.name.errors = [*form.name.errors, error.message]
        else:
            # Shown once, on the page this redirects to; only its hash is stored.
            session[_NEW_CODE] = {"branch": branch.slug, "code": created.code, "name": created.record.device_name,
                                  "expires": _local(created.record.expires_at, branch)}
            return redirect(url_for(".devices", slug=slug))
    return _page(branch, form)


@bp.post("/kiosks/<int:device_id>/retire")
@login_required
@role_required("manager")
def retire(device_id):
    device = db.session.get(KioskDevice, device_id)
    if device is None:
        abort(404)
    branch = staff_branch(device.branch.slug)
    if not RetireForm().validate_on_submit():
        abort(400)
    name = device.name
    kiosks.deactivate_device(db.session, device_id)
    flash(_("%(name)s retired: its token no longer works.", name=name))
    return redirect(url_for(".devices", slug=branch.slug))
