"""Alembic environment: our metadata, the URL given by server.db.migrate.

On PostgreSQL the migration's transaction first takes an advisory lock, so server
processes started together migrate in turn: the first brings the schema to head, the
others then find it there (DDL is transactional, the lock held until commit).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from server.db.models import Base

MIGRATION_LOCK = 0x63676E6D  # "cgnm": one key for chargenet's migrations
config = context.config
engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        context.run_migrations()
engine.dispose()
