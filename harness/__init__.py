"""budgetbench's engine: CLI, runner, store, machine fingerprint and bundles.

Importing this package must stay cheap: `budgetbench --help` imports it, so torch, SQLAlchemy and
task code are imported only where they are used.
"""

__version__ = "0.1.0"
