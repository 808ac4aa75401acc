"""Staff sign-in lockout: grows with repeated failures, ends by itself, resets on success."""
from datetime import timedelta

import pytest
from conftest import utc

from queue_app.core.errors import Locked, Unauthorized
from queue_app.domain import accounts

T0 = utc(2026, 6, 1, 9, 0)


def fail(session, times, now):
    for _ in range(times):
        with pytest.raises(Unauthorized):
            accounts.authenticate(session, "staff1@demo.test", "wrong-password", now=now)


def test_five_failures_lock_the_account_for_a_minute_then_it_opens_again(session):
    fail(session, accounts.LOCK_AFTER, T0)
    with pytest.raises(Locked) as locked:  # even the right password is refused while locked
        accounts.authenticate(session, "staff1@demo.test", "demo-password", now=T0 + timedelta(seconds=30))
    assert locked.value.code == "account_locked" and locked.value.retry_after == 30
    staff = accounts.authenticate(session, "Staff1@Demo.test", "demo-password", now=T0 + timedelta(minutes=1))
    assert (staff.failed_logins, staff.locked_until) == (0, None)


def test_the_lock_doubles_with_each_further_failure_up_to_an_hour(session):
    fail(session, accounts.LOCK_AFTER, T0)
    later = T0 + timedelta(minutes=2)
    fail(session, 1, later)  # the sixth failure: two minutes
    with pytest.raises(Locked) as locked:
        accounts.authenticate(session, "staff1@demo.test", "demo-password", now=later + timedelta(seconds=90))
    assert locked.value.retry_after == 30
    assert accounts.lock_length(30) == accounts.MAX_LOCK


def test_unknown_accounts_are_refused_the_same_way(session):
    with pytest.raises(Unauthorized) as refused:
        accounts.authenticate(session, "ghost@demo.test", "demo-password", now=T0)
    assert refused.value.code == "bad_credentials"


def test_the_api_answers_429_with_retry_after_once_locked(api):
    for _ in range(accounts.LOCK_AFTER):
        assert api.call("POST", "/auth/token", json={"email": "staff2@demo.test", "password": "nope"}).status_code == 401
    locked = api.call("POST", "/auth/token", json={"email": "staff2@demo.test", "password": "demo-password"})
    assert locked.status_code == 429 and locked.json["error"]["code"] == "account_locked"
    assert 0 < int(locked.headers["Retry-After"]) <= 60
