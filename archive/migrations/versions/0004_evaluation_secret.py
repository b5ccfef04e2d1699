"""Schema version 4: the secret seed of each evaluation stage.

- evaluations.secret: the per-evaluation secret seed drawn on the host for the stage (fresh
  instances, hidden transformations); a replay reuses it. NULL for stages stored before this
  version, whose tasks drew no secret.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("evaluations", sa.Column("secret", sa.BigInteger(), nullable=True))
    op.execute("UPDATE schema_info SET version = 4")


def downgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_column("secret")
    op.execute("UPDATE schema_info SET version = 3")
