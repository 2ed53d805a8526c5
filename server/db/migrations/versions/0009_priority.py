"""priority: residents granted priority, hold-back rules per municipality, registration references

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-07 14:00:00.000000
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

import server.db.models

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
"""`server.priority.references.ALPHABET`, frozen here as a migration must be."""


def upgrade() -> None:
    op.create_table('priority_residents',
    sa.Column('resident_id', sa.String(length=100), nullable=False),
    sa.Column('reference', sa.String(length=12), nullable=False),
    sa.Column('municipality', sa.String(length=100), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('granted_by', sa.String(length=100), nullable=False),
    sa.Column('granted_at', server.db.models.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('resident_id'),
    sa.UniqueConstraint('reference')
    )
    op.create_table('priority_rules',
    sa.Column('municipality', sa.String(length=100), nullable=False),
    sa.Column('hold_share', sa.Float(), nullable=False),
    sa.Column('release_before_min', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=False),
    sa.Column('updated_at', server.db.models.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('municipality')
    )
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('priority', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    with op.batch_alter_table('resident_registrations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reference', sa.String(length=12), nullable=True))
        batch_op.create_unique_constraint('uq_resident_registrations_reference', ['reference'])
    registrations = sa.table('resident_registrations', sa.column('user_id', sa.String),
                             sa.column('reference', sa.String))
    bind = op.get_bind()
    for (user_id,) in bind.execute(sa.select(registrations.c.user_id)).all():
        code = "".join(secrets.choice(ALPHABET) for _ in range(8))
        bind.execute(registrations.update().where(registrations.c.user_id == user_id)
                     .values(reference=code))


def downgrade() -> None:
    with op.batch_alter_table('resident_registrations', schema=None) as batch_op:
        batch_op.drop_constraint('uq_resident_registrations_reference', type_='unique')
        batch_op.drop_column('reference')
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_column('priority')
    op.drop_table('priority_rules')
    op.drop_table('priority_residents')
