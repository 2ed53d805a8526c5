"""leases: capacity losses and LINE events held by the process that answers for them;
gateways' clock skew

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
    with op.batch_alter_table('gateways', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clock_skew_s', sa.Float(), nullable=True))
    with op.batch_alter_table('line_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('leased_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('leased_until', server.db.models.UtcDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('line_events', schema=None) as batch_op:
        batch_op.drop_column('leased_until')
        batch_op.drop_column('leased_by')
    with op.batch_alter_table('gateways', schema=None) as batch_op:
        batch_op.drop_column('clock_skew_s')
    op.drop_table('capacity_losses')
