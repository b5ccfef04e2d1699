"""Schema version 3: the edit format of each LLM call and whether its reply became a child.

- llm_calls.edit_format: the edit format the reply was asked for (`diff`, `whole`, `crossover`).
- llm_calls.applied: True when the reply became a child, False when it could not be applied,
  NULL when no reply came (transport error) and for calls stored before this version.

Together they give the well-formed rate per model and edit format.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("llm_calls", sa.Column("edit_format", sa.String(50), nullable=True))
    op.add_column("llm_calls", sa.Column("applied", sa.Boolean(), nullable=True))
    op.execute("UPDATE schema_info SET version = 3")


def downgrade() -> None:
    with op.batch_alter_table("llm_calls") as batch:
        batch.drop_column("applied")
        batch.drop_column("edit_format")
    op.execute("UPDATE schema_info SET version = 2")
