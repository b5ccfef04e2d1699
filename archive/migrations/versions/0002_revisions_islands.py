"""Schema version 2: change revisions for live readers, code size, evaluation start time,
compressed blobs, island migrations.

- runs.revision / nodes.revision: a per-run counter bumped by every write, so a reader (the
  population index of parent selection, a live UI) fetches only the nodes that changed. Existing
  nodes get their id as revision (ids grow with insertion), and each run the largest of them.
- nodes.code_size: bytes of the node's files (MAP-Elites' default descriptor), computed from blobs.
- nodes.started_at: when the evaluation started (set with status `running`).
- blobs.encoding: `raw` for every existing blob; new ones may be `zlib`.
- island_migrations: which node joined which island at which migration epoch.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("blobs", sa.Column("encoding", sa.String(10), nullable=False, server_default="raw"))
    op.add_column("nodes", sa.Column("code_size", sa.Integer(), nullable=True))
    op.add_column("nodes", sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("nodes", sa.Column("started_at", sa.DateTime(), nullable=True))
    op.create_index("ix_nodes_run_revision", "nodes", ["run_id", "revision"])
    op.execute("UPDATE nodes SET revision = id")
    op.execute("UPDATE runs SET revision = COALESCE((SELECT MAX(n.revision) FROM nodes n WHERE n.run_id = runs.id), 0)")
    op.execute(
        "UPDATE nodes SET code_size = (SELECT SUM(LENGTH(b.content)) FROM node_files f "
        "JOIN blobs b ON b.sha256 = f.sha256 WHERE f.node_id = nodes.id)"
    )
    op.create_table(
        "island_migrations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.Integer(), sa.ForeignKey("nodes.id"), nullable=False),
        sa.Column("from_island", sa.Integer(), nullable=False),
        sa.Column("to_island", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("run_id", "epoch", "from_island", name="uq_island_migrations_epoch"),
    )
    op.execute("UPDATE schema_info SET version = 2")


def downgrade() -> None:
    op.drop_table("island_migrations")
    op.drop_index("ix_nodes_run_revision", table_name="nodes")
    for table, column in (
        ("nodes", "started_at"),
        ("nodes", "revision"),
        ("nodes", "code_size"),
        ("blobs", "encoding"),
        ("runs", "revision"),
    ):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
    op.execute("UPDATE schema_info SET version = 1")
