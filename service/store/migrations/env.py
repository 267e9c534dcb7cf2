"""Alembic environment: the URL comes from the config object built by service.store.db."""

from alembic import context
from sqlalchemy import engine_from_config, pool, text

from service.store.hcp_models import Base  # the HCP tables too (hcp_models extends models)

config = context.config
target_metadata = Base.metadata
# pg_advisory_lock key held while the records' migrations run (any fixed 64-bit number)
MIGRATION_LOCK = 0x6863700001


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                     poolclass=pool.NullPool)
    with connectable.connect() as connection:
        if connection.dialect.name == "postgresql":
            # replicas that start together migrate one at a time; the others then find nothing left to do
            # (a session lock, so it outlives this commit and ends with the connection)
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()
        # render_as_batch: SQLite can only ALTER tables by copying them; Alembic's batch mode does that.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
