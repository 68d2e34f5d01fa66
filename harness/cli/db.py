"""`db upgrade`: migrate a store's schema in place (`harness.store.database`)."""

from __future__ import annotations

import click

from harness.cli.options import db_option


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@db_option
def db_upgrade_command(db: str | None) -> None:
    """Migrate the database schema to this budgetbench's version, keeping every row."""
    from harness.store.database import make_engine, resolve_db_url, upgrade

    engine = make_engine(resolve_db_url(db))
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"schema already at revision {after}")
    else:
        click.echo(f"upgraded schema from revision {before or 'empty'} to {after}")
