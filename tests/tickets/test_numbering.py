from datetime import timedelta

from helpers import utc

from queue_app.catalogue import operations as catalogue
from queue_app.tickets import queueing


def _branch_with_service(session, slug, zone):
    catalogue.create_branch(session, slug, slug.title(), zone)
    catalogue.create_service(session, slug, "A", "Accounts")


def test_labels_count_up_per_prefix_and_restart_the_next_local_day(session):
    morning = utc(2026, 3, 2, 1, 0)  # 09:00 in Taipei
    labels = [queueing.issue_ticket(session, "demo", "A", now=morning + timedelta(minutes=i)).ticket.label
              for i in range(3)]
    other = queueing.issue_ticket(session, "demo", "B", now=morning).ticket.label
    next_day = queueing.issue_ticket(session, "demo", "A", now=morning + timedelta(days=1)).ticket.label
    assert labels == ["A001", "A002", "A003"]
    assert other == "B001"
    assert next_day == "A001"


def test_each_branch_rolls_over_at_its_own_local_midnight(session):
    _branch_with_service(session, "taipei", "Asia/Taipei")
    _branch_with_service(session, "newyork", "America/New_York")
    # 15:59 UTC is 23:59 in Taipei; 16:00 UTC is midnight there, but still 11:00/12:00 in New York.
    before_taipei_midnight = utc(2026, 6, 10, 15, 59)
    after_taipei_midnight = utc(2026, 6, 10, 16, 0)
    assert queueing.issue_ticket(session, "taipei", "A", now=before_taipei_midnight).ticket.label == "A001"
    assert queueing.issue_ticket(session, "newyork", "A", now=before_taipei_midnight).ticket.label == "A001"
    taipei = queueing.issue_ticket(session, "taipei", "A", now=after_taipei_midnight).ticket
    newyork = queueing.issue_ticket(session, "newyork", "A", now=after_taipei_midnight).ticket
    assert (taipei.label, str(taipei.local_date)) == ("A001", "2026-06-11")
    assert (newyork.label, str(newyork.local_date)) == ("A002", "2026-06-10")
    # New York's midnight (EDT, UTC-4) is 04:00 UTC the next day.
    assert queueing.issue_ticket(session, "newyork", "A", now=utc(2026, 6, 11, 3, 59)).ticket.label == "A003"
    assert queueing.issue_ticket(session, "newyork", "A", now=utc(2026, 6, 11, 4, 0)).ticket.label == "A001"


def test_new_york_day_boundary_moves_with_daylight_saving(session):
    _branch_with_service(session, "newyork", "America/New_York")
    # 2026-11-01 is the fall-back day: midnight EST on 11-02 is 05:00 UTC, not 04:00.
    assert queueing.issue_ticket(session, "newyork", "A", now=utc(2026, 11, 2, 4, 30)).ticket.local_date.isoformat() == "2026-11-01"
    assert queueing.issue_ticket(session, "newyork", "A", now=utc(2026, 11, 2, 5, 0)).ticket.local_date.isoformat() == "2026-11-02"
