import os
import shutil
import tempfile
from pathlib import Path

import pytest
from helpers import AXE, TEST_CONFIG, Receiver, make_app, meta_csrf
from servers import (
    AppServer,
    MailServer,
    PostgresServer,
    RedisServer,
    find_postgres,
    launch_chromium,
    require_binary,
)
from sqlalchemy.orm import Session

from queue_app import create_app
from queue_app.catalogue import operations as catalogue
from queue_app.core.extensions import db
from queue_app.demo.seed import DEMO_PASSWORD, seed_demo_data

__all__ = ["require_binary"]  # for test modules that still import it from here

# Temporary files (each test's SQLite copy, the throwaway PostgreSQL clusters, server folders) in
# memory where the machine has /dev/shm and no TMPDIR is set: on this machine's disk a SQLite test
# ran about 12 % slower and a PostgreSQL database copy took 0.3 s against 0.02 s. pytest's own
# folders follow (the controller's base folder, which pytest-xdist's workers nest in).
if "TMPDIR" not in os.environ and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK):
    tempfile.tempdir = "/dev/shm"

# Production is the app's default mode; tests (and the servers they start, which inherit this
# environment) run in development unless a test asks for production (tests/core/test_production.py).
os.environ.setdefault("QUEUE_APP_ENV", "development")

# QUEUE_APP_TEST_DATABASE=postgresql: the standard `app` / `session` fixtures use a fresh PostgreSQL
# database per test (CREATE DATABASE ... TEMPLATE of one migrated database) instead of a copy of the
# SQLite file. Tests that use the SQLite file itself (db_path, migrated_db, limited_app: servers
# started on the file, backups) or are marked `sqlite_only` are skipped on that pass.
ON_POSTGRES = os.environ.get("QUEUE_APP_TEST_DATABASE", "sqlite").lower() in ("postgresql", "postgres")
SQLITE_FIXTURES = {"db_path", "migrated_db", "limited_app"}


def pytest_collection_modifyitems(config, items):
    if hasattr(config, "workerinput"):
        # Under pytest-xdist, the `slow` tests first (each worker sorts the same way): a
        # minutes-long test started last would leave the other workers idle at the end.
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    if not ON_POSTGRES:
        return
    for item in items:
        if item.get_closest_marker("sqlite_only"):
            item.add_marker(pytest.mark.skip(reason="SQLite-specific (marked sqlite_only)"))
        elif item.get_closest_marker("own_postgres"):
            item.add_marker(pytest.mark.skip(reason="starts its own PostgreSQL stack on every pass; ran on the first"))
        elif SQLITE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.skip(reason="uses the SQLite file directly; runs on the SQLite pass"))


def pytest_configure(config):
    """Compile the translation catalogs as a build does (hatch_build.py): tests read the current .po."""
    config.addinivalue_line("markers", "sqlite_only: SQLite-specific; skipped when QUEUE_APP_TEST_DATABASE=postgresql")
    config.addinivalue_line("markers", "own_postgres: uses PostgreSQL whatever the pass; runs on the SQLite pass only")
    config.addinivalue_line("markers", "slow: half a minute or more (`-m 'not slow'` for a quick run; CI runs all)")
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the controller compiled them
        return
    import importlib.util

    spec = importlib.util.spec_from_file_location("hatch_build", Path(__file__).resolve().parent.parent / "hatch_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.compile_catalogs()


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory):
    """One database migrated by Alembic; each test gets its own copy of the file."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    app = make_app(path)
    with app.app_context():
        from flask_migrate import upgrade

        from queue_app import MIGRATIONS_DIR

        upgrade(directory=str(MIGRATIONS_DIR))
        db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def seeded_db(migrated_db, tmp_path_factory):
    """The migrated database with the demo data, made once; (path, kiosk token). Tests that use
    `seeded` start from a copy of it instead of seeding their own (five password hashes and a dozen
    transactions each). The seed has no dates in it but the audit entries' (when it was made)."""
    path = tmp_path_factory.mktemp("seeded") / "seeded.sqlite"
    shutil.copy(migrated_db, path)
    app = make_app(path)
    with app.app_context():
        token = seed_demo_data()
        db.engine.dispose()
    return path, token


@pytest.fixture
def db_path(request, migrated_db, tmp_path):
    """This test's SQLite file: a copy of the seeded template when the test uses `seeded`, else of
    the migrated one."""
    path = tmp_path / "queue.sqlite"
    wants_seed = "seeded" in request.fixturenames
    shutil.copy(request.getfixturevalue("seeded_db")[0] if wants_seed else migrated_db, path)
    return path


@pytest.fixture(scope="session")
def pg_template(request):
    """PostgreSQL pass: one migrated database that each test's database is created from."""
    from flask_migrate import upgrade

    from queue_app import MIGRATIONS_DIR

    server = request.getfixturevalue("pg_server")
    url = server.create_database("template_migrated")
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
        db.engine.dispose()
    return server


@pytest.fixture(scope="session")
def pg_seeded(pg_template):
    """PostgreSQL: `template_migrated` with the demo data, as `template_seeded`; its kiosk token."""
    from queue_app.realtime.live import publisher

    url = pg_template.create_database("template_seeded", template="template_migrated")
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        token = seed_demo_data()
        publisher.wait_idle()  # no connection may stay open on a template
        db.engine.dispose()
    return token


@pytest.fixture
def app(request):
    if ON_POSTGRES:
        import uuid

        server = request.getfixturevalue("pg_template")
        template = "template_migrated"
        if "seeded" in request.fixturenames:
            request.getfixturevalue("pg_seeded")
            template = "template_seeded"
        name = "t_" + uuid.uuid4().hex[:16]
        url = server.create_database(name, template=template)
        app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    else:
        app = make_app(request.getfixturevalue("db_path"))
    yield app
    from queue_app.tickets import played_queue

    played_queue.wait_idle()  # a background replay has a connection of its own
    if ON_POSTGRES:
        from queue_app.realtime.live import publisher

        publisher.wait_idle()  # it opens connections of its own; let it finish before closing the pool
    with app.app_context():
        db.engine.dispose()
    if ON_POSTGRES:
        server.drop_database(name)  # the cluster stays small: its folder is removed at the end


@pytest.fixture
def seeded(request, app):
    """The demo data (branch `demo`, services A B C, Counters 1-3 open, staff, a kiosk): `app`'s
    database is a copy of a template seeded once per run (seeded_db, pg_seeded)."""
    token = request.getfixturevalue("pg_seeded") if ON_POSTGRES else request.getfixturevalue("seeded_db")[1]
    return {"kiosk_token": token, "password": DEMO_PASSWORD}


@pytest.fixture
def limited_app(tmp_path, seeded_db):
    """Build a seeded app with the rate limiter on and the given limits; returns (app, kiosk token)."""
    built = []

    def build(**limits):
        path = tmp_path / f"limited{len(built)}.sqlite"
        shutil.copy(seeded_db[0], path)
        app = make_app(path, RATELIMIT_ENABLED=True, **limits)
        built.append(app)
        return app, seeded_db[1]

    yield build
    for app in built:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def session(app, seeded):
    """A plain SQLAlchemy session on the test database, for calling domain functions directly."""
    with app.app_context():
        engine = db.engine
    with Session(engine) as session:
        yield session


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class ApiHelper:
    def __init__(self, client, kiosk_token):
        self.client = client
        self.kiosk_token = kiosk_token
        self._tokens = {}

    def token(self, email):
        if email not in self._tokens:
            response = self.client.post("/api/v1/auth/token", json={"email": email, "password": DEMO_PASSWORD})
            assert response.status_code == 200, response.json
            self._tokens[email] = response.json["token"]
        return self._tokens[email]

    def headers(self, email=None):
        if email is None:
            return {}
        if email == "kiosk":
            return {"Authorization": f"Bearer {self.kiosk_token}"}
        return {"Authorization": f"Bearer {self.token(email)}"}

    def call(self, method, path, email=None, **kwargs):
        return self.client.open("/api/v1" + path, method=method, headers=self.headers(email), **kwargs)

    def issue(self, service="A", **body):
        response = self.call("POST", "/branches/demo/tickets", "kiosk", json={"service": service, **body})
        assert response.status_code == 201, response.json
        return response.json

    def counter_id(self, name):
        response = self.call("GET", "/branches/demo/counters", "staff1@demo.test")
        return next(c["id"] for c in response.json if c["name"] == name)


@pytest.fixture
def api(client, seeded):
    return ApiHelper(client, seeded["kiosk_token"])


@pytest.fixture(scope="session")
def chromium_session():
    """One Debian Chromium (Playwright, never a downloaded browser) shared by every browser test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def chromium(chromium_session):
    """The shared browser; each test's pages (contexts) are closed after it, so none outlives its server."""
    yield chromium_session
    for context in list(chromium_session.contexts):
        context.close()


@pytest.fixture
def server(seeded, db_path, tmp_path):
    """`queue-app run` on this test's seeded SQLite file (browser and kiosk tests)."""
    running = AppServer.on_sqlite(db_path, tmp_path / "server.log").start()
    yield running
    running.stop()


@pytest.fixture
def smtp_server():
    """An SMTP server on loopback, not started yet (`mailbox` starts it)."""
    server = MailServer()
    yield server
    server.stop()


@pytest.fixture
def mailbox(smtp_server):
    smtp_server.start()
    return smtp_server


@pytest.fixture
def driver(smtp_server):
    """The app's SMTP mail driver, sending to `smtp_server`."""
    from queue_app.notifications import mail

    return mail.driver_for({"QUEUE_APP_SMTP_URL": smtp_server.url, "QUEUE_APP_MAIL_FROM": "queue@kiosk.test"})


@pytest.fixture
def redis_server(tmp_path):
    """A throwaway redis-server for this test."""
    running = RedisServer(tmp_path)
    yield running
    running.stop()


def pytest_terminal_summary(terminalreporter):
    from browser import SCREENS

    if SCREENS.is_dir() and any(SCREENS.iterdir()):
        terminalreporter.write_line(f"browser test screenshots: {SCREENS}")


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL server for the whole run (each test gets its own database)."""
    bindir = find_postgres()
    if bindir is None:
        require_binary("initdb")  # skips, or fails when services are required
    server = PostgresServer(bindir, max_connections=300)  # the PostgreSQL pass runs threads and servers on it
    yield server
    server.stop()


@pytest.fixture
def pg_app(pg_template, pg_seeded):
    """The app on a fresh, migrated and seeded PostgreSQL database (a copy of `template_seeded`)."""
    import uuid

    name = "t_" + uuid.uuid4().hex[:16]
    url = pg_template.create_database(name, template="template_seeded")
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    yield app
    from queue_app.realtime.live import publisher

    publisher.wait_idle()  # it opens connections of its own; let it finish before closing the pool
    with app.app_context():
        db.engine.dispose()
    pg_template.drop_database(name)


@pytest.fixture
def pg_session(pg_app):
    with pg_app.app_context():
        engine = db.engine
    with Session(engine) as session:
        yield session


@pytest.fixture(scope="session")
def axe_source():
    return AXE.read_text(encoding="utf-8")


@pytest.fixture
def north(session):
    """A second branch, with a counter and a kiosk of its own."""
    catalogue.create_branch(session, "north", "North Branch", "Asia/Taipei")
    catalogue.create_service(session, "north", "A", "Accounts")
    counter = catalogue.create_counter(session, "north", "North 1", ["A"], state="open")
    _device, token = catalogue.create_kiosk_device(session, "north", "North kiosk")
    return {"counter_id": counter.id, "kiosk_token": token}


@pytest.fixture
def kiosk(client, seeded):
    """A browser registered as the demo kiosk; returns its CSRF token."""
    response = client.get(f"/kiosk/demo?device={seeded['kiosk_token']}")
    assert response.status_code == 302
    return meta_csrf(client.get("/kiosk/demo").data)


@pytest.fixture
def receiver():
    made = []

    def start(secret, fail_first=0):
        made.append(Receiver(secret, fail_first))
        return made[-1]

    yield start
    for r in made:
        r.close()
