"""The first schema: machines, runs, scalar measurements and curve points.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "machines",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("hardware_key", sa.String(64), nullable=False),
        sa.Column("software_key", sa.String(64), nullable=False),
        sa.Column("hardware_label", sa.String(500), nullable=False),
        sa.Column("fingerprint", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_machines"),
    )
    op.create_index("ix_machines_hardware_key", "machines", ["hardware_key"])
    op.create_index("ix_machines_software_key", "machines", ["software_key"])
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("suite_version", sa.String(16), nullable=False),
        sa.Column("spec_version", sa.Integer(), nullable=False),
        sa.Column("task_spec_hash", sa.String(64), nullable=False),
        sa.Column("profile", sa.String(64), nullable=False),
        sa.Column("method_name", sa.String(200), nullable=False),
        sa.Column("method_hash", sa.String(64), nullable=False),
        sa.Column("method_description", sa.Text(), nullable=False),
        sa.Column("is_reference_method", sa.Boolean(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("gate_passed", sa.Boolean(), nullable=True),
        sa.Column("gate_reason", sa.Text(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("hyperparameters", sa.JSON(), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("machine_id", sa.String(64), nullable=False),
        sa.Column("hardware_key", sa.String(64), nullable=False),
        sa.Column("software_key", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("wall_s", sa.Float(), nullable=True),
        sa.Column("timed_s", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'invalid')", name="ck_runs_status"
        ),
        sa.ForeignKeyConstraint(
            ["machine_id"], ["machines.id"], name="fk_runs_machine_id_machines"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
    )
    op.create_index(
        "ix_runs_comparability",
        "runs",
        ["task", "task_spec_hash", "profile", "method_hash", "hardware_key"],
    )
    op.create_index("ix_runs_machine_id", "runs", ["machine_id"])
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.Column("higher_is_better", sa.Boolean(), nullable=False),
        sa.Column("samples", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_measurements_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_measurements"),
        sa.UniqueConstraint("run_id", "name", name="uq_measurements_run_id_name"),
    )
    op.create_index("ix_measurements_run_id", "measurements", ["run_id"])
    op.create_table(
        "curve_points",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("metric", sa.String(128), nullable=False),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("x_unit", sa.String(32), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(32), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_curve_points_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_curve_points"),
    )
    op.create_index("ix_curve_points_run_metric", "curve_points", ["run_id", "metric"])


def downgrade() -> None:
    op.drop_table("curve_points")
    op.drop_table("measurements")
    op.drop_table("runs")
    op.drop_table("machines")
