"""Engine settings per database, applied once when the app is created."""
from sqlalchemy import event
from sqlalchemy.engine import Engine

from queue_app.core.transaction import WRITE_OPTION


def engine_options(database_url: str) -> dict:
    if database_url.startswith("sqlite"):
        # The driver's own timeout is SQLite's busy timeout: wait for the write lock, do not fail.
        return {"connect_args": {"timeout": 30}, "pool_size": 20, "max_overflow": 40}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name != "sqlite" or getattr(engine, "_queue_app_configured", False):
        return
    engine._queue_app_configured = True

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # We issue BEGIN ourselves (below); the driver's implicit transactions get in the way.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # Write transactions take SQLite's write lock up front (see core/transaction.py).
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        # On the driver's connection: the engine's statement machinery cost more than the BEGIN.
        connection.connection.driver_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
