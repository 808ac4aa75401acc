"""Rows nearly every request reads and managers rarely change (branches, services, kiosk devices),
kept per process behind one version number.

An issue loaded the calling kiosk, the branch and the service with three ORM queries: about a fifth
of its CPU, for rows that change a few times a month. Here each row is loaded once per process and
version. A request reads the version (one integer, in the transaction it reads in anyway) and, while
it is unchanged, gets its own copy of the row, attached to its session as if loaded, without a
statement. The copy is an ordinary persistent object: its relationships load lazily and a change
to it is written as usual.

The version is the one row of `config_version`. It is raised in the transaction of every flush that
creates, changes or deletes a watched row (a Session hook; columns declared volatile, such as a
kiosk's heartbeat, do not count) and of every bulk UPDATE or DELETE on a watched class that is not
marked volatile-only. So a change committed by any process or instance is seen by the next request
of every other one: deactivating a kiosk takes effect at once, as it did with the query.

A transaction that raised the version (also by the autoflush of a lookup's own query) reads with
queries from then on and keeps nothing: it sees its own uncommitted rows. Without the version row
(a schema not made by the migrations) nothing is kept.
"""
import json
import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import BigInteger, event, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, make_transient_to_detached, mapped_column, scoped_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from queue_app.core.models import Base

T = TypeVar("T")


class ConfigVersion(Base):
    """One row (id 1): raised with every change of a watched row."""

    __tablename__ = "config_version"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)


_TABLE = ConfigVersion.__table__
_READ_VERSION = select(_TABLE.c.version).where(_TABLE.c.id == 1)
_RAISE_VERSION = _TABLE.update().where(_TABLE.c.id == 1).values(version=_TABLE.c.version + 1)
# For session.execute(update(...).execution_options(**VOLATILE_ONLY)): the statement only writes
# volatile columns, so it does not raise the version.
_VOLATILE_OPTION = "row_cache_volatile_only"
VOLATILE_ONLY = {_VOLATILE_OPTION: True}
_READ_KEY, _RAISED_KEY = "row_cache_version", "row_cache_raised"

_watched: dict[type, frozenset[str]] = {}  # class -> its volatile columns
_kept_with: dict[type, tuple[str, ...]] = {}  # class -> relationships to watched rows kept with it
# Per engine (database), then per (class, key): (version, the kept row). Weak keys: a disposed
# app's engine takes its rows along.
_kept: "weakref.WeakKeyDictionary[Engine, dict[tuple, tuple[int, _Kept]]]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def watch(cls: type, *, volatile: tuple[str, ...] = (), keep_with: tuple[str, ...] = ()) -> None:
    """Rows of `cls` may be kept; their changes raise the version, except changes of `volatile`
    columns only (which kept copies may therefore show stale: read those with a query).
    `keep_with`: relationships to rows of watched classes, kept along (a copy has them loaded, as
    the lookup did); a change of such a relationship changes its owner, so it raises the version."""
    _watched[cls] = frozenset(volatile)
    _kept_with[cls] = keep_with


def version(session: Session) -> int | None:
    """The version as this session's transaction sees it, read once per transaction."""
    read = session.info.get(_READ_KEY)
    if read is not None and read[0] is session.get_transaction():
        return read[1]
    current = session.connection().execute(_READ_VERSION).scalar()
    session.info[_READ_KEY] = (session.get_transaction(), current)
    return current


def get(session: Session, cls: type[T], key, load: Callable[[], T | None]) -> T | None:
    """The row of `cls` known by `key` (a value `load` looks it up by), attached to `session`:
    a copy of the kept row while the version is unchanged, else what `load` returns (then kept)."""
    if isinstance(session, scoped_session):
        session = session()  # Flask-SQLAlchemy's db.session is a proxy; work on the real one
    if _raised(session):
        return load()  # this transaction changed watched rows: it reads its own, and keeps nothing
    current = version(session)
    if current is None:
        return load()
    engine = session.get_bind()
    with _lock:
        kept = _kept.get(engine, {}).get((cls, key))
    if kept is not None and kept[0] == current:
        return kept[1].attached(session)
    found = load()
    # The load's autoflush may have written this transaction's changes (and raised the number):
    # then what it found may be uncommitted, and is not kept.
    if found is not None and not _raised(session):
        kept = _Kept.of(found)
        if not _raised(session):  # reading its relationships may have loaded them (and autoflushed)
            with _lock:
                _kept.setdefault(engine, {})[(cls, key)] = (current, kept)
    return found


class _Kept:
    """A row as loaded: a detached object of its column values, its JSON values (dicts, lists)
    as text, and the kept rows of its `keep_with` relationships. A request may change its copy's
    JSON in place, and parsing is a far cheaper deep copy than copy.deepcopy."""

    def __init__(self, cls: type, values: dict, related: dict[str, list["_Kept"]]):
        self.json = {key: json.dumps(value) for key, value in values.items() if isinstance(value, (dict, list))}
        self.row = cls(**{**values, **{key: json.loads(text) for key, text in self.json.items()}})  # none shared
        make_transient_to_detached(self.row)  # clean, with these values as committed
        mapper = inspect(cls)
        self.identity = identity_key(cls, tuple(values[column.key] for column in mapper.primary_key))
        self.related = related

    @classmethod
    def of(cls, found) -> "_Kept":
        mapper = inspect(type(found))
        values = {attr.key: getattr(found, attr.key) for attr in mapper.column_attrs}
        related = {key: [cls.of(row) for row in getattr(found, key)] for key in _kept_with.get(type(found), ())}
        return cls(type(found), values, related)

    def attached(self, session: Session):
        loaded = session.identity_map.get(self.identity)
        if loaded is not None:  # this session has the row already (and perhaps changed it)
            return loaded
        row = session.merge(self.row, load=False)  # persistent, no statement; the kept one stays detached
        for key, text in self.json.items():
            set_committed_value(row, key, json.loads(text))
        for key, rows in self.related.items():
            set_committed_value(row, key, [kept.attached(session) for kept in rows])
        return row


def forget(engine: Engine | None = None) -> None:
    """Drop kept rows (of one database, or all): tests that rewrite rows behind the ORM's back."""
    with _lock:
        if engine is None:
            _kept.clear()
        else:
            _kept.pop(engine, None)


def _raised(session: Session) -> bool:
    """Whether this session's transaction has raised the version already."""
    transaction = session.get_transaction()
    return transaction is not None and session.info.get(_RAISED_KEY) is transaction


def _raise(session: Session) -> None:
    if _raised(session):  # once per transaction is enough: the number only has to move
        return
    session.connection().execute(_RAISE_VERSION)
    session.info[_RAISED_KEY] = session.get_transaction()


def _changed(obj, volatile: frozenset[str]) -> bool:
    """Whether anything but volatile columns changed (relationships too: a copy lazy-loads them,
    but counting them costs nothing and keeps the rule simple)."""
    state = inspect(obj)
    return any(attr.history.has_changes() for attr in state.attrs if attr.key not in volatile)


def _raise_on_flush(session: Session, _context, _instances) -> None:
    if not _watched or _raised(session):
        return
    for obj in list(session.new) + list(session.deleted):
        if type(obj) in _watched:
            _raise(session)
            return
    for obj in session.dirty:
        volatile = _watched.get(type(obj))
        if volatile is not None and _changed(obj, volatile):
            _raise(session)
            return


def _raise_on_bulk(execute_state) -> None:
    if not (execute_state.is_update or execute_state.is_delete) or execute_state.bind_mapper is None:
        return
    if execute_state.bind_mapper.class_ in _watched and \
            not execute_state.execution_options.get(_VOLATILE_OPTION):
        _raise(execute_state.session)


def install() -> None:
    """The Session hooks that raise the version (idempotent)."""
    if not event.contains(Session, "before_flush", _raise_on_flush):
        event.listen(Session, "before_flush", _raise_on_flush)
        event.listen(Session, "do_orm_execute", _raise_on_bulk)
