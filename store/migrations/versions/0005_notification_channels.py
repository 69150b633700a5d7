"""notification channels: chat hooks, the in-app list, digest preferences, the outbox's rate-limit index

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 21:06:03.998161
"""
from __future__ import annotations

import sqlalchemy as sa
import sqlmodel  # noqa: F401  (autogenerate emits sqlmodel.sql.sqltypes.AutoString)
from alembic import op

import store.types  # noqa: F401

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

HELD = sa.text("state = 'held'")


def upgrade() -> None:
    op.create_table('chat_hook',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('scope', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('secret', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('events', sa.JSON(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('chat_hook', schema=None) as batch_op:
        batch_op.create_index('ix_chat_hook_owner', ['scope', 'owner'], unique=False)

    op.create_table('notification',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('person_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('read_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_key')
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_person', ['person_id', 'id'], unique=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hook_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_outbox_held', ['recipient_id'], unique=False, sqlite_where=HELD, postgresql_where=HELD)
        batch_op.create_index('ix_outbox_sent', ['channel', 'sent_at'], unique=False)
        batch_op.create_foreign_key('fk_outbox_hook_id_chat_hook', 'chat_hook', ['hook_id'], ['id'])

    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_mode', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False,
                                      server_default='immediate'))
        batch_op.add_column(sa.Column('digest_at', sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False,
                                      server_default='08:30'))



def downgrade() -> None:
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_column('digest_at')
        batch_op.drop_column('notify_mode')

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint('fk_outbox_hook_id_chat_hook', type_='foreignkey')
        batch_op.drop_index('ix_outbox_sent')
        batch_op.drop_index('ix_outbox_held', sqlite_where=HELD, postgresql_where=HELD)
        batch_op.drop_column('hook_id')

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_person')

    op.drop_table('notification')
    with op.batch_alter_table('chat_hook', schema=None) as batch_op:
        batch_op.drop_index('ix_chat_hook_owner')

    op.drop_table('chat_hook')
