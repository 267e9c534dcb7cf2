"""The SQL database: engine, sessions and migrations (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def after_commit(session: Session, effect: Callable[[], None]) -> None:
    """Run ``effect`` once ``session``'s transaction has committed, and never if it rolls back: waking the worker
    for a job, or serving a new taxonomy, must not happen for a write that did not land."""
    session.info.setdefault(_EFFECTS, []).append(effect)


_EFFECTS = "hcp_after_commit"


@event.listens_for(Session, "after_commit")
def _run_effects(session: Session) -> None:
    for effect in session.info.pop(_EFFECTS, []):
        effect()


@event.listens_for(Session, "after_rollback")
def _drop_effects(session: Session) -> None:
    session.info.pop(_EFFECTS, None)


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def redact(url: str) -> str:
    """``url`` with its password masked, for logs and /readyz."""
    return make_url(url).render_as_string(hide_password=True)


def create_db_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL: readers never block the writer; foreign keys are off by default in SQLite.
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10,
                         connect_args={"connect_timeout": 5})


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


class Database:
    """Engine plus session factory."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = create_db_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def migrate(self) -> None:
        upgrade(self.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> float:
        started = time.perf_counter()
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return time.perf_counter() - started

    def check_writable(self) -> None:
        """Raise if the database takes reads but not writes (read-only files or mount, a read-only PostgreSQL
        transaction or standby): an update that matches no row still needs a write transaction, and is rolled
        back. ``ping`` alone said ok while every request failed."""
        with self.engine.connect() as conn, conn.begin() as tx:
            conn.execute(text("UPDATE api_keys SET last_used_at = last_used_at WHERE 1 = 0"))
            tx.rollback()

    def tables(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    def describe(self) -> str:
        """The URL without its password, for logs and /readyz."""
        return redact(self.url)

    def dispose(self) -> None:
        self.engine.dispose()
