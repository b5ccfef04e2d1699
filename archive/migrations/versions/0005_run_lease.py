"""Schema version 5: one owner per run.

- runs.owner, owner_host, owner_pid, heartbeat_at: the lease of the process driving the run
  (archive/lease.py). NULL when no process holds it; a stale heartbeat or a dead pid on the same
  host lets the next `clade resume` take it over.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owner", sa.String(100), nullable=True))
        batch.add_column(sa.Column("owner_host", sa.String(255), nullable=True))
        batch.add_column(sa.Column("owner_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE schema_info SET version = 5")


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("owner_pid")
        batch.drop_column("owner_host")
        batch.drop_column("owner")
    op.execute("UPDATE schema_info SET version = 4")
