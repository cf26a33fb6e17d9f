"""Scores record what they were computed on and when they changed; indexes for the leaderboard's queries.

* ``scores.provenance`` (JSON): the metrics.json ``provenance`` block (split and prediction hashes,
  evaluator, versions): with the run's image / checkpoint it is the provenance triple, and a
  re-evaluation is a new score of the same run.
* ``scores.updated_at``: set by every upsert; existing rows get their ``created_at``.
* ``ix_runs_benchmark_submission_created`` (``list_runs`` filters on both and sorts newest first) and
  ``ix_scores_run_key`` (the scores of a run: PostgreSQL does not index foreign keys by itself).

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("provenance", sa.JSON()))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE scores SET updated_at = created_at")
    op.create_index("ix_runs_benchmark_submission_created", "runs", ["benchmark", "submission", "created_at"])
    op.create_index("ix_scores_run_key", "scores", ["run_key"])


def downgrade() -> None:
    op.drop_index("ix_scores_run_key", table_name="scores")
    op.drop_index("ix_runs_benchmark_submission_created", table_name="runs")
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("provenance")
