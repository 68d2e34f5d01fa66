"""Artifact sizes as 64-bit integers: a checkpoint over 2 GiB overflowed PostgreSQL's INTEGER
(SQLite's INTEGER was always 64 bits, so both backends now hold the same range).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.alter_column("size_bytes", type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.alter_column("size_bytes", type_=sa.Integer(), existing_type=sa.BigInteger())
