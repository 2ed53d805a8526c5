"""announcements: operators' announcements to districts, situations and stations; the
outbox's multicast recipients

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 14:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db.models


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('announcements',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('municipality', sa.String(length=100), nullable=False),
    sa.Column('districts', sa.JSON(), nullable=False),
    sa.Column('stays', sa.JSON(), nullable=False),
    sa.Column('stations', sa.JSON(), nullable=False),
    sa.Column('text_ja', sa.Text(), nullable=False),
    sa.Column('text_en', sa.Text(), nullable=False),
    sa.Column('drill_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', server.db.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('sent_by', sa.String(length=100), nullable=True),
    sa.Column('sent_at', server.db.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('recipients', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['drill_id'], ['drills.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('announcements', schema=None) as batch_op:
        batch_op.create_index('ix_announcements_municipality_sent', ['municipality', 'sent_at'],
                              unique=False)
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipients', sa.JSON(), nullable=True))
        batch_op.create_index('ix_outbox_multicast_source', ['source'], unique=False,
                              sqlite_where=sa.text('recipients IS NOT NULL'),
                              postgresql_where=sa.text('recipients IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_multicast_source',
                            sqlite_where=sa.text('recipients IS NOT NULL'),
                            postgresql_where=sa.text('recipients IS NOT NULL'))
        batch_op.drop_column('recipients')
    with op.batch_alter_table('announcements', schema=None) as batch_op:
        batch_op.drop_index('ix_announcements_municipality_sent')
    op.drop_table('announcements')
