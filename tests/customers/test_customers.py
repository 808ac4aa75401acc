"""Customer records: identity and merge, segments and tiers, churn alerts, feedback, erasure, audit."""
from datetime import timedelta

import pytest
from helpers import NOW
from sqlalchemy import func, inspect, select, text, update

from queue_app.accounts.models import Staff
from queue_app.audit import operations as audit
from queue_app.audit.models import AuditEntry
from queue_app.booking import operations as booking
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Branch, Counter, Service
from queue_app.core.errors import Conflict, Forbidden, Invalid
from queue_app.core.transaction import write_transaction
from queue_app.customers import access as customer_access
from queue_app.customers import churn as customer_churn
from queue_app.customers import feedback as customer_feedback
from queue_app.customers import operations as customers
from queue_app.customers import privacy as customer_privacy
from queue_app.customers import standing as customer_standing
from queue_app.customers.models import ChurnAlert, Customer, CustomerStanding, Feedback
from queue_app.demo.customers import add_visit, seed_customer_history
from queue_app.notifications.models import Notification
from queue_app.tickets import queueing
from queue_app.tickets.models import Ticket


def demo(session):
    return session.scalar(select(Branch).where(Branch.slug == "demo"))


def staff(session, email):
    return session.scalar(select(Staff).where(Staff.email == email))


def history_of(session, customer, days_ago, service="A", price=None):
    """Finished visits `days_ago` before NOW for a customer."""
    branch = demo(session)
    svc = session.scalar(select(Service).where(Service.branch_id == branch.id, Service.code == service))
    session.commit()
    with write_transaction(session):
        if price is not None:
            session.get(Service, svc.id).price_cents = price
        for days in days_ago:
            add_visit(session, branch, session.get(Service, svc.id), customer.id, NOW - timedelta(days=days))


def new_customer(session, phone, name=""):
    session.commit()
    with write_transaction(session):
        customer = customers.find_or_create(session, phone=phone, region="TW", name=name, now=NOW)
    return customer


# --- identity ------------------------------------------------------------------------------------

def test_the_same_phone_typed_three_ways_is_one_record(session):
    issued = [queueing.issue_ticket(session, "demo", "A", phone=typed, now=NOW).ticket
              for typed in ("0912 345 678", "+886912345678", "+886 (912) 345-678")]
    assert len({t.customer_id for t in issued}) == 1
    assert session.scalar(select(Customer.phone).where(Customer.id == issued[0].customer_id)) == "+886912345678"
    assert session.scalar(select(func.count(Customer.id))) == 1


def test_a_local_number_is_read_in_the_branch_country(session):
    assert customers.normalise_phone("0912-345-678", "TW") == "+886912345678"
    assert customers.normalise_phone("(212) 555-0123", "US") == "+12125550123"
    for bad in ("call me", "12", "0912345678" * 5):
        with pytest.raises(Invalid):
            customers.normalise_phone(bad, "TW")


def test_email_and_phone_of_two_records_do_not_merge_by_themselves(session):
    a = new_customer(session, "+886912000001")
    session.commit()
    with write_transaction(session):
        b = customers.find_or_create(session, email="Ann@Example.com", now=NOW)
    with write_transaction(session):
        found = customers.find_or_create(session, phone="+886912000001", email="ann@example.com", now=NOW)
    assert found.id == a.id and found.email is None and b.email == "ann@example.com"


def test_merge_keeps_every_visit_booking_and_answer(session):
    a = new_customer(session, "+886912000001", "Ann")
    session.commit()
    with write_transaction(session):
        b = customers.find_or_create(session, email="ann@example.com", now=NOW)
    history_of(session, a, [30, 20])
    history_of(session, b, [10, 5, 1])
    ticket = session.scalar(select(Ticket).where(Ticket.customer_id == b.id).order_by(Ticket.id))
    customer_feedback.submit_feedback(session, ticket.id, 5, 10, now=ticket.finished_at + timedelta(hours=1))
    manager = staff(session, "manager@demo.test")
    kept = customer_privacy.merge(session, a.id, b.id, manager, now=NOW)
    assert (kept.phone, kept.email, kept.name) == ("+886912000001", "ann@example.com", "Ann")
    assert session.get(Customer, b.id) is None
    assert session.scalar(select(func.count(Ticket.id)).where(Ticket.customer_id == a.id)) == 5
    assert session.scalar(select(Feedback.customer_id).where(Feedback.ticket_id == ticket.id)) == a.id
    assert len([e for e in customers.history(session, a.id) if e["kind"] == "ticket"]) == 5
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "customer.merged"))
    assert (entry.actor_id, entry.target_id, entry.details) == (manager.id, a.id, {"merged": b.id})


# --- segments and tiers --------------------------------------------------------------------------

def test_segments_and_tiers_of_a_constructed_history(session):
    core = new_customer(session, "+886912000001")  # every 30 days for 11 months
    drifting = new_customer(session, "+886912000002")  # 8 irregular visits, none for 175 days
    regular = new_customer(session, "+886912000003")  # every 60 days: few visits, loyal
    once = new_customer(session, "+886912000004")
    history_of(session, core, [1 + 30 * i for i in range(12)])
    history_of(session, drifting, [175, 176, 190, 191, 250, 251, 330, 331])
    history_of(session, regular, [5 + 60 * i for i in range(5)])
    history_of(session, once, [3])
    result = customer_standing.recompute_branch(session, "demo", now=NOW)
    assert result["standings"] == 4
    rows = {s.customer_id: s for s in session.scalars(select(CustomerStanding))}
    c = rows[core.id]
    # value: 12 visits in the 365-day window; loyalty: regularity 1, tenure 331/365, recency 1 - 1/180
    assert (c.visits, c.value_score, c.usual_interval_days) == (12, 12.0, 30.0)
    assert c.loyalty_score == round((1 + 331 / 365 + (1 - 1 / 180)) / 3, 3)
    assert (c.segment, c.tier) == ("core", "gold")
    d = rows[drifting.id]
    # regularity 0 (intervals 1-79 days), tenure 331/365, recency 1 - 175/180: loyalty 0.312
    assert (d.value_score, d.loyalty_score, d.segment, d.tier) == (8.0, 0.312, "at_risk_valuable", "silver")
    r = rows[regular.id]
    # 5 visits: low value; regularity 1, tenure 245/365, recency 1 - 5/180: loyalty 0.881
    assert (r.value_score, r.loyalty_score, r.segment, r.tier) == (5.0, 0.881, "loyal_regular", "standard")
    o = rows[once.id]
    assert (o.visits, o.segment, o.tier, o.usual_interval_days) == (1, "occasional", "standard", None)
    assert session.get(Customer, core.id).tier == "gold"


def test_spend_counts_towards_value_and_manager_thresholds_change_tiers(session):
    spender = new_customer(session, "+886912000001")
    history_of(session, spender, [10, 40], service="B", price=50_000)  # 2 visits + 2 x 5 points
    customer_standing.recompute_branch(session, "demo", now=NOW)
    standing = session.get(CustomerStanding, (spender.id, demo(session).id))
    assert (standing.spend_cents, standing.value_score, standing.tier) == (100_000, 12.0, "silver")
    customer_standing.update_rules(session, "demo", {"tiers": [{"name": "platinum", "min_value": 10, "min_loyalty": 0}]})
    customer_standing.recompute_branch(session, "demo", now=NOW)
    session.expire_all()
    assert session.get(CustomerStanding, (spender.id, demo(session).id)).tier == "platinum"
    with pytest.raises(Invalid):
        customer_standing.update_rules(session, "demo", {"tiers": [{"name": "Gold!", "min_value": 1}]})
    with pytest.raises(Invalid):
        customer_standing.update_rules(session, "demo", {"segment_credits": {"core": 60}})


def _snapshot(session):
    session.commit()  # a fresh read: the job wrote through its own session
    standings = [tuple(getattr(s, c.key) for c in inspect(CustomerStanding).columns)
                 for s in session.scalars(select(CustomerStanding).order_by(CustomerStanding.customer_id))]
    alerts = [(a.id, a.customer_id, a.reason, a.last_visit_at, a.created_at)
              for a in session.scalars(select(ChurnAlert).order_by(ChurnAlert.id))]
    tiers = list(session.execute(select(Customer.id, Customer.tier, Customer.last_visit_at).order_by(Customer.id)))
    return standings, alerts, tiers


def test_nightly_job_run_twice_changes_nothing_the_second_time(app, session):
    from queue_app.jobs import scheduler as jobs

    seed_customer_history(session, "demo", now=NOW)
    first = _snapshot(session)
    assert first[0] and first[1]
    jobs.recompute_customers(app, now=NOW + timedelta(hours=1))  # 20:00 local: the 03:00 run is done
    assert _snapshot(session) == first
    night = NOW + timedelta(hours=20)  # 04:00 local the next day: due
    jobs.recompute_customers(app, now=night)
    second = _snapshot(session)
    assert customer_standing.recompute_branch(session, "demo", now=night)["changed"] == 0
    assert customer_standing.recompute_branch(session, "demo", now=night)["new_alerts"] == 0
    assert _snapshot(session) == second


# --- churn ---------------------------------------------------------------------------------------

def test_churn_alerts_each_once(session):
    rhythm = new_customer(session, "+886912000001")  # every 30 days, unseen for 45
    valued = new_customer(session, "+886912000002")  # 8 irregular visits, unseen for 113 days
    newcomer = new_customer(session, "+886912000003")  # one visit, 40 days ago
    steady = new_customer(session, "+886912000004")  # every 30 days, seen 20 days ago
    history_of(session, rhythm, [45, 75, 105, 135])
    history_of(session, valued, [113, 114, 120, 121, 160, 170, 200, 260])
    history_of(session, newcomer, [40])
    history_of(session, steady, [20, 50, 80, 110])
    assert customer_standing.recompute_branch(session, "demo", now=NOW)["new_alerts"] == 2
    alerts = {a.customer_id: a for a in customer_churn.churn_list(session, demo(session))}
    assert set(alerts) == {rhythm.id, valued.id}
    assert alerts[rhythm.id].reason == "interval_exceeded" and alerts[rhythm.id].usual_interval_days == 30
    assert alerts[valued.id].reason == "valued_unseen" and alerts[valued.id].segment in customer_standing.HIGH_VALUE
    assert customer_standing.recompute_branch(session, "demo", now=NOW + timedelta(days=1))["new_alerts"] == 0
    assert session.scalar(select(func.count(ChurnAlert.id))) == 2
    # contacted: stays on the list, marked; a visit afterwards resolves it
    manager = staff(session, "manager@demo.test")
    customer_churn.mark_contacted(session, alerts[rhythm.id].id, manager, now=NOW)
    history_of(session, rhythm, [0])
    customer_standing.recompute_branch(session, "demo", now=NOW + timedelta(hours=2))
    assert {a.customer_id for a in customer_churn.churn_list(session, demo(session))} == {valued.id}
    with pytest.raises(Forbidden):
        customer_churn.mark_contacted(session, alerts[valued.id].id, staff(session, "staff1@demo.test"))


def test_a_valued_customer_is_flagged_at_the_branchs_own_churn_days(session):
    valued = new_customer(session, "+886912000002")
    history_of(session, valued, [60 + 50 * i for i in range(8)])  # every 50 days: 60 unseen is in rhythm
    assert customer_standing.recompute_branch(session, "demo", now=NOW)["new_alerts"] == 0
    customer_standing.update_rules(session, "demo", {"churn_days": 60})
    assert customer_standing.recompute_branch(session, "demo", now=NOW)["new_alerts"] == 1


# --- priority credit -----------------------------------------------------------------------------

def test_segment_credit_moves_a_core_customer_ahead_but_never_more_than_the_cap(session):
    core = new_customer(session, "+886912000001")
    history_of(session, core, [1 + 30 * i for i in range(12)])
    customer_standing.recompute_branch(session, "demo", now=NOW)
    t0 = NOW + timedelta(minutes=10)
    plain = queueing.issue_ticket(session, "demo", "A", now=t0).ticket
    before = queueing.issue_ticket(session, "demo", "A", phone="+886912000001", now=t0 + timedelta(minutes=1)).ticket
    assert before.sort_key == before.effective_at  # credit off by default
    customer_standing.update_rules(session, "demo", {"segment_priority": True})
    ahead = queueing.issue_ticket(session, "demo", "A", phone="+886912000001", now=t0 + timedelta(minutes=2)).ticket
    assert ahead.sort_key == ahead.effective_at - timedelta(minutes=5) < plain.sort_key
    capped = queueing.issue_ticket(session, "demo", "A", phone="+886912000001", priority="accessibility",
                                   issued_by="kiosk", now=t0 + timedelta(minutes=3)).ticket
    assert capped.effective_at - capped.sort_key == queueing.MAX_CREDIT


# --- access --------------------------------------------------------------------------------------

def test_staff_see_todays_customers_managers_their_branches_admins_all(session):
    known = new_customer(session, "+886912000001")
    history_of(session, known, [30])
    catalogue.create_branch(session, "north", "North", "Asia/Tokyo")
    catalogue.create_staff(session, "north@demo.test", "long-enough-pw", "manager", ["north"])
    with pytest.raises(Forbidden):
        customer_access.visible_branches(session, staff(session, "staff1@demo.test"), known.id, now=NOW)
    assert customer_access.visible_branches(session, staff(session, "manager@demo.test"), known.id) == [demo(session).id]
    assert customer_access.visible_branches(session, staff(session, "admin@demo.test"), known.id) is None
    with pytest.raises(Forbidden):
        customer_access.visible_branches(session, staff(session, "north@demo.test"), known.id)
    queueing.issue_ticket(session, "demo", "A", phone="0912000001", now=NOW)
    assert customer_access.visible_branches(session, staff(session, "staff1@demo.test"), known.id, now=NOW) == [demo(session).id]


def test_a_managers_export_holds_the_visits_at_their_branches_an_admins_all(session):
    catalogue.create_branch(session, "north", "North", "Asia/Tokyo", country="TW")
    catalogue.create_service(session, "north", "A", "Accounts")
    for branch in ("demo", "north"):
        queueing.issue_ticket(session, branch, "A", phone="+886912000002", now=NOW)
    customer_id = session.scalar(select(Customer.id).where(Customer.phone == "+886912000002"))
    mine = customer_privacy.export(session, customer_id, staff(session, "manager@demo.test"), now=NOW)
    assert mine["branches"] == ["demo"] and {e["branch"] for e in mine["history"]} == {"demo"}
    everything = customer_privacy.export(session, customer_id, staff(session, "admin@demo.test"), now=NOW)
    assert everything["branches"] is None and {e["branch"] for e in everything["history"]} == {"demo", "north"}


# --- feedback ------------------------------------------------------------------------------------

def finished_ticket(session, phone=None, at=NOW, counter="Counter 1"):
    ticket = queueing.issue_ticket(session, "demo", "A", phone=phone, now=at).ticket
    counter_id = session.scalar(select(Counter.id).where(Counter.name == counter))
    called = queueing.call_next(session, counter_id, staff_id=staff(session, "staff1@demo.test").id,
                                now=at + timedelta(minutes=1))
    assert called.id == ticket.id
    return queueing.finish(session, ticket.id, now=at + timedelta(minutes=6))


def test_one_answer_per_visit_and_the_dashboard_matches(session):
    left = queueing.leave(session, queueing.issue_ticket(session, "demo", "A", now=NOW).ticket.id, now=NOW)
    with pytest.raises(Conflict):
        customer_feedback.submit_feedback(session, left.id, 5)
    answers = [(5, 10), (4, 9), (2, 3), (3, None), (5, 7)]
    tickets = []
    for n, (rating, nps) in enumerate(answers):
        ticket = finished_ticket(session, at=NOW + timedelta(minutes=10 * n),
                                 counter="Counter 1" if n % 2 == 0 else "Counter 2")
        customer_feedback.submit_feedback(session, ticket.id, rating, nps, "fine" if n == 0 else "",
                                  now=NOW + timedelta(minutes=10 * n + 8))
        tickets.append(ticket)
    with pytest.raises(Conflict) as again:
        customer_feedback.submit_feedback(session, tickets[0].id, 1, 0, now=NOW + timedelta(hours=2))
    assert again.value.code == "feedback_given"
    with pytest.raises(Invalid):
        customer_feedback.submit_feedback(session, tickets[0].id, 6)
    summary = customer_feedback.feedback_summary(session, demo(session))
    stored = session.execute(select(Feedback.rating, Feedback.nps)).all()
    assert summary["overall"]["answers"] == len(stored) == 5
    assert summary["overall"]["average_rating"] == round(sum(r for r, _n in stored) / 5, 2) == 3.8
    # NPS over the 4 answers with a score: promoters 10, 9; detractor 3; passive 7 -> (2 - 1) / 4
    assert summary["overall"]["nps"] == 25.0 and summary["overall"]["nps_answers"] == 4
    by_counter = {row["name"]: row for row in summary["by_counter"]}
    assert by_counter["Counter 1"]["answers"] == 3 and by_counter["Counter 2"]["average_rating"] == 3.5
    assert summary["by_staff"][0]["answers"] == 5
    assert customer_feedback.feedback_state(session, tickets[1], NOW + timedelta(days=20)) == "answered"


def test_the_feedback_mail_goes_out_through_the_outbox_to_a_real_smtp_server(app, session, mailbox, driver):
    from queue_app.notifications import notify

    session.commit()
    with write_transaction(session):
        customer = customers.find_or_create(session, email="mei@example.test", now=NOW)
        customer.name, customer.language = "Mei", "zh_Hant"
    ticket = finished_ticket(session, phone=None, at=NOW)
    # By contact: the record is not known at the branch yet, so its id alone would be refused.
    customers.attach_to_ticket(session, ticket.id, staff(session, "staff1@demo.test"), email="Mei@example.test",
                               now=NOW + timedelta(minutes=7))
    customer_feedback.invite_feedback(session, "http://q.test", now=NOW + timedelta(minutes=8))
    notify.send_due(session, driver, NOW + timedelta(minutes=8))
    notify.send_due(session, driver, NOW + timedelta(minutes=9))  # nothing left: sent once
    assert len(mailbox.messages) == 1
    message = mailbox.messages[0]
    assert message["To"] == "mei@example.test" and "Demo Branch" in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert "Mei 您好" in body and "http://q.test/f/" in body
    token = body.split("/f/")[1].split()[0]
    assert customer_feedback.ticket_for_feedback_token(session, token).id == ticket.id


def test_a_finished_visit_with_an_email_gets_one_feedback_mail(session):
    session.commit()
    with write_transaction(session):
        customer = customers.find_or_create(session, email="ann@example.com", now=NOW)
        customer.name = "Ann"
    ticket = queueing.issue_ticket(session, "demo", "A", email="ann@example.com", now=NOW).ticket
    counter_id = session.scalar(select(Counter.id).where(Counter.name == "Counter 1"))
    queueing.call_next(session, counter_id, now=NOW)
    queueing.finish(session, ticket.id, now=NOW + timedelta(minutes=5))
    assert customer_feedback.invite_feedback(session, "http://q.test", now=NOW + timedelta(minutes=6)) == 1
    assert customer_feedback.invite_feedback(session, "http://q.test", now=NOW + timedelta(minutes=7)) == 0
    message = session.scalar(select(Notification).where(Notification.template == "feedback_request"))
    assert message.recipient == "ann@example.com" and "http://q.test/f/" in message.payload["body"]
    token = message.payload["body"].split("/f/")[1].split()[0]
    assert customer_feedback.ticket_for_feedback_token(session, token).id == ticket.id
    customer_feedback.submit_feedback(session, ticket.id, 4, 8, channel="mail", now=NOW + timedelta(hours=1))
    with pytest.raises(Conflict):
        customer_feedback.submit_feedback(session, ticket.id, 4, 8, channel="tracking", now=NOW + timedelta(hours=2))


# --- erasure and audit ---------------------------------------------------------------------------

def _all_text(session) -> str:
    """Every value of every row of every table, as one string."""
    dump = []
    for table in inspect(session.get_bind()).get_table_names():
        for row in session.execute(text(f'SELECT * FROM "{table}"')):
            dump.append(" ".join(str(v) for v in row))
    return "\n".join(dump)


def _branch_statistics(session):
    return session.execute(select(
        func.count(Ticket.id), func.sum(func.julianday(Ticket.called_at) - func.julianday(Ticket.issued_at)),
        func.count(Feedback.id), func.avg(Feedback.rating),
    ).select_from(Ticket).outerjoin(Feedback, Feedback.ticket_id == Ticket.id)).one()


@pytest.mark.sqlite_only  # its statistics query uses SQLite's julianday()
def test_erasure_leaves_no_personal_field_anywhere_and_statistics_unchanged(session):
    catalogue.update_branch(session, "demo", booking_rules={"min_notice_minutes": 0})
    made = booking.book(session, "demo", "B", NOW + timedelta(hours=2), name="Erin Example",
                        phone="+886955512345", email="erin@example.com", now=NOW)
    customer_id = made.appointment.customer_id
    session.execute(update(Customer).where(Customer.id == customer_id).values(name="Erin Example"))
    session.commit()
    history_of(session, session.get(Customer, customer_id), [30, 60, 90, 120])
    ticket = finished_ticket(session, phone="+886955512345", at=NOW + timedelta(minutes=2))
    customer_feedback.invite_feedback(session, "http://q.test", now=NOW + timedelta(minutes=9))
    customer_feedback.submit_feedback(session, ticket.id, 2, 4, "Erin Example says: call +886955512345",
                              now=NOW + timedelta(minutes=30))
    customer_standing.recompute_branch(session, "demo", now=NOW + timedelta(days=200))
    manager = staff(session, "manager@demo.test")
    customers.record_view(session, customer_id, manager)
    exported = customer_privacy.export(session, customer_id, manager, now=NOW)
    assert exported["customer"]["email"] == "erin@example.com" and len(exported["history"]) >= 6
    before = _branch_statistics(session)
    personal = ("Erin", "erin@example.com", "955512345", "+886955512345")
    assert any(p in _all_text(session) for p in personal)

    customer_privacy.erase(session, customer_id, manager, now=NOW + timedelta(days=1))

    everything = _all_text(session)
    assert [p for p in personal if p in everything] == []
    assert _branch_statistics(session) == before
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == customer_id)).all()
    assert {"customer.viewed", "customer.exported", "customer.erased"} <= set(actions)


def test_the_audit_log_is_append_only_and_records_role_and_counter_changes(app, session):
    staff3 = staff(session, "staff3@demo.test")
    catalogue.update_staff(session, staff3.id, role="manager")
    counter_id = session.scalar(select(Counter.id).where(Counter.name == "Counter 2"))
    catalogue.update_counter(session, counter_id, state="paused")
    entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    role = next(e for e in entries if e.action == "staff.changed")
    assert role.details["fields"]["role"] == {"from": "staff", "to": "manager"}
    assert any(e.action == "counter.changed" and e.details["fields"]["state"]["to"] == "paused" for e in entries)
    entry = entries[0]
    entry.details = {"rewritten": True}
    with pytest.raises(audit.AppendOnly):
        session.flush()
    session.rollback()
    with pytest.raises(audit.AppendOnly):
        session.execute(update(AuditEntry).values(action="x"))
    session.rollback()


def test_retention_clears_old_feedback_comments_and_alerts_of_anonymous_records(session):
    from queue_app.customers import retention

    old = new_customer(session, "+886912000009", "Olga Old")
    history_of(session, old, [500, 530, 560, 590, 620, 650, 680, 710])
    ticket = session.scalar(select(Ticket).where(Ticket.customer_id == old.id).order_by(Ticket.id.desc()))
    customer_feedback.submit_feedback(session, ticket.id, 3, 5, "Olga here, call me", now=ticket.finished_at)
    customer_standing.recompute_branch(session, "demo", now=NOW - timedelta(days=300))
    assert session.scalar(select(func.count(ChurnAlert.id))) == 1
    retention.purge_personal_data(session, timedelta(days=365), now=NOW)
    answer = session.scalar(select(Feedback).where(Feedback.ticket_id == ticket.id))
    assert (answer.rating, answer.nps, answer.comment, answer.customer_id) == (3, 5, "", None)
    assert session.scalar(select(func.count(ChurnAlert.id))) == 0
    assert "Olga" not in _all_text(session)
