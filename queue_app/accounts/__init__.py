"""Staff accounts: sign-in with lockout, roles, who is calling (login session, bearer token or kiosk)."""


def init_app(app) -> None:
    from queue_app.accounts import access, api, auth
    from queue_app.accounts.models import Staff
    from queue_app.core import row_cache
    from queue_app.core.extensions import login_manager
    from queue_app.web.api import register_api

    login_manager.user_loader(auth.load_staff)
    # Kept for the token and login-session checks, with the branches they check. Sign-in's failed
    # attempts and lockout change often and are read by sign-in's own query: they do not count.
    row_cache.watch(Staff, volatile=("failed_logins", "locked_until"), keep_with=("branches",))
    login_manager.login_view = "staff.login"
    register_api(app, api.blp)
    app.before_request(access.refuse_anonymous_early)  # an API call without credentials stops here
