"""The results store's first schema: runs, their per-case results, scores and flattened metric values.

Revision ID: 0001
Revises:
Create Date: 2026-05-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_key", sa.String(128), primary_key=True),
        sa.Column("benchmark", sa.String(), nullable=False),
        sa.Column("submission", sa.String(), nullable=False),
        sa.Column("submission_version", sa.String()),
        sa.Column("submission_kind", sa.String(16)),
        sa.Column("image_ref", sa.String()),
        sa.Column("image_digest", sa.String()),
        sa.Column("checkpoint_hash", sa.String()),
        sa.Column("split_name", sa.String()),
        sa.Column("split_path", sa.String()),
        sa.Column("split_hash", sa.String()),
        sa.Column("inputs_hash", sa.String()),
        sa.Column("runtime", sa.String(16)),
        sa.Column("sandboxed", sa.Boolean()),
        sa.Column("contract", sa.String()),
        sa.Column("batch", sa.Boolean()),
        sa.Column("limits", sa.JSON()),
        sa.Column("seed", sa.BigInteger()),
        sa.Column("hardware", sa.JSON()),
        sa.Column("vsbench_version", sa.String()),
        sa.Column("status", sa.String(16), nullable=False),
        _time("started_at"),
        _time("finished_at"),
        sa.Column("duration_s", sa.Float()),
        sa.Column("n_cases", sa.Integer()),
        sa.Column("n_succeeded", sa.Integer()),
        sa.Column("n_failed", sa.Integer()),
        sa.Column("predictions_path", sa.String()),
        sa.Column("predictions_hash", sa.String()),
        sa.Column("run_record_path", sa.String()),
        sa.Column("logs_path", sa.String()),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
    )
    op.create_table(
        "case_results",
        sa.Column("run_key", sa.String(128), sa.ForeignKey("runs.run_key", ondelete="CASCADE"), primary_key=True),
        sa.Column("case", sa.String(), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("exit_code", sa.Integer()),
        sa.Column("durations", sa.JSON()),
        sa.Column("stdout", sa.Text()),
        sa.Column("stderr", sa.Text()),
        sa.Column("image_digest", sa.String()),
    )
    op.create_table(
        "scores",
        sa.Column("score_key", sa.String(128), primary_key=True),
        sa.Column("run_key", sa.String(128), sa.ForeignKey("runs.run_key", ondelete="CASCADE"), nullable=False),
        sa.Column("evaluator", sa.String(), nullable=False),
        sa.Column("evaluator_version", sa.String()),
        sa.Column("metrics", sa.JSON()),
        sa.Column("metrics_path", sa.String()),
        sa.Column("aggregates", sa.JSON()),
        sa.Column("n_errors", sa.Integer()),
        _time("created_at", nullable=False),
    )
    op.create_table(
        "metric_values",
        sa.Column("score_key", sa.String(128), sa.ForeignKey("scores.score_key", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("scope", sa.String(), primary_key=True),
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("metric", sa.String(), primary_key=True),
        sa.Column("value", sa.Float()),
    )


def downgrade() -> None:
    op.drop_table("metric_values")
    op.drop_table("scores")
    op.drop_table("case_results")
    op.drop_table("runs")
