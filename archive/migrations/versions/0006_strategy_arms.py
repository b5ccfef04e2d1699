"""Schema version 6: the search that tunes itself.

- nodes.strategy: the strategy arm that made the child (operator, model, prompt variant,
  temperature) as JSON, and the lessons digest its prompt carried; NULL for the seed and for
  nodes written before version 6.
- runs.failed_arms: proposals that made no child, {iteration: arm key or null}, written in the
  same transaction as `runs.failures`, so the adaptive bandit can be rebuilt from the archive
  and a resumed run numbers its iterations after the last one tried.
- runs.lessons: the run's latest "what worked" memory (agent/lessons.py) as JSON; NULL when none.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.add_column(sa.Column("strategy", sa.JSON(), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("failed_arms", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("lessons", sa.JSON(), nullable=True))
    op.execute("UPDATE schema_info SET version = 6")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("lessons")
        batch.drop_column("failed_arms")
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("strategy")
    op.execute("UPDATE schema_info SET version = 5")
