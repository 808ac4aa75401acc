"""Staff sign-in: the lockout (grows with repeated failures, ends by itself, resets on success) and
the password hash at its real cost."""
import re
from datetime import timedelta

import pytest
from helpers import utc

from queue_app.accounts import operations as accounts
from queue_app.core.errors import Locked, Unauthorized

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


def test_passwords_are_hashed_and_checked_with_argon2id_at_the_real_cost(app, api):
    """The other tests run at conftest's cheap PASSWORD_HASH_COST; this one at the app's default:
    argon2-cffi's own defaults (RFC 9106, low memory), for new staff, changed passwords and sign-in
    by token and on the sign-in page."""
    from argon2 import PasswordHasher
    from sqlalchemy import select

    from queue_app.accounts.models import Staff
    from queue_app.core.config import from_environment
    from queue_app.core.extensions import db
    from queue_app.core.security import DEFAULT_HASH_COST

    library = PasswordHasher()
    assert DEFAULT_HASH_COST == f"m={library.memory_cost},t={library.time_cost},p={library.parallelism}"
    assert from_environment(app.instance_path)["PASSWORD_HASH_COST"] == DEFAULT_HASH_COST
    app.config["PASSWORD_HASH_COST"] = DEFAULT_HASH_COST

    def stored_hash():
        with app.app_context():
            return db.session.scalar(select(Staff.password_hash).where(Staff.email == "real@demo.test"))

    created = api.call("POST", "/staff", "admin@demo.test", json={
        "email": "real@demo.test", "password": "a-real-password", "role": "staff", "branches": ["demo"]})
    assert created.status_code == 201, created.json
    first = stored_hash()
    assert first.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    sign_in = api.call("POST", "/auth/token", json={"email": "real@demo.test", "password": "a-real-password"})
    assert sign_in.status_code == 200 and sign_in.json["token"]
    assert api.call("POST", "/auth/token", json={"email": "real@demo.test", "password": "a-wrong-password"}
                    ).status_code == 401
    assert api.call("POST", "/auth/token", json={"email": "ghost@demo.test", "password": "a-real-password"}
                    ).status_code == 401

    changed = api.call("PATCH", f"/staff/{created.json['id']}", "admin@demo.test",
                       json={"password": "another-password"})
    assert changed.status_code == 200
    assert stored_hash() != first and stored_hash().startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    page = app.test_client()
    form = page.get("/login")
    csrf = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', form.data).group(1).decode()
    signed_in = page.post("/login", data={"email": "real@demo.test", "password": "another-password",
                                          "csrf_token": csrf})
    assert signed_in.status_code == 302 and signed_in.headers["Location"].endswith("/staff")
