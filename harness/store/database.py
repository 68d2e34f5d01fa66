"""Opening a store: engine setup, the schema-version check and migrations.

SQLite (the default) runs in WAL mode with foreign keys on, and every transaction starts with
`BEGIN IMMEDIATE`, so concurrent writers queue on the busy timeout instead of failing on a lock
upgrade. PostgreSQL URLs use psycopg 3. A new, empty database is migrated to the current schema on
first open; an older one is refused until `budgetbench db upgrade`, so an upgrade is always an
explicit act and never a drop-and-recreate.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from harness.errors import InputError
from harness.paths import default_db_path
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
    raise InputError(f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL")


def _configure_sqlite_connection(dbapi_connection, _record) -> None:
    # Hand transaction control to SQLAlchemy's "begin" event (BEGIN IMMEDIATE, see above).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


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
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_MIGRATION_LOCK})


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate the schema to `revision`, keeping every row; returns (before, after)."""
    with engine.begin() as connection:
        _lock_for_migration(connection)
        before = MigrationContext.configure(connection).get_current_revision()
        if before is None and _foreign_tables(connection):
            raise InputError("the database holds tables but no budgetbench schema version")
        command.upgrade(_alembic_config(connection), revision)
        after = MigrationContext.configure(connection).get_current_revision()
    assert after is not None
    return before, after


def _foreign_tables(connection) -> list[str]:
    ours = set(Base.metadata.tables)
    return [t for t in inspect(connection).get_table_names() if t in ours]


class Store:
    """A database of runs. Use `open_store`; sessions come from `session()`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def display_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def session(self) -> Session:
        return self._sessions()

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(db: str | None = None) -> Store:
    """Open the store named by `db`, creating the schema in a new database.

    Raises InputError for an unreachable database or one whose schema is older or newer than
    this budgetbench.
    """
    url = resolve_db_url(db)
    engine = make_engine(url)
    head = head_revision()
    try:
        with engine.begin() as connection:
            _lock_for_migration(connection)
            current = MigrationContext.configure(connection).get_current_revision()
            if current is None:
                if _foreign_tables(connection):
                    raise InputError(
                        f"{engine.url.render_as_string()}: holds budgetbench tables without a"
                        " schema version; refusing to touch it"
                    )
                command.upgrade(_alembic_config(connection), "head")
                current = head
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise InputError(f"cannot open database {engine.url.render_as_string()}: {reason}") from exc
    if current != head:
        engine.dispose()
        known = {rev.revision for rev in ScriptDirectory.from_config(_alembic_config(None)).walk_revisions()}
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
