"""Role checks for pages (the API has its own in accounts/access.py)."""
from functools import wraps

from flask import abort
from flask_login import current_user

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Branch
from queue_app.core.errors import NotFound
from queue_app.core.extensions import db


def role_required(role: str):
    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated or not current_user.has_role(role):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def staff_branch(slug: str) -> Branch:
    """The branch, if the signed-in user works there (admins: every branch); else 404 or 403."""
    try:
        branch = catalogue.get_branch(db.session, slug)
    except NotFound:
        abort(404)
    if not current_user.can_access_branch(branch.id):
        abort(403)
    return branch
