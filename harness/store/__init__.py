"""The store: where every run and machine is kept, and the only code that talks to the database.

`database` opens a store (SQLite or PostgreSQL) and migrates it (`migrations`, never
drop-and-recreate); `models` are the ORM tables and never leave this package; `queries` holds
every read and `runs` every write, each a named function; `records` is what they hand out: a run
as one frozen `RunRecord`, a machine as a `MachineRecord`. No module outside this package imports
SQLAlchemy or the models (`tests/test_store_boundary.py`).
"""

from harness.store.database import Store, open_store

__all__ = ["Store", "open_store"]
