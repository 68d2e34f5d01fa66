"""The store: SQLAlchemy models, sessions and Alembic migrations (see `database`, `models`)."""

from harness.store.database import Store, open_store

__all__ = ["Store", "open_store"]
