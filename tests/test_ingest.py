"""Ingest into the real stores (SQLite and PostgreSQL, embedded Qdrant): versions, no-ops, bad files."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.ingest import Ingestor
from service.runtime import build_components
from service.settings import Settings
from service.store.models import Asset, AssetVersion, Chunk
from service.store.vectors import Where

from .badfiles import GOOD_PDF, encrypted_pdf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "content"


@pytest.fixture
def stack(tmp_path, database_url):
    settings = Settings(data_dir=tmp_path / "data", llm_mode="off", database_url=database_url)
    components = build_components(settings, with_llm=False)
    yield components, Ingestor.from_settings(components.db, components.vectors, components.embedder, settings)
    components.close()


def counts(components) -> tuple[int, int, int, int]:
    with components.db.session() as s:
        assets = s.scalar(select(func.count()).select_from(Asset))
        versions = s.scalar(select(func.count()).select_from(AssetVersion))
        current_chunks = s.scalar(select(func.count()).select_from(Chunk).join(Asset).where(
            Chunk.version == Asset.current_version))
    return assets, versions, current_chunks, components.vectors.count()


def test_the_sample_repository_ingests_completely_and_a_second_run_changes_nothing(stack):
    components, ingestor = stack
    first = ingestor.ingest_path(SAMPLES)
    assert len(first) == 36 and {o.status for o in first} == {"created"}, [o.error for o in first if o.error]
    assets, versions, chunks, vectors = counts(components)
    assert (assets, versions) == (36, 36)
    assert chunks == vectors == sum(o.chunks for o in first)
    with components.db.session() as s:
        formats = {a.format for a in s.scalars(select(Asset))}
        sources = {a.source for a in s.scalars(select(Asset))}
        statuses = {a.approval_status for a in s.scalars(select(Asset))}
    assert formats == {"pdf", "docx", "pptx", "html", "markdown", "txt", "news"}
    assert sources == {"internal", "external"}
    assert statuses == {"approved", "draft", "in_review", "withdrawn"}
    # Every vector carries what the matching stage filters on.
    hit = components.vectors.search(components.embedder.embed_query("出血风险 bleeding risk"), 1)[0]
    assert {"asset_id", "approval_status", "valid_until", "source", "language", "chunk_id"} <= set(hit.payload)

    second = ingestor.ingest_path(SAMPLES)
    assert {o.status for o in second} == {"unchanged"}
    assert counts(components) == (assets, versions, chunks, vectors)


def test_changed_content_becomes_a_new_version_of_the_same_asset(stack, tmp_path):
    components, ingestor = stack
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLES / "glucora", repo / "glucora")
    first = {o.source_key: o for o in ingestor.ingest_path(repo)}
    key = "glucora/glucora_price_access_en.txt"
    asset_id = first[key].asset_id
    path = repo / key
    path.write_text(path.read_text(encoding="utf-8").replace("about 160 yuan", "about 140 yuan"), encoding="utf-8")
    second = {o.source_key: o for o in ingestor.ingest_path(repo)}
    assert second[key].status == "new_version" and second[key].asset_id == asset_id and second[key].version == 2
    assert all(o.status == "unchanged" for k, o in second.items() if k != key)
    with components.db.session() as s:
        asset = s.get(Asset, asset_id)
        assert [v.version for v in asset.versions] == [1, 2]
        current = [c.text for c in asset.chunks if c.version == 2]
    assert any("about 140 yuan" in t for t in current)
    payload_versions = {h.payload["version"] for h in components.vectors.search(
        components.embedder.embed_query("Glucora out-of-pocket cost"), 50, Where(equals={"asset_id": asset_id}))}
    assert payload_versions == {2}, "vectors of the superseded version are gone"


def test_a_sidecar_change_updates_metadata_in_sql_and_vectors_without_a_new_version(stack, tmp_path):
    components, ingestor = stack
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLES / "cardiovex", repo / "cardiovex")
    ingestor.ingest_path(repo)
    key = "cardiovex/cardiovex_esc_congress_draft_zh.txt"
    sidecar = repo / (key + ".meta.yaml")
    sidecar.write_text(sidecar.read_text(encoding="utf-8").replace("approval_status: draft",
                                                                   "approval_status: approved"), encoding="utf-8")
    outcome = next(o for o in ingestor.ingest_path(repo) if o.source_key == key)
    assert outcome.status == "metadata_updated" and outcome.version == 1
    with components.db.session() as s:
        assert s.get(Asset, outcome.asset_id).approval_status == "approved"
    assert components.vectors.count(Where(equals={"asset_id": outcome.asset_id, "approval_status": "approved"})) > 0
    assert components.vectors.count(Where(equals={"asset_id": outcome.asset_id, "approval_status": "draft"})) == 0


def test_a_scan_over_good_and_bad_files_ingests_the_good_and_lists_the_bad(stack, tmp_path):
    components, ingestor = stack
    repo = tmp_path / "mixed"
    (repo / "sub").mkdir(parents=True)
    shutil.copy(GOOD_PDF, repo / "good.pdf")
    shutil.copy(SAMPLES / "glucora" / "glucora_onset_zh.md", repo / "sub" / "good.md")
    shutil.copy(GOOD_PDF, repo / "sub" / "copy-of-good.pdf")
    (repo / "empty.docx").write_bytes(b"")
    (repo / "locked.pdf").write_bytes(encrypted_pdf())
    (repo / "sub" / "feed.jsonl").write_text('{"id": 1, "title": "ok", "text": "An item."}\nnot json\n',
                                            encoding="utf-8")
    outcomes = {o.source_key: o for o in ingestor.ingest_path(repo)}
    assert outcomes["good.pdf"].status == "created"
    assert outcomes["sub/good.md"].status == "created"
    assert outcomes["sub/copy-of-good.pdf"].status == "duplicate"
    assert outcomes["sub/feed.jsonl#1"].status == "created"
    failed = {o.source_key: o.error.code for o in outcomes.values() if o.status == "failed"}
    assert failed == {"empty.docx": "empty_file", "locked.pdf": "encrypted_file", "sub/feed.jsonl:2": "bad_feed_item"}
    assert counts(components)[0] == 3


def test_cli_ingest_shows_progress_and_a_summary_and_is_idempotent(tmp_path):
    env = {"HCP_DATA_DIR": str(tmp_path / "data"), "HCP_LLM_MODE": "off", "PATH": "/usr/bin:/bin",
           "HF_HUB_OFFLINE": "1", "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "service.cli", "ingest", str(SAMPLES / "oncotinib")]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert first.returncode == 0, first.stderr
    assert "ingest summary" in first.stderr and "created" in first.stderr and "9/9" in first.stderr
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert "unchanged" in second.stderr and "created" not in second.stderr


def test_a_feed_configured_by_url_is_fetched_over_http_and_its_items_ingested(stack):
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    components, ingestor = stack

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(SAMPLES / "news")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        outcomes = ingestor.ingest_feed_urls([f"{base}/medical_news.rss", f"{base}/missing.rss"])
    finally:
        server.shutdown()
        server.server_close()
    created = [o for o in outcomes if o.status == "created"]
    assert len(created) == 3 and all(o.source_key.startswith(f"{base}/medical_news.rss#") for o in created)
    failed = [o for o in outcomes if o.status == "failed"]
    assert len(failed) == 1 and failed[0].error.code == "unreadable_file" and "404" in failed[0].error.message
    with components.db.session() as s:
        assert {(a.source, a.approval_status) for a in s.scalars(select(Asset))} == {("external", "draft")}
