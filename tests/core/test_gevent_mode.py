"""One instance in gevent mode on SQLite (docs/pages/operating/production.md: `gunicorn -k gevent`,
QUEUE_APP_ASYNC_MODE=gevent), a real process: every request and background replay shares one
thread and takes turns only where it waits. Clients are separate processes, as in
test_production.py: kiosks and counters race over HTTP, a phone follows its ticket over a WebSocket.
"""
import os
import uuid
from datetime import datetime, timezone

import pytest
import requests
from helpers import TEST_CONFIG
from processes import (
    Phone,
    assert_each_ticket_issued_and_called_once,
    counter_worker,
    kiosk_worker,
    run_processes,
)
from servers import cli, free_port, start_gunicorn, stop, wait_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from queue_app import create_app
from queue_app.catalogue import operations as catalogue
from queue_app.core.extensions import db
from queue_app.tickets.models import Ticket

PASSWORD = "gevent-password"
ALL_DAY = {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}

pytestmark = [pytest.mark.sqlite_only, pytest.mark.slow]


def noon_zone(now: datetime) -> str:
    """An IANA zone where it is between 10:00 and 14:00 now (Etc/GMT-8 is UTC+8)."""
    offset = max(-12, min(14, 12 - now.hour))
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


@pytest.fixture(scope="module")
def lobby(tmp_path_factory):
    pytest.importorskip("gevent")
    folder = tmp_path_factory.mktemp("gevent")
    database_url = f"sqlite:///{folder / 'lobby.sqlite'}"
    port = free_port()
    env = {  # production mode, as an operator's shell runs it (no QUEUE_APP_ENV)
        **{k: v for k, v in os.environ.items() if k != "QUEUE_APP_ENV"},
        "QUEUE_APP_DATABASE_URL": database_url, "QUEUE_APP_SECRET_KEY": "gevent-test-secret",
        "QUEUE_APP_BASE_URL": f"http://127.0.0.1:{port}", "QUEUE_APP_RATELIMIT_ENABLED": "0",
        "QUEUE_APP_INSTANCE_PATH": str(folder / "instance"), "QUEUE_APP_MAIL_DRIVER": "console",
    }
    cli(env, "init-db")
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        engine = db.engine
        catalogue.create_staff(db.session, "boss@gevent.test", PASSWORD, "admin", [], name="Boss")
    server = start_gunicorn(env, port, folder / "gevent.log", mode="gevent")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/healthz", server, timeout=60)
        token = requests.post(base + "/api/v1/auth/token", timeout=10,
                              json={"email": "boss@gevent.test", "password": PASSWORD}).json()["token"]
        yield {"base": base, "engine": engine, "staff_token": token, "env": env, "folder": folder}
    finally:
        stop(server)
        with app.app_context():
            db.engine.dispose()


def make_branch(lobby, counters: int) -> dict:
    slug = "g" + uuid.uuid4().hex[:8]
    with Session(lobby["engine"]) as session:
        catalogue.create_branch(session, slug, slug, noon_zone(datetime.now(timezone.utc)), opening_hours=ALL_DAY,
                                country="TW")
        catalogue.create_service(session, slug, "A", "Accounts", expected_minutes=1)
        ids = [catalogue.create_counter(session, slug, f"Counter {n}", ["A"], state="open").id
               for n in range(1, counters + 1)]
        _device, kiosk = catalogue.create_kiosk_device(session, slug, "Lobby kiosk")
    return {"slug": slug, "counters": ids, "kiosk": kiosk}


def test_kiosks_and_counters_in_separate_processes_never_share_a_ticket_in_gevent_mode(lobby):
    branch = make_branch(lobby, counters=6)
    bases = [lobby["base"]]
    kiosks = [(kiosk_worker, bases, branch["kiosk"], branch["slug"], "A", 60) for _ in range(3)]
    counters = [(counter_worker, bases, lobby["staff_token"], counter) for counter in branch["counters"]]
    reports = run_processes(kiosks + counters)

    assert_each_ticket_issued_and_called_once(reports, 180)
    with Session(lobby["engine"]) as session:
        statuses = session.execute(select(Ticket.status, func.count()).where(Ticket.branch.has(slug=branch["slug"]))
                                   .group_by(Ticket.status)).all()
    assert dict(statuses) == {"done": 180}


def test_a_ticket_gets_its_estimate_and_its_phone_hears_the_call_over_a_websocket_in_gevent_mode(lobby):
    branch = make_branch(lobby, counters=1)
    kiosk = {"Authorization": f"Bearer {branch['kiosk']}"}
    first, second = (requests.post(f"{lobby['base']}/api/v1/branches/{branch['slug']}/tickets", json={"service": "A"},
                                   headers=kiosk, timeout=10).json() for _ in range(2))
    assert second["estimate"]["state"] == "waiting" and second["estimate"]["minutes"] > 0
    phone = Phone(lobby["base"], second["token"])
    try:
        staff = {"Authorization": f"Bearer {lobby['staff_token']}"}
        call = f"{lobby['base']}/api/v1/counters/{branch['counters'][0]}/call-next"
        assert requests.post(call, headers=staff, timeout=10).json()["id"] == first["id"]
        requests.post(f"{lobby['base']}/api/v1/tickets/{first['id']}/finish", headers=staff, timeout=10)
        assert requests.post(call, headers=staff, timeout=10).json()["id"] == second["id"]
        assert phone.wait_until(lambda push: push.get("status") == "called", timeout=10), phone.pushes
    finally:
        phone.close()


def test_a_gevent_instance_that_runs_the_timed_jobs_itself_warns_and_one_that_does_not_is_quiet(lobby):
    quiet = (lobby["folder"] / "gevent.log").read_text()
    assert "timed jobs run inside" not in quiet
    port = free_port()
    env = {**lobby["env"], "QUEUE_APP_INSTANCE_PATH": str(lobby["folder"] / "with-jobs")}
    log = lobby["folder"] / "with-jobs.log"
    server = start_gunicorn(env, port, log, mode="gevent", run_scheduler=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", server, timeout=60)
    finally:
        stop(server)
    text = log.read_text()
    assert "timed jobs run inside this gevent process" in text
    assert "queue-app scheduler" in text
