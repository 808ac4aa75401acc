"""Branches, services, kiosk devices and staff accounts kept per process behind one version number
(core/row_cache.py): a change committed anywhere counts at the next request, a kept row is handed
out as the session's own copy, and nothing uncommitted is ever kept."""
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from queue_app.accounts import operations as accounts
from queue_app.accounts.models import Staff
from queue_app.catalogue import operations as catalogue
from queue_app.catalogue.models import Branch
from queue_app.core import row_cache
from queue_app.core.errors import Locked, Unauthorized
from queue_app.core.security import token_hash
from queue_app.core.transaction import write_transaction
from queue_app.kiosks import operations as kiosks
from queue_app.kiosks.models import KioskDevice


def _another_process(session: Session) -> Session:
    """A session on its own engine: what another instance of the app writes through."""
    return Session(create_engine(session.get_bind().url))


def _version(session: Session) -> int:
    with Session(session.get_bind()) as fresh:
        return row_cache.version(fresh)


def test_a_kiosk_deactivated_by_another_instance_is_refused_at_its_next_request(api, session):
    """The device-token check reads the kept device; deactivating it elsewhere must count at once."""
    assert api.call("POST", "/branches/demo/tickets", "kiosk", json={"service": "A"}).status_code == 201
    assert api.call("POST", "/branches/demo/tickets", "kiosk", json={"service": "A"}).status_code == 201  # kept now
    device_id = session.scalar(select(KioskDevice.id).where(KioskDevice.token_hash == token_hash(api.kiosk_token)))
    with _another_process(session) as other:
        kiosks.deactivate_device(other, device_id)
        other.get_bind().dispose()
    refused = api.call("POST", "/branches/demo/tickets", "kiosk", json={"service": "A"})
    assert refused.status_code == 401
    assert refused.json["error"]["code"] == "token_invalid"


def test_a_staff_member_changed_by_another_instance_counts_at_their_next_request(api, session):
    """The staff-token check reads the kept account with its branches: taking the branch away,
    deactivating or a new password elsewhere must count at the next request, not at a restart."""
    email = "staff1@demo.test"
    staff_id = session.scalar(select(Staff.id).where(Staff.email == email))
    session.commit()

    def counters():
        return api.call("GET", "/branches/demo/counters", email)

    def elsewhere(**fields):
        with _another_process(session) as other:
            catalogue.update_staff(other, staff_id, **fields)
            other.get_bind().dispose()

    assert counters().status_code == 200 and counters().status_code == 200  # kept now
    elsewhere(branches=[])
    refused = counters()
    assert refused.status_code == 403 and refused.json["error"]["code"] == "other_branch"
    elsewhere(branches=["demo"])
    assert counters().status_code == 200
    elsewhere(name="Renamed")
    assert counters().status_code == 200
    with Session(session.get_bind()) as fresh:
        assert row_cache.get(fresh, Staff, ("id", staff_id), lambda: None).name == "Renamed"
    elsewhere(active=False)
    refused = counters()
    assert refused.status_code == 401 and refused.json["error"]["code"] == "token_invalid"


def test_failed_sign_ins_do_not_count_as_a_change_and_sign_in_reads_them_fresh(session, seeded):
    """Failed attempts and the lockout are volatile: kept copies may show them stale, so sign-in
    must read them anew even when its session holds the account as a kept copy."""
    staff_id = session.scalar(select(Staff.id).where(Staff.email == "staff1@demo.test"))
    session.commit()
    with Session(session.get_bind()) as one:
        for _ in range(2):  # loaded, then kept
            row_cache.get(one, Staff, ("id", staff_id), lambda: one.get(Staff, staff_id))
            one.rollback()
            one.expunge_all()
    before = _version(session)
    with Session(session.get_bind()) as other:
        for _ in range(accounts.LOCK_AFTER):
            with pytest.raises(Unauthorized):
                accounts.authenticate(other, "staff1@demo.test", "wrong password")
    assert _version(session) == before  # nothing kept was dropped
    with Session(session.get_bind()) as mine:
        kept = row_cache.get(mine, Staff, ("id", staff_id), lambda: None)
        assert kept.locked_until is None  # the kept copy is stale here, as allowed
        with pytest.raises(Locked):
            accounts.authenticate(mine, "staff1@demo.test", seeded["password"])


def test_a_branch_changed_elsewhere_is_read_anew(session):
    first = catalogue.get_branch(session, "demo")
    name = first.name
    assert catalogue.get_branch(session, "demo") is first  # the session's own object while it holds it
    session.commit()
    session.expunge_all()
    assert catalogue.get_branch(session, "demo").name == name  # a copy of the kept row
    session.commit()
    with _another_process(session) as other:
        with write_transaction(other):
            catalogue.get_branch(other, "demo").name = "Renamed elsewhere"
        other.get_bind().dispose()
    session.expunge_all()
    assert catalogue.get_branch(session, "demo").name == "Renamed elsewhere"


def test_the_kiosk_heartbeat_does_not_count_as_a_change_but_deactivating_does(session):
    device_id = session.scalar(select(KioskDevice.id).order_by(KioskDevice.id))
    session.commit()
    before = _version(session)
    kiosks.record_heartbeat(session, device_id, {"state": "ok"})
    kiosks.record_page_ping(session, device_id)
    assert _version(session) == before
    kiosks.deactivate_device(session, device_id)
    assert _version(session) == before + 1


def test_each_session_gets_its_own_copy_and_changes_in_place_stay_there(session):
    catalogue.get_branch(session, "demo")  # now kept
    session.commit()
    with Session(session.get_bind()) as one, Session(session.get_bind()) as two:
        mine, theirs = catalogue.get_branch(one, "demo"), catalogue.get_branch(two, "demo")
        assert mine is not theirs
        mine.opening_hours["sun"] = [["01:00", "02:00"]]  # in place, never committed
        assert "sun" not in theirs.opening_hours or theirs.opening_hours["sun"] != [["01:00", "02:00"]]
    with Session(session.get_bind()) as three:
        assert catalogue.get_branch(three, "demo").opening_hours == \
            session.scalar(select(Branch.opening_hours).where(Branch.slug == "demo"))


def test_what_a_transaction_reads_after_its_own_change_is_never_kept(session):
    """A transaction that changed a kept row sees its own uncommitted values: if it rolls back,
    nobody may be handed them."""
    original = catalogue.get_branch(session, "demo").name
    session.commit()
    try:
        with write_transaction(session):
            catalogue.get_branch(session, "demo").name = "Never committed"
            session.flush()
            session.expunge_all()
            assert catalogue.get_branch(session, "demo").name == "Never committed"  # loaded, not kept
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    session.expunge_all()
    with Session(session.get_bind()) as fresh:
        assert catalogue.get_branch(fresh, "demo").name == original


def test_a_change_written_by_the_lookups_own_autoflush_is_never_kept(session):
    """The query that looks a row up flushes the session's pending changes first: what it then
    finds may be this transaction's own uncommitted row."""
    original = session.scalar(select(Branch.name).where(Branch.slug == "demo"))
    session.commit()
    row_cache.forget()  # nothing kept: the lookup below queries
    try:
        with write_transaction(session):
            session.scalar(select(Branch).where(Branch.slug == "demo")).name = "Pending"  # not flushed yet
            assert catalogue.get_branch(session, "demo").name == "Pending"
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    with Session(session.get_bind()) as fresh:
        assert catalogue.get_branch(fresh, "demo").name == original
