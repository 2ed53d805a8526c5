"""capacity losses kept in the database, for whichever process moves their bookings

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('capacity_losses',
    sa.Column('station_id', sa.String(length=64), nullable=False),
    sa.Column('since', server.db.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('leased_until', server.db.models.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('station_id')
    )


def downgrade() -> None:
    op.drop_table('capacity_losses')
