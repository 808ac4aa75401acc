"""The active endpoints each commit writes outbox rows for are cached per process (engine) and branch:
a change made in this process counts from the next event, one made by another process within
ENDPOINTS_TTL_S, and a deletion or deactivation made anywhere at once."""
import time

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from queue_app.core.database import configure_engine, engine_options
from queue_app.tickets import queueing
from queue_app.webhooks import operations as webhooks
from queue_app.webhooks.models import WebhookDelivery

URL = "https://hooks.example.com/cache"


def issued_rows(session, endpoint_id) -> int:
    session.commit()  # end the read transaction (SQLite snapshot) begun before the other session's commit
    return session.scalar(select(func.count(WebhookDelivery.id)).where(WebhookDelivery.endpoint_id == endpoint_id,
                                                                       WebhookDelivery.event_type == "ticket.issued"))


def test_an_endpoint_changed_in_this_process_counts_from_the_next_event(app, session):
    with Session(session.get_bind()) as other:  # another session of this process (another request)
        queueing.issue_ticket(other, "demo", "A")  # the branch's endpoints (none) are now cached
        endpoint = webhooks.create_endpoint(session, "demo", URL, ["ticket.issued"]).endpoint.id
        queueing.issue_ticket(other, "demo", "A")
        assert issued_rows(session, endpoint) == 1

        webhooks.update_endpoint(session, endpoint, active=False)
        queueing.issue_ticket(other, "demo", "A")
        assert issued_rows(session, endpoint) == 1

        webhooks.update_endpoint(session, endpoint, active=True, event_types=["ticket.called"])
        queueing.issue_ticket(other, "demo", "A")
        assert issued_rows(session, endpoint) == 1  # no longer subscribed to ticket.issued
        webhooks.update_endpoint(session, endpoint, event_types=["ticket.issued", "ticket.called"])
        queueing.issue_ticket(other, "demo", "A")
        assert issued_rows(session, endpoint) == 2

        webhooks.delete_endpoint(session, endpoint)
        queueing.issue_ticket(other, "demo", "A")  # commits: no row for the endpoint that is gone
        session.commit()
        assert session.scalar(select(func.count(WebhookDelivery.id))) == 0


def test_an_endpoint_changed_by_another_process_counts_within_the_bound(session, monkeypatch):
    url = session.get_bind().url.render_as_string(hide_password=False)
    engine = create_engine(url, **engine_options(url))  # another instance: its own engine, its own cache
    configure_engine(engine)
    try:
        with Session(engine) as elsewhere:
            monkeypatch.setattr(webhooks, "ENDPOINTS_TTL_S", 0.2)
            queueing.issue_ticket(elsewhere, "demo", "A")  # caches "no endpoints" for 0.2 s
            first = webhooks.create_endpoint(session, "demo", URL, ["ticket.issued"]).endpoint.id
            time.sleep(0.3)
            queueing.issue_ticket(elsewhere, "demo", "A")
            assert issued_rows(session, first) == 1, "another process's new endpoint unseen after the bound"

            monkeypatch.setattr(webhooks, "ENDPOINTS_TTL_S", 600)  # from here on, the other cache keeps what it read
            time.sleep(0.3)
            queueing.issue_ticket(elsewhere, "demo", "A")  # reads and keeps [first]
            assert issued_rows(session, first) == 2
            second = webhooks.create_endpoint(session, "demo", URL, ["ticket.issued"]).endpoint.id
            webhooks.update_endpoint(session, first, active=False)
            queueing.issue_ticket(elsewhere, "demo", "A")
            # A deactivation counts at once (the insert checks it); an addition within the bound may be unseen.
            assert issued_rows(session, first) == 2 and issued_rows(session, second) == 0

            webhooks.delete_endpoint(session, first)
            queueing.issue_ticket(elsewhere, "demo", "A")  # its cache still lists `first`: the commit must not fail
            webhooks.forget_endpoints(engine)
            queueing.issue_ticket(elsewhere, "demo", "A")
            assert issued_rows(session, second) == 1
            session.commit()
            assert session.scalar(select(func.count(WebhookDelivery.id))) == 1
    finally:
        engine.dispose()
