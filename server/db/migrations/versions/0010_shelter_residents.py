"""shelter residents: the station of the shelter a resident registered at; multicast batches
keep their recipients' count and lose their user ids once sent or failed for good

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 14:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('resident_registrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('station_id', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_resident_registrations_station_id', ['station_id'],
                              unique=False)
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipient_count', sa.Integer(), nullable=True))
    op.execute("UPDATE outbox SET recipient_count = json_array_length(recipients) "
               "WHERE recipients IS NOT NULL")
    op.execute("UPDATE outbox SET recipients = '[]' "
               "WHERE recipients IS NOT NULL AND state IN ('sent', 'failed')")


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('recipient_count')
    with op.batch_alter_table('resident_registrations', schema=None) as batch_op:
        batch_op.drop_index('ix_resident_registrations_station_id')
        batch_op.drop_column('station_id')
