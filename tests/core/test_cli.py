from sqlalchemy import select

from queue_app.accounts.models import Staff


def test_init_db_seed_demo_then_a_ticket_is_issued_and_called(tmp_path):
    from helpers import make_app

    app = make_app(tmp_path / "fresh.sqlite")  # an empty file: init-db must build the schema itself
    runner = app.test_cli_runner()
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    seeded = runner.invoke(args=["seed-demo"])
    assert seeded.exit_code == 0, seeded.output
    assert "admin@demo.test" in seeded.output
    kiosk_token = seeded.output.strip().splitlines()[-1].split(": ")[1]
    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0 and "nothing seeded" in again.output

    client = app.test_client()
    issued = client.post("/api/v1/branches/demo/tickets", json={"service": "A"},
                         headers={"Authorization": f"Bearer {kiosk_token}"})
    assert issued.status_code == 201, issued.json
    token = client.post("/api/v1/auth/token", json={"email": "staff1@demo.test", "password": "demo-password"}).json["token"]
    counters = client.get("/api/v1/branches/demo/counters", headers={"Authorization": f"Bearer {token}"}).json
    counter = next(c for c in counters if "A" in c["services"])
    called = client.post(f"/api/v1/counters/{counter['id']}/call-next", headers={"Authorization": f"Bearer {token}"})
    assert called.status_code == 200 and called.json["label"] == issued.json["label"] == "A001"
    with app.app_context():
        from queue_app.core.extensions import db

        db.engine.dispose()


def test_kiosk_token_prints_a_working_token_last(runner, client, seeded):
    result = runner.invoke(args=["kiosk-token", "demo", "--name", "Lobby right"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    issued = client.post("/api/v1/branches/demo/tickets", json={"service": "C"}, headers={"Authorization": f"Bearer {token}"})
    assert issued.status_code == 201
    unknown = runner.invoke(args=["kiosk-token", "nowhere", "--name", "X"])
    assert unknown.exit_code != 0 and "No branch 'nowhere'" in unknown.output


def test_create_staff_takes_a_password_and_refuses_bad_input(app, runner, seeded):
    ok = runner.invoke(args=["create-staff", "New@Demo.test", "--role", "manager", "--branch", "demo",
                             "--password", "a-long-password"])
    assert ok.exit_code == 0, ok.output
    prompted = runner.invoke(args=["create-staff", "p@demo.test", "--branch", "demo"],
                             input="typed-password\ntyped-password\n")
    assert prompted.exit_code == 0, prompted.output
    with app.app_context():
        from queue_app.core.extensions import db

        roles = dict(db.session.execute(select(Staff.email, Staff.role)).all())
    assert roles["new@demo.test"] == "manager" and roles["p@demo.test"] == "staff"
    short = runner.invoke(args=["create-staff", "s@demo.test", "--password", "short"])
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    duplicate = runner.invoke(args=["create-staff", "new@demo.test", "--password", "a-long-password"])
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output


def test_close_day_command(runner, seeded):
    result = runner.invoke(args=["close-day", "demo"])
    assert result.exit_code == 0 and "Closed 0 ticket(s)" in result.output


def test_the_wsgi_entry_point_keeps_start_up_objects_out_of_full_collections(tmp_path):
    """gunicorn imports wsgi.py: what start-up loaded (about 200,000 objects) is frozen, so the
    garbage collector's full passes do not walk it with requests in flight."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "QUEUE_APP_DATABASE_URL": f"sqlite:///{tmp_path / 'app.sqlite'}",
           "QUEUE_APP_SECRET_KEY": "x" * 32, "QUEUE_APP_RUN_SCHEDULER": "0"}
    out = subprocess.run([sys.executable, "-c", "import gc, wsgi; print(gc.get_freeze_count(), len(gc.get_objects()))"],
                         cwd=root, env=env, check=True, capture_output=True, text=True).stdout.split()
    frozen, still_collected = int(out[0]), int(out[1])
    assert frozen > 50_000 and still_collected < frozen / 10
