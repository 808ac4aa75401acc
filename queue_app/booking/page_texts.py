"""What booking pages and the counter's booking dialog read: refusal messages, status names, the day
and time picker's strings, field messages."""
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from queue_app.booking.rules import rules_for
from queue_app.catalogue.models import Branch
from queue_app.notifications import notify

STATUS_LABELS = {
    "booked": _l("Booked"), "checked_in": _l("Checked in"), "done": _l("Completed"),
    "cancelled": _l("Cancelled"), "no_show": _l("Missed"),
}


def status_labels() -> dict:
    return {status: str(label) for status, label in STATUS_LABELS.items()}


def booking_messages(branch: Branch | None = None) -> dict:
    """What a customer (or staff booking for one) reads for each refusal code, in the page's language."""
    rules = rules_for(branch) if branch is not None else None
    return {
        "slot_full": _("That time was just taken, pick another."),
        "not_a_slot": _("That time cannot be booked. Please pick one of the times shown."),
        "too_soon": _("That time is too soon to book online (at least %(n)s minutes ahead). Please pick a later time.",
                      n=rules.min_notice_minutes if rules else 60),
        "outside_window": _("That day cannot be booked online. Please pick another day."),
        "limit_reached": _("You already have %(n)s upcoming bookings, the most allowed. Cancel one first, or call the branch.",
                           n=rules.max_active_bookings if rules else 3),
        "strikes_exceeded": _("Online booking is paused after missed visits. Please call the branch to book."),
        "booking_disabled": _("This service cannot be booked online. Please call the branch."),
        "service_not_found": _("This service is not available any more. Please pick another."),
        "cutoff_passed": _("It is too late to reschedule this booking online; you can still cancel it until the "
                           "visit starts.") + call_branch(branch),
        "visit_started": _("Your visit time has begun; it can no longer be changed or cancelled online.")
        + call_branch(branch),
        "not_booked": _("This booking can no longer be changed."),
        "appointment_not_found": _("We could not find this booking."),
        "invalid_field": _("Please check the fields marked below."),
        "validation_failed": _("Please check the fields marked below."),
        "naive_time": _("That time cannot be booked. Please pick one of the times shown."),
        "invalid_time": _("That time cannot be booked. Please pick one of the times shown."),
        "rejected": _("Sorry, this booking could not be accepted. Please call the branch."),
        "idempotency_key_reused": _("This form was already sent with other details, and that booking may have "
                                    "been made. Check your confirmation message, or reload the page to book again."),
        "csrf_failed": _("This page was open for a long time. Please try again."),
        "too_many_requests": _("Too many attempts in a short time. Please wait a minute and try again."),
        "failed": _("Sorry, that did not work. Please try again."),
        "offline": _("No connection. Check your network and try again."),
    }


def call_branch(branch: Branch | None) -> str:
    """' To change it, call the branch at +886...' (notify.CHANGE_TEXTS), or nothing without a branch phone."""
    if branch is None or not branch.phone:
        return ""
    return " " + _(notify.CHANGE_TEXTS["call"], phone=branch.phone)


def picker_text() -> dict:
    """The strings of the day and time picker (static/js/slots.js)."""
    return {
        "loading": _("Looking for free times…"),
        "failed": _("The free times could not be loaded."),
        "offline": _("No connection. Check your network and try again."),
        "busy": _("Too many requests in a short time. Please wait a minute and try again."),
        "none": _("No free times in the next %(days)s days. Please call the branch.", days="{days}"),
        "free": _("%(n)s times free", n="{n}"),
        "free_one": _("1 time free"),
        "free_short": _("%(n)s free", n="{n}"),
        "full": _("Full"),
        "full_long": _("fully booked"),
        "day_full": _("fully booked"),
        "current": _("Your time"),
        "inside_cutoff": _("no online changes"),
        "inside_cutoff_long": _("can be cancelled until it starts, but not changed online"),
        "times_on": _("Times on %(date)s", date="{date}"),
        "morning": _("Morning"),
        "afternoon": _("Afternoon"),
        "evening": _("Evening"),
    }


def field_messages() -> dict:
    return {
        "name": _("Please enter your name."),
        "contact": _("Please give a mobile number or an e-mail address for your confirmation."),
        "phone": _("This does not look like a phone number."),
        "email": _("This does not look like an e-mail address."),
        "too_long": _("This is too long."),
        "unstorable": _("This contains characters that cannot be saved."),
    }
