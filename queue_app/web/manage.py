"""Manager and admin pages."""
from flask import Blueprint, render_template
from flask_login import login_required

from queue_app.web.roles import role_required

bp = Blueprint("manage", __name__, url_prefix="/manage")


@bp.get("/")
@login_required
@role_required("manager")
def index():
    return render_template("manage/index.html")
