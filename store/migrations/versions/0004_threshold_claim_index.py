"""the sweep's claim index covers its ORDER BY (fire_at, id)

With `fire_at` alone, PostgreSQL read and sorted every pending threshold sharing a deadline (a monthly
deadline is shared by thousands) before its LIMIT; measured on 10^6 obligations: claim 61 → 4.6 ms.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 07:45:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table('threshold', schema=None) as batch_op:
        batch_op.drop_index('ix_threshold_pending', sqlite_where=PENDING, postgresql_where=PENDING)
        batch_op.create_index('ix_threshold_pending', ['fire_at', 'id'], unique=False, sqlite_where=PENDING,
                              postgresql_where=PENDING)


def downgrade() -> None:
    with op.batch_alter_table('threshold', schema=None) as batch_op:
        batch_op.drop_index('ix_threshold_pending', sqlite_where=PENDING, postgresql_where=PENDING)
        batch_op.create_index('ix_threshold_pending', ['fire_at'], unique=False, sqlite_where=PENDING,
                              postgresql_where=PENDING)
