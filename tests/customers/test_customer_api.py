"""Customer API: the counter's view, search, feedback once, manager lists, export and erasure, audit."""
from sqlalchemy import select

from queue_app.audit.models import AuditEntry
from queue_app.core.models import utcnow
from queue_app.customers.models import Customer
from queue_app.demo.customers import seed_customer_history


def finish(api, ticket_id, counter="Counter 1"):
    counter_id = api.counter_id(counter)
    called = api.call("POST", f"/counters/{counter_id}/call-next", "staff1@demo.test")
    assert called.json["id"] == ticket_id
    assert api.call("POST", f"/tickets/{ticket_id}/finish", "staff1@demo.test").status_code == 200


def test_the_counter_sees_a_returning_customer_and_staff_search_is_masked(api, session):
    seed_customer_history(session, "demo", now=utcnow())
    ticket = api.issue("A", phone="0912 000 101")  # Chen Mei-ling, a regular
    shown = api.call("GET", f"/tickets/{ticket['id']}/customer", "staff1@demo.test").json
    assert shown["customer"]["name"] == "Chen Mei-ling" and shown["standing"]["segment"]
    # earlier visits only: the ticket being served (still waiting here) is not among them
    assert len(shown["recent"]) == 5 and "waiting" not in {e.get("status") for e in shown["recent"]}
    found = api.call("GET", "/branches/demo/customers?q=Chen", "staff1@demo.test").json
    assert found[0]["phone"].endswith("101") and "•" in found[0]["phone"] and found[0]["email"] is None
    assert api.call("GET", "/branches/demo/customers?q=Chen", "manager@demo.test").json[0]["phone"] == "+886912000101"
    # someone else's record, not a customer of today: refused to staff
    other = session.scalar(select(Customer.id).where(Customer.name == "Liu Jun"))
    assert api.call("GET", f"/customers/{other}", "staff1@demo.test").status_code == 403
    assert api.call("GET", f"/customers/{other}", "manager@demo.test").status_code == 200
    walk_in = api.issue("C")
    # A customer this branch knows can be attached by id (as the counter's search finds them).
    attached = api.call("POST", f"/tickets/{walk_in['id']}/customer", "staff1@demo.test", json={"customer_id": other})
    assert attached.status_code == 200 and attached.json["id"] == other and "•" in attached.json["phone"]
    assert api.call("GET", f"/customers/{other}", "staff1@demo.test").status_code == 200  # today's customer now


def test_feedback_once_through_the_tracking_link(api):
    ticket = api.issue("A", phone="+886912345678")
    early = api.call("POST", f"/tickets/{ticket['token']}/feedback", json={"rating": 5})
    assert early.status_code == 409 and early.json["error"]["code"] == "not_finished"
    finish(api, ticket["id"])
    first = api.call("POST", f"/tickets/{ticket['token']}/feedback", json={"rating": 4, "nps": 9, "comment": "ok"})
    assert first.status_code == 201 and first.json["rating"] == 4
    again = api.call("POST", f"/tickets/{ticket['token']}/feedback", json={"rating": 1})
    assert again.status_code == 409 and again.json["error"]["code"] == "feedback_given"
    assert api.call("POST", f"/tickets/{ticket['token']}/feedback", json={"rating": 9}).status_code == 422
    summary = api.call("GET", "/branches/demo/feedback", "manager@demo.test").json
    assert summary["overall"] == {"answers": 1, "average_rating": 4.0, "nps": 100.0, "nps_answers": 1}


def test_manager_segments_churn_rules_export_erase_and_admin_audit(api, session):
    seed_customer_history(session, "demo", now=utcnow())
    segments = api.call("GET", "/branches/demo/segments", "manager@demo.test").json
    assert sum(segments["segments"].values()) == 12 and segments["segments"]["core"] > 0
    churn = api.call("GET", "/branches/demo/churn", "manager@demo.test").json
    assert churn and {a["reason"] for a in churn} <= {"interval_exceeded", "valued_unseen"}
    marked = api.call("POST", f"/churn-alerts/{churn[0]['id']}/contacted", "manager@demo.test").json
    assert marked["contacted_at"] and marked["contacted_by"]
    rules = api.call("PATCH", "/branches/demo/customer-rules", "manager@demo.test",
                     json={"churn_days": 90, "segment_priority": True}).json
    assert rules["churn_days"] == 90 and rules["segment_priority"] is True
    assert api.call("POST", "/branches/demo/segments/recompute", "manager@demo.test").status_code == 200
    customer_id = churn[0]["customer"]["id"]
    exported = api.call("GET", f"/customers/{customer_id}/export", "manager@demo.test").json
    assert exported["customer"]["phone"] and exported["history"]
    assert api.call("DELETE", f"/customers/{customer_id}", "manager@demo.test").status_code == 200
    assert api.call("GET", f"/customers/{customer_id}", "admin@demo.test").status_code == 404
    log = api.call("GET", f"/audit?target_type=customer&target_id={customer_id}", "admin@demo.test").json
    assert {"customer.exported", "customer.erased", "churn.contacted"} <= {e["action"] for e in log}
    assert api.call("GET", "/audit", "manager@demo.test").status_code == 403
    rules_changed = session.scalar(select(AuditEntry).where(AuditEntry.action == "branch.changed"))
    assert rules_changed is not None and "customer_rules" in rules_changed.details["fields"]


def test_customer_paths_are_in_the_openapi_document(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("/api/v1/customers/{customer_id}", "/api/v1/customers/{customer_id}/history",
                 "/api/v1/tickets/{token}/feedback", "/api/v1/branches/{slug}/segments",
                 "/api/v1/branches/{slug}/churn", "/api/v1/branches/{slug}/feedback", "/api/v1/audit"):
        assert path in paths


def test_a_ticket_with_a_phone_remembers_the_language_for_the_customers_messages(api, session):
    from queue_app.catalogue import operations as catalogue

    def issue(**body):
        return api.call("POST", "/branches/demo/tickets", "kiosk", json={"service": "A", **body})

    assert issue(phone="+886 912 555 001", language="zh_Hans").status_code == 201
    catalogue.update_branch(session, "demo", language="zh_Hant")
    unstated = issue(phone="+886 912 555 002")
    again = issue(phone="+886 912 555 001", language="en")  # the latest choice wins
    refused = issue(phone="+886 912 555 003", language="klingon")
    assert (unstated.status_code, again.status_code, refused.status_code) == (201, 201, 422)
    session.expire_all()
    # Each ticket carries the language it was taken in (its messages use it); typed input never
    # rewrites the record's language (customers/identity.py), which keeps the one it was created with.
    from queue_app.tickets.models import Ticket

    tickets = session.execute(select(Ticket.phone, Ticket.language).where(Ticket.phone.is_not(None))
                              .order_by(Ticket.id)).all()
    assert tickets == [("+886912555001", "zh_Hans"), ("+886912555002", "zh_Hant"), ("+886912555001", "en")]
    languages = dict(session.execute(select(Customer.phone, Customer.language)
                                     .where(Customer.phone.in_(["+886912555001", "+886912555002"]))).all())
    assert languages == {"+886912555001": "zh_Hans", "+886912555002": "zh_Hant"}  # unstated: the branch's
