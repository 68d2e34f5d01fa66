"""Opening a store: engine setup, the schema-version check and migrations.

SQLite (the default) runs in WAL mode with foreign keys on, and every transaction starts with
`BEGIN IMMEDIATE`, so concurrent writers queue on the busy timeout instead of failing on a lock
upgrade. PostgreSQL URLs use psycopg 3. A new, empty database is migrated to the current schema on
first open; an older one is refused until `budgetbench db upgrade`, so an upgrade is always an
explicit act and never a drop-and-recreate.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import ArgumentError, DatabaseError
from sqlalchemy.orm import Session, sessionmaker

from harness.errors import InputError
from harness.paths import default_db_path
from harness.store.limits import check_row
from harness.store.models import Base

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 120
_POSTGRES_MIGRATION_LOCK = 7_236_104_115  # pg_advisory_xact_lock key: one migrator at a time


def resolve_db_url(db: str | None) -> str:
    """Turn `--db`/BUDGETBENCH_DB (a URL or a plain file path) into a SQLAlchemy URL."""
    db = db or os.environ.get("BUDGETBENCH_DB") or str(default_db_path())
    if "://" not in db:
        path = Path(db).expanduser().resolve()
        return f"sqlite:///{path}"
    if db.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + db.split("://", 1)[1]
    return db


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InputError(f"not a database URL: {url}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise InputError(
        f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL"
    )


def _configure_sqlite_connection(dbapi_connection, _record) -> None:
    # Hand transaction control to SQLAlchemy's "begin" event (BEGIN IMMEDIATE, see above).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    _switch_to_wal(cursor)
    cursor.close()


def _switch_to_wal(cursor) -> None:
    """Put the database in WAL mode, waiting while another connection holds a lock.

    SQLite does not wait for the switch: while another connection holds a lock it either raises
    "database is locked" or silently stays in rollback-journal mode, and a process left in that
    mode later gets SQLITE_BUSY at once (deadlock avoidance) instead of waiting its turn.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            mode = None
        if mode in ("wal", "memory"):
            return
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError(f"could not switch to WAL mode (mode {mode})")
        time.sleep(0.05)


def _alembic_config(connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
    assert head is not None
    return head


def _lock_for_migration(connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_MIGRATION_LOCK}
        )


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate the schema to `revision`, keeping every row; returns (before, after)."""
    return _migrate(engine, revision, only_new=False)


def _migrate(engine: Engine, revision: str, *, only_new: bool) -> tuple[str | None, str]:
    """Upgrade in one transaction under a lock, so concurrent first opens create the schema once.

    With `only_new`, only an empty database is migrated; an existing one is left as it is.
    """
    display = engine.url.render_as_string(hide_password=True)
    try:
        with engine.begin() as connection:
            _lock_for_migration(connection)
            before = MigrationContext.configure(connection).get_current_revision()
            if before is None and _budgetbench_tables(connection):
                raise InputError(
                    f"{display}: holds budgetbench tables without a schema version;"
                    " refusing to touch it"
                )
            if before is None and inspect(connection).get_table_names():
                raise InputError(
                    f"{display} is not a budgetbench store (it holds other tables);"
                    " refusing to add budgetbench's tables to it"
                )
            if before is None or not only_new:
                command.upgrade(_alembic_config(connection), revision)
            after = MigrationContext.configure(connection).get_current_revision()
    except DatabaseError as exc:  # unreachable, or (SQLite) a file that is not a database
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise InputError(f"cannot open database {display}: {reason}") from exc
    except CommandError as exc:
        engine.dispose()
        raise InputError(f"cannot migrate {display}: {exc}") from exc
    assert after is not None
    return before, after


def _budgetbench_tables(connection) -> list[str]:
    ours = set(Base.metadata.tables)
    return [t for t in inspect(connection).get_table_names() if t in ours]


class Store:
    """A database of runs. Use `open_store`; sessions come from `session()`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        event.listen(self._sessions, "before_flush", _check_rows)

    @property
    def display_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def session(self) -> Session:
        return self._sessions()

    @property
    def artifact_root(self) -> Path:
        """Where runs of this store keep their files (plots, samples), one folder per run.

        `BUDGETBENCH_ARTIFACT_DIR` if set; else beside a SQLite file (`<db dir>/artifacts`), so a
        database and its files move together; else (PostgreSQL, in-memory SQLite) the user's data
        directory. The store holds each file's path, size and sha256, so a moved or edited file
        is detectable.
        """
        configured = os.environ.get("BUDGETBENCH_ARTIFACT_DIR")
        if configured:
            return Path(configured).expanduser()
        database = self.engine.url.database
        if self.engine.url.get_backend_name() == "sqlite" and database not in (
            None,
            "",
            ":memory:",
        ):
            return Path(database).resolve().parent / "artifacts"
        return default_db_path().parent / "artifacts"

    def dispose(self) -> None:
        self.engine.dispose()


def _check_rows(session: Session, _context, _instances) -> None:
    """Every row is checked against `limits` before a backend sees it (see its docstring)."""
    for row in [*session.new, *session.dirty]:
        check_row(row)


def open_store(db: str | None = None) -> Store:
    """Open the store named by `db`, creating the schema in a new database.

    Raises InputError for an unreachable database or one whose schema is older or newer than
    this budgetbench.
    """
    engine = make_engine(resolve_db_url(db))
    head = head_revision()
    _, current = _migrate(engine, "head", only_new=True)
    if current != head:
        engine.dispose()
        known = {
            rev.revision
            for rev in ScriptDirectory.from_config(_alembic_config(None)).walk_revisions()
        }
        if current in known:
            raise InputError(
                f"database schema is at revision {current}, this budgetbench needs {head}:"
                " run `budgetbench db upgrade`"
            )
        raise InputError(
            f"database schema revision {current} is unknown to this budgetbench (head {head}):"
            " it was written by a newer version"
        )
    return Store(engine)
