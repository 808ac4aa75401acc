"""Joining the queue from home (issue 20): proof by a code, one remote ticket per contact, "Leave
by", "Time to set off" once through the outbox and a fake SMS gateway on loopback, "I'm here" by
the button and by the branch's daily code, and a remote ticket called before it arrived: held
once, then a no-show.

Domain tests pass `now`; the API and page tests run on the real clock, like the app.
"""
import re
from datetime import timedelta

import pytest
from helpers import SmsGatewayFake, page_data, race, utc
from sqlalchemy import select

from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Branch, Counter
from queue_app.core.errors import Conflict, Forbidden, Invalid, Locked
from queue_app.core.models import utcnow
from queue_app.customers import contact_codes, identity
from queue_app.customers.models import ContactCode, Customer
from queue_app.notifications import mail, notify
from queue_app.notifications.models import Notification
from queue_app.tickets import numbering, queueing, remote, remote_rules
from queue_app.tickets.models import Ticket, TicketEvent

T0 = utc(2026, 3, 2, 2, 0)  # a Monday, 10:00 in Taipei: the demo branch is open
SECRET = "test-secret-key"  # TEST_CONFIG's SECRET_KEY: the API and the tests derive the same codes
PHONE = "+886912345678"
OTHER = "+886912000111"


@pytest.fixture
def gateway():
    made = SmsGatewayFake()
    yield made
    made.close()


@pytest.fixture
def remote_demo(session):
    catalogue.update_branch(session, "demo", allow_remote_tickets=True)
    return session


def counter_id(session, name):
    return session.scalar(select(Counter.id).where(Counter.name == name))


def send_outbox(session, gateway, now):
    return notify.send_due(session, mail.driver_for({"QUEUE_APP_MAIL_DRIVER": "console", **gateway.config}), now)


def code_for(session, gateway, phone=PHONE, now=T0):
    contacts = identity.typed(phone, None, "TW")
    remote.request_code(session, "demo", contacts, secret=SECRET, language="en", now=now)
    send_outbox(session, gateway, now)
    return gateway.last_code(phone)


def join(session, gateway, *, phone=PHONE, service="B", travel=20, now=T0):
    code = code_for(session, gateway, phone, now)
    return remote.join(session, "demo", service, identity.typed(phone, None, "TW"), code, travel,
                       secret=SECRET, language="en", now=now)


# --- proof by a code ---------------------------------------------------------------------------

def test_a_code_goes_out_once_through_the_sms_gateway_and_proves_the_phone(remote_demo, gateway):
    session = remote_demo
    joined = join(session, gateway)
    [text] = gateway.texts_to(PHONE)
    assert "is your code to join the queue at Demo Branch" in text
    row = session.scalar(select(ContactCode))
    assert row.code_hash != gateway.last_code(PHONE) and len(row.code_hash) == 64  # keyed hash, not the code
    assert row.used_at == T0
    ticket = joined.ticket
    assert (ticket.remote, ticket.travel_minutes, ticket.phone, joined.existing) == (True, 20, PHONE, False)
    customer = session.get(Customer, ticket.customer_id)
    assert customer.phone == PHONE and customer.phone_verified_at == T0  # proven, not only typed
    assert queueing.find_by_token(session, joined.token).id == ticket.id


def test_wrong_codes_count_and_the_fifth_voids_the_code(remote_demo, gateway):
    session = remote_demo
    code = code_for(session, gateway)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    contacts = identity.typed(PHONE, None, "TW")
    for left in (4, 3, 2, 1):
        with pytest.raises(Invalid) as refused:
            remote.join(session, "demo", "B", contacts, wrong, 20, secret=SECRET, language="en", now=T0)
        assert refused.value.code == "code_wrong" and refused.value.tries_left == left
    with pytest.raises(Locked) as locked:
        remote.join(session, "demo", "B", contacts, wrong, 20, secret=SECRET, language="en", now=T0)
    assert locked.value.code == "too_many_tries"
    # Even the right code is refused now: the code is spent, a new one is needed.
    with pytest.raises(Conflict, match="no valid code"):
        remote.join(session, "demo", "B", contacts, code, 20, secret=SECRET, language="en", now=T0)
    assert session.scalar(select(Ticket.id).where(Ticket.remote.is_(True))) is None


def test_an_expired_code_or_an_unproven_contact_cannot_join(remote_demo, gateway):
    session = remote_demo
    code = code_for(session, gateway)
    contacts = identity.typed(PHONE, None, "TW")
    later = T0 + contact_codes.CODE_VALID + timedelta(seconds=1)
    with pytest.raises(Conflict) as expired:
        remote.join(session, "demo", "B", contacts, code, 20, secret=SECRET, language="en", now=later)
    assert expired.value.code == "code_expired"
    # A number that never got a code: nothing proves it, whatever is typed.
    with pytest.raises(Conflict):
        remote.join(session, "demo", "B", identity.typed(OTHER, None, "TW"), code, 20, secret=SECRET,
                    language="en", now=T0)
    # A new code voids the one before it.
    first = code_for(session, gateway)
    code_for(session, gateway)
    if first != gateway.last_code(PHONE):
        with pytest.raises(Invalid):
            remote.join(session, "demo", "B", contacts, first, 20, secret=SECRET, language="en", now=T0)


def test_a_second_join_by_the_same_contact_gets_the_first_ticket_and_link_back(remote_demo, gateway):
    session = remote_demo
    first = join(session, gateway)
    again = join(session, gateway, service="A", travel=30, now=T0 + timedelta(minutes=3))
    assert again.existing and again.ticket.id == first.ticket.id and again.token == first.token
    assert session.scalar(select(Ticket.id).where(Ticket.remote.is_(True)).order_by(Ticket.id.desc())) == first.ticket.id
    other = join(session, gateway, phone=OTHER)
    assert other.ticket.id != first.ticket.id and not other.existing
    # Once the first is over, the same phone may join again: a new ticket.
    queueing.leave(session, first.ticket.id, now=T0 + timedelta(minutes=4))
    newer = join(session, gateway, now=T0 + timedelta(minutes=5))
    assert not newer.existing and newer.ticket.id != first.ticket.id and newer.token != first.token


def test_codes_are_removed_a_day_later_with_their_contact(remote_demo, gateway):
    from queue_app.customers import retention

    session = remote_demo
    code_for(session, gateway)
    retention.purge_personal_data(session, timedelta(days=365), now=T0 + timedelta(hours=23))
    assert session.scalar(select(ContactCode.contact)) == PHONE
    retention.purge_personal_data(session, timedelta(days=365), now=T0 + timedelta(days=1, minutes=1))
    assert session.scalar(select(ContactCode.id)) is None


def test_a_branch_that_does_not_allow_remote_tickets_refuses(session, gateway):
    contacts = identity.typed(PHONE, None, "TW")
    with pytest.raises(Forbidden):
        remote.request_code(session, "demo", contacts, secret=SECRET, language="en", now=T0)
    with pytest.raises(Forbidden):
        remote.join(session, "demo", "B", contacts, "123456", 20, secret=SECRET, language="en", now=T0)


# --- when to leave, and "Time to set off" ---------------------------------------------------------

def test_leave_by_is_the_estimates_low_end_minus_the_trip_and_the_margin(remote_demo, gateway):
    session = remote_demo
    for i in range(8):  # people already waiting for B (counters 2 and 3, about 20 min each)
        queueing.issue_ticket(session, "demo", "B", now=T0 - timedelta(minutes=8 - i))
    joined = join(session, gateway, travel=15)
    from queue_app.tickets.read_models import ticket_status

    status = ticket_status(session, joined.ticket, now=T0)
    low = status["estimate"]["low"]
    assert low > 15 + 5
    expected = (T0 + timedelta(minutes=low - 15 - 5)).astimezone(
        session.get(Branch, joined.ticket.branch_id).zone).strftime("%H:%M")
    assert status["remote"] == {"travel_minutes": 15, "arrived": False, "leave_by": expected, "leave_now": False,
                                "set_off_sent": False, "held": False}


def test_time_to_set_off_is_sent_once_when_the_low_end_reaches_the_trip(remote_demo, gateway):
    session = remote_demo
    for i in range(8):
        queueing.issue_ticket(session, "demo", "B", now=T0 - timedelta(minutes=8 - i))
    far = join(session, gateway, travel=5).ticket  # behind eight visits of about 20 min: not yet
    near = join(session, gateway, phone=OTHER, service="C", travel=30).ticket  # C is free now: go
    assert remote.send_set_off(session, now=T0) == 1
    assert remote.send_set_off(session, now=T0 + timedelta(minutes=1)) == 0  # once
    send_outbox(session, gateway, T0 + timedelta(minutes=1))
    [text] = [t for t in gateway.texts_to(OTHER) if "set off" in t]
    assert re.fullmatch(r"Time to set off: about \d+ min to your turn \(C001 at Demo Branch\)\.", text)
    assert not [t for t in gateway.texts_to(PHONE) if "set off" in t]
    session.expire_all()
    assert session.get(Ticket, near.id).set_off_sent_at == T0 and session.get(Ticket, far.id).set_off_sent_at is None
    # The queue for B moves on: served one after another, the far ticket's turn comes near.
    clock = T0
    for _ in range(8):
        for name in ("Counter 2", "Counter 3"):
            called = queueing.call_next(session, counter_id(session, name), now=clock)
            if called is not None and called.id != far.id:
                queueing.finish(session, called.id, now=clock + timedelta(minutes=1))
        clock += timedelta(minutes=2)
        if remote.send_set_off(session, now=clock):
            break
    session.expire_all()
    assert session.get(Ticket, far.id).set_off_sent_at is not None
    send_outbox(session, gateway, clock)
    assert len([t for t in gateway.texts_to(PHONE) if "set off" in t]) == 1


def test_an_arrived_ticket_gets_no_set_off_message(remote_demo, gateway):
    session = remote_demo
    ticket = join(session, gateway, service="C", travel=30).ticket
    remote.arrived(session, ticket.id, now=T0)
    assert remote.send_set_off(session, now=T0) == 0


# --- "I'm here" -----------------------------------------------------------------------------------

def test_im_here_by_button_and_by_todays_code_not_yesterdays(remote_demo, gateway):
    session = remote_demo
    ticket = join(session, gateway).ticket
    branch = session.get(Branch, ticket.branch_id)
    today = numbering.local_day(T0, branch.zone)
    yesterday = remote_rules.here_code(SECRET, branch.id, today - timedelta(days=1))
    assert yesterday != remote_rules.here_code(SECRET, branch.id, today)
    with pytest.raises(Invalid):
        remote.arrived(session, ticket.id, here_code=yesterday, secret=SECRET, now=T0)
    remote.arrived(session, ticket.id, here_code=remote_rules.here_code(SECRET, branch.id, today).lower(),
                   secret=SECRET, now=T0 + timedelta(minutes=1))
    session.expire_all()
    assert session.get(Ticket, ticket.id).arrived_at == T0 + timedelta(minutes=1)
    other = join(session, gateway, phone=OTHER).ticket
    remote.arrived(session, other.id, now=T0 + timedelta(minutes=2))  # the tracking page's button
    remote.arrived(session, other.id, now=T0 + timedelta(minutes=3))  # again: nothing changes
    session.expire_all()
    assert session.get(Ticket, other.id).arrived_at == T0 + timedelta(minutes=2)
    walk_in = queueing.issue_ticket(session, "demo", "A", now=T0).ticket
    with pytest.raises(Conflict, match="taken at the branch"):
        remote.arrived(session, walk_in.id, now=T0)


# --- called before arriving: held once, then a no-show -----------------------------------------

def test_a_remote_ticket_called_before_arriving_is_held_once_then_a_no_show(remote_demo, gateway):
    session = remote_demo
    catalogue.update_counter(session, counter_id(session, "Counter 3"), state="closed")
    remote_ticket = join(session, gateway, service="B").ticket
    walk_ins = [queueing.issue_ticket(session, "demo", "B", now=T0 + timedelta(seconds=i + 1)).ticket
                for i in range(4)]
    desk = counter_id(session, "Counter 2")
    called = queueing.call_next(session, desk, now=T0 + timedelta(minutes=1))
    assert called.id == walk_ins[0].id  # the remote one was passed over, not called
    session.expire_all()
    held = session.get(Ticket, remote_ticket.id)
    assert (held.status, held.held_count, held.counter_id, held.called_at) == ("waiting", 1, None, None)
    event = session.scalar(select(TicketEvent).where(TicketEvent.ticket_id == held.id, TicketEvent.type == "held"))
    assert event.data["places"] == 3  # the demo branch's postpone_places
    [message] = session.scalars(select(Notification).where(Notification.template == remote_rules.HELD)).all()
    assert message.recipient == PHONE and "you keep a place 3 back" in message.payload["body"]
    # Three people go first, then the held ticket comes up again: still not here, a no-show.
    order = []
    clock = T0 + timedelta(minutes=2)
    queueing.finish(session, called.id, now=clock)
    while (ticket := queueing.call_next(session, desk, now=clock)) is not None:
        order.append(ticket.id)
        queueing.finish(session, ticket.id, now=clock)
        clock += timedelta(minutes=1)
    assert order == [w.id for w in walk_ins[1:]]
    session.expire_all()
    gone = session.get(Ticket, remote_ticket.id)
    assert (gone.status, gone.held_count) == ("no_show", 2)
    assert session.scalar(select(TicketEvent.data).where(TicketEvent.ticket_id == gone.id,
                                                         TicketEvent.type == "no_show")) == {
        "counter": "Counter 2", "reason": "not_arrived"}


def test_an_arrived_remote_ticket_is_called_like_any_other(remote_demo, gateway):
    session = remote_demo
    ticket = join(session, gateway, service="B").ticket
    remote.arrived(session, ticket.id, now=T0)
    called = queueing.call_next(session, counter_id(session, "Counter 2"), now=T0 + timedelta(minutes=1))
    assert called.id == ticket.id and called.status == "called"


def test_a_held_ticket_alone_in_line_is_not_called_again_by_the_same_call(remote_demo, gateway):
    session = remote_demo
    ticket = join(session, gateway, service="B").ticket
    assert queueing.call_next(session, counter_id(session, "Counter 2"), now=T0) is None
    session.expire_all()
    assert session.get(Ticket, ticket.id).status == "waiting"
    assert queueing.call_next(session, counter_id(session, "Counter 2"), now=T0 + timedelta(minutes=1)) is None
    session.expire_all()
    assert session.get(Ticket, ticket.id).status == "no_show"


def test_counters_racing_over_remote_tickets_never_share_one_and_hold_each_once(app, remote_demo, gateway):
    """Remote tickets not here among walk-ins; every counter calls at the same instant, round after
    round: no ticket goes to two counters, none is held twice in a round (SQLite and PostgreSQL)."""
    session = remote_demo
    for n in range(4):
        catalogue.create_counter(session, "demo", f"Race {n}", ["C"], state="open")
    counters = [counter_id(session, f"Race {n}") for n in range(4)] + [counter_id(session, "Counter 1")]
    remote_ids = [join(session, gateway, phone=f"+88691200{n:04d}", service="C").ticket.id for n in range(1, 4)]
    walk_ins = [queueing.issue_ticket(session, "demo", "C", now=T0 + timedelta(seconds=n + 1)).ticket.id
                for n in range(12)]
    with app.app_context():
        from queue_app.core.extensions import db

        engine = db.engine
    served = []
    clock = T0 + timedelta(minutes=1)
    for _ in range(6):
        outcomes = race(engine, [lambda own, c=c, at=clock: getattr(queueing.call_next(own, c, now=at), "id", None)
                                 for c in counters])
        called = [o for o in outcomes if o is not None]
        assert all(isinstance(o, int) for o in called), outcomes
        assert len(called) == len(set(called)), "two counters got the same ticket"
        served += called
        for ticket_id in called:
            queueing.finish(session, ticket_id, now=clock)
        clock += timedelta(minutes=1)
    assert sorted(served) == sorted(walk_ins)
    session.expire_all()
    for ticket_id in remote_ids:
        ticket = session.get(Ticket, ticket_id)
        assert (ticket.status, ticket.held_count) == ("no_show", 2)
        kinds = session.scalars(select(TicketEvent.type).where(TicketEvent.ticket_id == ticket_id)).all()
        assert kinds.count("held") == 1 and kinds.count("called") == 0


# --- the API and the pages ------------------------------------------------------------------------

def _allow(app):
    from queue_app.core.extensions import db

    with app.app_context():
        catalogue.update_branch(db.session, "demo", allow_remote_tickets=True)


def _api_code(client, app, gateway, phone=PHONE):
    answer = client.post("/api/v1/branches/demo/remote-tickets/code", json={"phone": phone})
    assert answer.status_code == 202, answer.json
    assert answer.json == {"channel": "sms", "expires_in": 600}
    from queue_app.core.extensions import db

    with app.app_context():
        send_outbox(db.session, gateway, utcnow())
    return gateway.last_code(phone)


def test_api_join_flow_second_join_and_bad_input(app, client, api, gateway):
    _allow(app)
    code = _api_code(client, app, gateway)
    body = {"service": "B", "phone": "0912 345 678", "code": code, "travel_minutes": 25}
    for travel in (121, -1, "20", None):
        refused = client.post("/api/v1/branches/demo/remote-tickets", json={**body, "travel_minutes": travel})
        assert refused.status_code == 422 and "travel_minutes" in str(refused.json), travel
    wrong = client.post("/api/v1/branches/demo/remote-tickets", json={**body, "code": "000000" if code != "000000"
                                                                      else "111111"})
    assert (wrong.status_code, wrong.json["error"]["code"]) == (422, "code_wrong")
    joined = client.post("/api/v1/branches/demo/remote-tickets", json=body)
    assert joined.status_code == 201, joined.json
    ticket = joined.json
    assert ticket["travel_minutes"] == 25 and ticket["existing"] is False and ticket["label"] == "B001"
    assert ticket["track_url"] == f"http://kiosk.test/t/{ticket['token']}"
    # Again with a fresh code: the same ticket and link, 200.
    again = client.post("/api/v1/branches/demo/remote-tickets", json={**body, "code": _api_code(client, app, gateway)})
    assert again.status_code == 200 and again.json["existing"] is True
    assert (again.json["id"], again.json["token"]) == (ticket["id"], ticket["token"])
    # The same code a second time: spent.
    assert client.post("/api/v1/branches/demo/remote-tickets", json=body).json["error"]["code"] == "code_expired"
    # Unproven: a contact that never got a code.
    stranger = client.post("/api/v1/branches/demo/remote-tickets", json={**body, "phone": OTHER})
    assert stranger.status_code == 409 and stranger.json["error"]["code"] == "code_expired"
    tracked = client.get(f"/api/v1/tickets/{ticket['token']}").json
    assert tracked["remote"]["travel_minutes"] == 25 and tracked["remote"]["arrived"] is False
    arrived = client.post(f"/api/v1/tickets/{ticket['token']}/arrived", json={})
    assert arrived.status_code == 200 and arrived.json["remote"]["arrived"] is True
    # Staff see it on the counter's ticket once called.
    counter = api.counter_id("Counter 2")
    staff_view = api.call("POST", f"/counters/{counter}/call-next", "staff1@demo.test").json
    assert staff_view["remote"] is True and staff_view["arrived_at"] is not None


def test_api_refusals_are_json_4xx(app, client, seeded):
    code = client.post("/api/v1/branches/demo/remote-tickets/code", json={"phone": PHONE})
    assert (code.status_code, code.json["error"]["code"]) == (403, "remote_not_allowed")
    join_answer = client.post("/api/v1/branches/demo/remote-tickets",
                              json={"service": "B", "phone": PHONE, "code": "123456", "travel_minutes": 20})
    assert (join_answer.status_code, join_answer.json["error"]["code"]) == (403, "remote_not_allowed")
    _allow(app)
    for body, status in (({}, 422), ({"phone": "not a phone"}, 422), ({"phone": PHONE, "extra": 1}, 422),
                         ({"email": "nope"}, 422)):
        answer = client.post("/api/v1/branches/demo/remote-tickets/code", json=body)
        assert answer.status_code == status and "error" in answer.json, body
    missing = client.post("/api/v1/branches/nowhere/remote-tickets/code", json={"phone": PHONE})
    assert missing.status_code == 404
    assert client.post("/api/v1/tickets/no-such-token/arrived", json={}).status_code == 404


def test_code_requests_are_rate_limited_per_contact_and_per_address(limited_app):
    app, _token = limited_app(JOIN_CODE_CONTACT_RATE_LIMIT="2 per 10 minutes", JOIN_CODE_RATE_LIMIT="4 per 10 minutes")
    _allow(app)
    client = app.test_client()
    url = "/api/v1/branches/demo/remote-tickets/code"
    # The same number, written two ways, counts as one contact.
    assert [client.post(url, json={"phone": p}).status_code for p in (PHONE, "0912-345-678", PHONE)] == [202, 202, 429]
    # Other numbers from the same address, each once: the address's limit ends them.
    others = [client.post(url, json={"phone": f"+88691200{n:04d}"}).status_code for n in range(1, 4)]
    assert others[0] == 202 and others[-1] == 429


def test_join_page_shows_services_and_is_403_where_not_allowed(app, client, seeded):
    refused = client.get("/j/demo")
    assert refused.status_code == 403 and b"kiosks only" in refused.data
    assert client.get("/j/nowhere").status_code == 404
    _allow(app)
    page = client.get("/j/demo")
    assert page.status_code == 200
    data = page_data(page.data)
    assert data["code_url"] == "/api/v1/branches/demo/remote-tickets/code"
    assert data["join_url"] == "/api/v1/branches/demo/remote-tickets"
    html = page.data.decode()
    assert 'data-ahead-for="A"' in html and "people ahead" in html
    assert 'min="5" max="60"' in html
    assert b'href="/j/demo?lang=en"' in client.get("/b/demo").data  # the booking page links it


def test_tracking_page_of_a_remote_ticket_has_leave_by_and_im_here(app, client, gateway, seeded):
    _allow(app)
    code = _api_code(client, app, gateway)
    ticket = client.post("/api/v1/branches/demo/remote-tickets",
                         json={"service": "C", "phone": PHONE, "code": code, "travel_minutes": 5}).json
    page = client.get(f"/t/{ticket['token']}").data.decode()
    assert re.search(r'id="arrived-button"[^>]*>I(\'|&#39;)m here</button>', page)
    data = page_data(page.encode())
    assert data["arrived_url"] == f"/api/v1/tickets/{ticket['token']}/arrived"
    assert data["status"]["remote"]["travel_minutes"] == 5


def test_here_page_takes_todays_code_only(app, client, seeded):
    _allow(app)
    from queue_app.core.extensions import db

    with app.app_context():
        branch = catalogue.get_branch(db.session, "demo")
        today = numbering.local_day(utcnow(), branch.zone)
        code = remote_rules.here_code(SECRET, branch.id, today)
        old = remote_rules.here_code(SECRET, branch.id, today - timedelta(days=1))
    page = client.get(f"/here/demo/{code}")
    assert page.status_code == 200 and page_data(page.data)["code"] == code
    assert client.get(f"/here/demo/{old}").status_code == 404
    assert client.get("/here/nowhere/ABCDEF").status_code == 404


# --- the branch's set-off margin ----------------------------------------------------------------

def test_the_set_off_margin_is_the_branchs_setting(remote_demo, gateway, api):
    session = remote_demo
    bad = [api.call("PATCH", "/branches/demo", "admin@demo.test", json={"set_off_margin_minutes": value})
           for value in (-1, 61, "five", True)]
    assert [r.status_code for r in bad] == [422] * 4
    assert all(r.json["error"]["code"] for r in bad)
    assert session.get(Branch, catalogue.get_branch(session, "demo").id).set_off_margin_minutes == 5  # unchanged
    changed = api.call("PATCH", "/branches/demo", "admin@demo.test", json={"set_off_margin_minutes": 12})
    assert changed.status_code == 200 and changed.json["set_off_margin_minutes"] == 12
    session.expire_all()
    for i in range(8):  # people already waiting for B (counters 2 and 3, about 20 min each)
        queueing.issue_ticket(session, "demo", "B", now=T0 - timedelta(minutes=8 - i))
    joined = join(session, gateway, travel=15)
    from queue_app.tickets.read_models import ticket_status

    status = ticket_status(session, joined.ticket, now=T0)
    low = status["estimate"]["low"]
    expected = (T0 + timedelta(minutes=max(low - 15 - 12, 0))).astimezone(
        session.get(Branch, joined.ticket.branch_id).zone).strftime("%H:%M")
    assert status["remote"]["leave_by"] == expected
    # The message goes when the low end is within the trip plus 12 minutes, not plus 5.
    due = remote.due_set_off(session, session.get(Branch, joined.ticket.branch_id), T0)
    assert (due != []) == (low <= 15 + 12)
