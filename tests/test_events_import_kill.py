"""An events import killed with SIGKILL and run again leaves the same table as an uninterrupted one: each batch
commits on its own and events are keyed by their id."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .api_helpers import ROOT, SAMPLES

ROWS = 60_000  # twelve batches: the kill lands after the first commits, well before the last


def _cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "service.cli", *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _table(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, hcp_id, asset_id, action, channel, dwell_seconds, occurred_at "
                            "FROM hcp_events ORDER BY id").fetchall()


@pytest.mark.slow
def test_an_import_killed_half_way_and_run_again_gives_the_same_table(tmp_path: Path) -> None:
    env = {**os.environ, "HCP_DATA_DIR": str(tmp_path / "data"), "HCP_LLM_MODE": "off"}
    ingest = _cli(env, "ingest", str(SAMPLES / "cardiovex" / "cardiovex_real_world_en.md"))
    assert ingest.wait(timeout=300) == 0, ingest.stderr.read() if ingest.stderr else ""
    db = tmp_path / "data" / "hcp.db"
    with sqlite3.connect(db) as conn:
        asset = conn.execute("SELECT id FROM assets").fetchone()[0]
    start = datetime.now(UTC) - timedelta(days=60)
    export = tmp_path / "events.csv"
    with export.open("w", encoding="utf-8") as f:
        f.write("id,hcp_id,asset_id,action,channel,dwell_seconds,occurred_at\n")
        for n in range(ROWS):
            when = (start + timedelta(seconds=30 * n)).isoformat()
            f.write(f"e{n:07d},hcp-{n % 997:04d},{asset},{('opened', 'viewed', 'sent')[n % 3]},online,"
                    f"{n % 300 if n % 3 == 1 else ''},{when}\n")
    first = _cli(env, "events", "import", str(export))
    deadline = time.monotonic() + 300
    stored = 0
    while time.monotonic() < deadline and first.poll() is None:
        try:
            with sqlite3.connect(db, timeout=1) as conn:
                stored = conn.execute("SELECT count(*) FROM hcp_events").fetchone()[0]
        except sqlite3.OperationalError:  # the table does not exist yet, or a write holds the lock
            stored = 0
        if stored:
            break
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert 0 < stored < ROWS, f"the kill came at {stored} of {ROWS} rows: not half way"
    again = _cli(env, "events", "import", str(export))
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    table = _table(db)
    assert len(table) == ROWS and len({row[0] for row in table}) == ROWS
    # the same table as one uninterrupted import into an empty copy of the database
    clean_env = {**env, "HCP_DATA_DIR": str(tmp_path / "clean")}
    (tmp_path / "clean").mkdir()
    with sqlite3.connect(db) as src, sqlite3.connect(tmp_path / "clean" / "hcp.db") as dst:
        src.backup(dst)
        dst.execute("DELETE FROM hcp_events")
    clean = _cli(clean_env, "events", "import", str(export))
    assert clean.wait(timeout=600) == 0
    assert _table(tmp_path / "clean" / "hcp.db") == table
