"""Alembic environment of the pgvector store's tables.

They have their own version table (``alembic_version_vectors``), so the vector store can live in the records'
database or in another one, and each is migrated on its own. The dimension of the dense column comes from the
embedder, handed over in ``config.attributes["dim"]`` by :mod:`service.store.pgvector_store`.
"""

from alembic import context
from sqlalchemy import engine_from_config, pool

VERSION_TABLE = "alembic_version_vectors"

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()
        return
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                     poolclass=pool.NullPool)
    with connectable.connect() as conn:
        context.configure(connection=conn, version_table=VERSION_TABLE)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("the pgvector store's migrations run online only (they need the embedder's dimension)")
run_migrations_online()
