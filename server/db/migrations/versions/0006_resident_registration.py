"""resident registration: districts per municipality, residents' registrations

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db.models


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('districts',
    sa.Column('municipality', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=20), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('municipality', 'name')
    )
    op.create_table('resident_registrations',
    sa.Column('user_id', sa.String(length=100), nullable=False),
    sa.Column('municipality', sa.String(length=100), nullable=False),
    sa.Column('district', sa.String(length=20), nullable=True),
    sa.Column('stay', sa.String(length=16), nullable=False),
    sa.Column('need_requested', sa.String(length=32), nullable=True),
    sa.Column('consented_at', server.db.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', server.db.models.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id')
    )


def downgrade() -> None:
    op.drop_table('resident_registrations')
    op.drop_table('districts')
