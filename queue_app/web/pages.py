"""Registers the page blueprints and the staff login manager."""
from queue_app.accounts.models import Staff
from queue_app.core.extensions import db, login_manager


@login_manager.user_loader
def load_staff(user_id: str):
    staff_id, _, version = user_id.partition(":")
    if not staff_id.isdigit():
        return None
    staff = db.session.get(Staff, int(staff_id))
    if staff is None or not staff.active or str(staff.token_version) != version:
        return None  # password changed or account disabled: the session ends
    return staff


def init_app(app) -> None:
    from queue_app.booking import pages as booking_pages
    from queue_app.catalogue import pages as manage
    from queue_app.kiosks import manage_pages as manage_kiosks
    from queue_app.kiosks import pages as kiosk
    from queue_app.tickets import counter_pages as staff
    from queue_app.tickets import display_pages as display
    from queue_app.tickets import public_pages as public

    login_manager.login_view = "staff.login"
    app.register_blueprint(public.bp)
    app.register_blueprint(staff.bp)
    app.register_blueprint(manage.bp)
    app.register_blueprint(manage_kiosks.bp)
    from queue_app.webhooks import pages as manage_webhooks

    app.register_blueprint(manage_webhooks.bp)
    app.register_blueprint(kiosk.bp)
    app.register_blueprint(display.bp)
    app.register_blueprint(booking_pages.bp)
    from queue_app.customers import pages as customer_pages

    app.register_blueprint(customer_pages.bp)
    from queue_app.planning import dashboard

    app.register_blueprint(dashboard.bp)
