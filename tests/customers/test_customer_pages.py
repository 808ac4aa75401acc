"""Customer pages: who may open them, what the manager sees, feedback from the phone."""
from sqlalchemy import select

from queue_app.core.models import utcnow
from queue_app.customers.models import Customer, Feedback
from queue_app.demo.customers import seed_customer_history

PASSWORD = "demo-password"


def sign_in(client, email):
    page = client.get("/login").get_data(as_text=True)
    marker = 'name="csrf_token" type="hidden" value="' if 'type="hidden" value="' in page else 'name="csrf_token" value="'
    csrf = page.split(marker)[1].split('"')[0]
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf})
    assert response.status_code == 302, email


def test_page_permissions_by_role(app, api, session, client):
    seed_customer_history(session, "demo", now=utcnow())
    customer_id = session.scalar(select(Customer.id).where(Customer.name == "Liu Jun"))
    pages = ["/manage/branches/demo/customers", f"/customers/{customer_id}", f"/customers/{customer_id}/export.json",
             "/manage/audit"]
    expected = {
        None: [302, 302, 302, 302],
        "staff1@demo.test": [403, 403, 403, 403],  # Liu Jun is not one of today's customers
        "manager@demo.test": [200, 200, 200, 403],
        "admin@demo.test": [200, 200, 200, 200],
    }
    for email, statuses in expected.items():
        visitor = app.test_client()
        if email:
            sign_in(visitor, email)
        assert [visitor.get(page).status_code for page in pages] == statuses, email


def test_manager_dashboard_shows_segments_churn_and_feedback(app, session):
    seed_customer_history(session, "demo", now=utcnow())
    visitor = app.test_client()
    sign_in(visitor, "manager@demo.test")
    page = visitor.get("/manage/branches/demo/customers").get_data(as_text=True)
    assert "Core" in page and "Churn list" in page and "Liu Jun" in page and "Average rating" in page
    answers = session.scalar(select(Feedback.id).where(Feedback.answered_at.is_not(None)).limit(1))
    assert answers is not None


def test_feedback_from_the_tracking_page_once(app, api, client, session):
    ticket = api.issue("A")
    counter_id = api.counter_id("Counter 1")
    api.call("POST", f"/counters/{counter_id}/call-next", "staff1@demo.test")
    api.call("POST", f"/tickets/{ticket['id']}/finish", "staff1@demo.test")
    tracking = client.get(f"/t/{ticket['token']}").get_data(as_text=True)
    assert f"/t/{ticket['token']}/feedback" in tracking
    form = client.get(f"/t/{ticket['token']}/feedback").get_data(as_text=True)
    csrf = form.split('name="csrf_token" value="')[1].split('"')[0]
    sent = client.post(f"/t/{ticket['token']}/feedback", data={"rating": "4", "nps": "8", "comment": "", "csrf_token": csrf})
    assert "Thank you for your feedback" in sent.get_data(as_text=True)
    again = client.get(f"/t/{ticket['token']}/feedback").get_data(as_text=True)
    assert 'name="rating"' not in again
    assert session.scalar(select(Feedback.rating).where(Feedback.ticket_id == ticket["id"])) == 4
