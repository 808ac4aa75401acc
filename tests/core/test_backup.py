"""queue-app backup while tickets are being written, then restore into a fresh file, and compare."""
import sqlite3
import threading

from helpers import make_app
from sqlalchemy.orm import Session

from queue_app.core.extensions import db
from queue_app.tickets import queueing

TABLES = ("branch", "service", "counter", "staff", "ticket", "ticket_event", "ticket_sequence", "kiosk_device")


def rows(path):
    with sqlite3.connect(path) as con:
        result = {table: con.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in TABLES}
    con.close()
    return result


def test_backup_while_writing_then_restore_gives_the_same_data(app, runner, seeded, db_path, tmp_path):
    with app.app_context():
        engine = db.engine
    stop, busy = threading.Event(), threading.Event()

    def kiosk():
        with Session(engine) as session:
            issued = 0
            while not stop.is_set():
                queueing.issue_ticket(session, "demo", "A")
                issued += 1
                if issued == 20:
                    busy.set()

    writer = threading.Thread(target=kiosk)
    writer.start()
    assert busy.wait(30)  # back up while the kiosk is still issuing
    try:
        backup_path = tmp_path / "backup.sqlite"
        result = runner.invoke(args=["backup", str(backup_path)])
        assert result.exit_code == 0, result.output
    finally:
        stop.set()
        writer.join()
    snapshot = rows(backup_path)
    with sqlite3.connect(backup_path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    # Consistent: every ticket in the copy has its issued event and its number in the sequence row.
    assert len(snapshot["ticket"]) > 0
    issued = {row[1] for row in snapshot["ticket_event"]}
    assert {row[0] for row in snapshot["ticket"]} <= issued

    restored_db = tmp_path / "restored.sqlite"
    restored_app = make_app(restored_db)
    restored = restored_app.test_cli_runner().invoke(args=["restore", str(backup_path), "--yes"])
    assert restored.exit_code == 0, restored.output
    assert rows(restored_db) == snapshot
    with restored_app.app_context():
        db.engine.dispose()
    assert runner.invoke(args=["backup", str(backup_path)]).exit_code != 0  # never overwrites


def test_restore_refuses_a_damaged_file(runner, seeded, tmp_path):
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    result = runner.invoke(args=["restore", str(damaged), "--yes"])
    assert result.exit_code != 0
