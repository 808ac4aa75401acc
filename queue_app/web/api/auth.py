from flask import current_app
from flask_smorest import Blueprint
from sqlalchemy import select

from queue_app.extensions import db, limiter
from queue_app.models import Staff
from queue_app.security import verify_password
from queue_app.web.api import abort
from queue_app.web.api.schemas import TokenRequest, TokenResponse
from queue_app.web.auth import issue_api_token

blp = Blueprint("api_auth", __name__, description="Staff bearer tokens")


@blp.route("/auth/token", methods=["POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"])
@blp.arguments(TokenRequest)
@blp.response(200, TokenResponse)
def create_token(body):
    """Exchange a staff e-mail and password for a bearer token."""
    staff = db.session.scalar(select(Staff).where(Staff.email == body["email"].strip().lower()))
    # Always verify a hash, so timing does not reveal whether the account exists.
    ok = verify_password(staff.password_hash if staff else None, body["password"])
    if not ok or staff is None or not staff.active:
        abort(401, "bad_credentials", "Wrong e-mail or password.")
    return {
        "token": issue_api_token(staff),
        "expires_in": current_app.config["API_TOKEN_MAX_AGE"],
        "role": staff.role,
        "staff_id": staff.id,
    }
