"""Incidents: a group's successive incidents (the reopen horizon), and why an episode began.

``group_id`` (the group's first incident's id) and ``generation`` number a group's incidents; the
existing incidents of Alertmanager groups are each their group's first. ``follows`` names the
previous incident of the group, ``episode_reason`` why the current episode is a new incident or a
reopened one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.add_column(sa.Column("group_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("generation", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("follows", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("episode_reason", sa.Text(), nullable=True))
    # Until now an Alertmanager incident's id was derived from its groupKey alone: it is its group's.
    op.execute("UPDATE incidents SET group_id = id WHERE group_key IS NOT NULL")
    op.create_index("ix_incidents_group_id_generation", "incidents", ["group_id", "generation"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_incidents_group_id_generation", table_name="incidents")
    with op.batch_alter_table("incidents") as batch_op:
        batch_op.drop_column("episode_reason")
        batch_op.drop_column("follows")
        batch_op.drop_column("generation")
        batch_op.drop_column("group_id")
