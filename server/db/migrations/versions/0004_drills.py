"""drills: a drill's record, its twin stations, drill incidents, residents taking part

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 11:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import server.db.models


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('drills',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('scenario', sa.String(length=200), nullable=False),
    sa.Column('municipalities', sa.JSON(), nullable=False),
    sa.Column('gw_id', sa.String(length=64), nullable=False),
    sa.Column('started_at', server.db.models.UtcDateTime(timezone=True), nullable=False),
    sa.Column('started_by', sa.String(length=100), nullable=False),
    sa.Column('ended_at', server.db.models.UtcDateTime(timezone=True), nullable=True),
    sa.Column('ended_by', sa.String(length=100), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('gw_id')
    )
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('drill_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_stations_drill_id'), ['drill_id'], unique=False)
        batch_op.create_foreign_key('fk_stations_drill_id_drills', 'drills', ['drill_id'], ['id'])
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('drill_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_incidents_drill_id'), ['drill_id'], unique=False)
    with op.batch_alter_table('line_residents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('drill_opt_in', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('line_residents', schema=None) as batch_op:
        batch_op.drop_column('drill_opt_in')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_drill_id'))
        batch_op.drop_column('drill_id')
    with op.batch_alter_table('stations', schema=None) as batch_op:
        batch_op.drop_constraint('fk_stations_drill_id_drills', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_stations_drill_id'))
        batch_op.drop_column('drill_id')
    op.drop_table('drills')
