from flask import current_app
from flask_smorest import Blueprint

from queue_app.accounts import operations as accounts
from queue_app.accounts.auth import issue_api_token
from queue_app.accounts.schemas import TokenRequest, TokenResponse
from queue_app.core.extensions import db, limiter

blp = Blueprint("api_auth", __name__, description="Staff bearer tokens")


@blp.route("/auth/token", methods=["POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"])
@blp.arguments(TokenRequest())
@blp.response(200, TokenResponse)
def create_token(body):
    """Exchange a staff e-mail and password for a bearer token."""
    staff = accounts.authenticate(db.session, body["email"], body["password"],
                                  hash_cost=current_app.config["PASSWORD_HASH_COST"])
    return {
        "token": issue_api_token(staff),
        "expires_in": current_app.config["API_TOKEN_MAX_AGE"],
        "role": staff.role,
        "staff_id": staff.id,
    }
