"""The running parts of the service, built once from the settings and shared by every request."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from service.core.embeddings import Embedder, build_embedder
from service.llm.client import LLMClient
from service.llm.gateway import LLMGateway
from service.llm.local_server import GgufPromptCounter, LocalLLMServer
from service.llm.model_files import local_model_path
from service.settings import Settings
from service.store.db import Database
from service.store.disk import DiskSpace
from service.store.factory import build_vector_store
from service.store.taxonomies import activate_from_file
from service.store.vectors import VectorStore
from service.tagging.tagger import Tagger

if TYPE_CHECKING:
    from service.engagement.rules import EngagementRules
    from service.engagement.serving import ServedRanker
    from service.jobs.context import JobContext
    from service.jobs.worker import Worker
    from service.matching.demand_log import DemandLog
    from service.matching.for_hcp import HcpMatcher
    from service.matching.matcher import Matcher
    from service.matching.panel_profiles import HcpPanelPlanner
    from service.matching.panels import PanelPlanner
    from service.matching.talking_points import TalkingPointWriter

log = logging.getLogger(__name__)


@dataclass
class Components:
    settings: Settings
    embedder: Embedder
    vectors: VectorStore
    db: Database
    llm: LLMGateway | None
    tagger: Tagger
    llm_server: LocalLLMServer | None = None
    worker: Worker | None = None
    closed: bool = field(default=False)
    _matcher: Matcher | None = field(default=None, repr=False)
    _writer: TalkingPointWriter | None = field(default=None, repr=False)
    _planner: PanelPlanner | None = field(default=None, repr=False)
    _planner_taxonomy: str = field(default="", repr=False)
    _demand: DemandLog | None = field(default=None, repr=False)
    _hcp_matcher: HcpMatcher | None = field(default=None, repr=False)
    _ranker: ServedRanker | None = field(default=None, repr=False)
    _watch_stop: threading.Event | None = field(default=None, repr=False)

    @property
    def matcher(self) -> Matcher:
        if self._matcher is None:
            from service.core.embeddings import CachedQueries
            from service.matching.matcher import Matcher
            self._matcher = Matcher.from_settings(self.db, self.vectors, CachedQueries(self.embedder), self.settings)
        return self._matcher

    @property
    def disk(self) -> DiskSpace:
        """Free space on the volumes this service writes to, against HCP_MIN_FREE_BYTES."""
        embedded = self.settings.effective_vector_backend == "qdrant-edge"
        return DiskSpace([self.settings.data_dir, self.settings.uploads_dir], self.settings.min_free_bytes,
                         deep=[self.settings.qdrant_path] if embedded else [])

    @property
    def engagement_rules(self) -> EngagementRules:
        from service.engagement.rules import default_rules
        return default_rules(self.settings.engagement_rules_path)

    @property
    def hcp_matcher(self) -> HcpMatcher:
        """The matcher for an HCP named by id: their profile becomes the need (service/matching/for_hcp.py)."""
        if self._hcp_matcher is None:
            from service.matching.for_hcp import HcpMatcher
            self._hcp_matcher = HcpMatcher(self.matcher, self.db, self.engagement_rules, self.ranker)
        return self._hcp_matcher

    @property
    def ranker(self) -> ServedRanker:
        """The engagement ranker; fitted in the background (``watch_state``) and on ``refit()``."""
        if self._ranker is None:
            from service.engagement.serving import ServedRanker
            self._ranker = ServedRanker(self.db, self.engagement_rules)
        return self._ranker

    @property
    def demand(self) -> DemandLog:
        """The counts of what reps asked for (the content-gap report), written in the background."""
        if self._demand is None:
            from service.matching.demand_log import DemandLog
            self._demand = DemandLog(self.db, self.settings.gaps_flush_seconds)
        return self._demand

    @property
    def panels(self) -> PanelPlanner:
        """Built on first use, with the rules checked against the active taxonomy; a taxonomy change
        (``PUT /v1/taxonomy``) drops it so the next plan re-checks them."""
        if self._planner is None or self._planner_taxonomy != self.tagger.taxonomy.key:
            from service.matching.panel_rules import load_panel_rules
            from service.matching.panels import PanelPlanner
            rules = load_panel_rules(self.settings.panel_rules_path, self.tagger.taxonomy)
            self._planner, self._planner_taxonomy = PanelPlanner(self.matcher, rules), self.tagger.taxonomy.key
        return self._planner

    @property
    def hcp_panels(self) -> HcpPanelPlanner:
        """The panel planner for HCPs named by id: their profiles become their needs (panel_profiles.py)."""
        from service.matching.panel_profiles import HcpPanelPlanner
        return HcpPanelPlanner(self.panels, self.db, self.engagement_rules, self.ranker)

    @property
    def talking_points(self) -> TalkingPointWriter:
        if self._writer is None:
            from service.matching.talking_points import TalkingPointWriter
            self._writer = TalkingPointWriter(self.matcher, self.llm,
                                              deadline_s=self.settings.talking_points_deadline_s,
                                              followup_s=self.settings.llm_timeout_s,
                                              followup_ttl_s=self.settings.talking_points_followup_ttl_s)
        return self._writer

    def start_worker(self) -> Worker:
        """The background job worker (idempotent); it first clears vectors a crash may have orphaned."""
        if self.worker is None:
            from service.jobs.handlers import HANDLERS
            from service.jobs.worker import Worker
            from service.store.reconcile import reconcile_at_start

            reconcile_at_start(self.db, self.vectors, self.tagger.taxonomy)
            self.worker = Worker(self.job_context(), HANDLERS).start()
        return self.worker

    def job_context(self) -> JobContext:
        """The parts the worker and its handlers use."""
        from service.ingest import IngestConfig, Ingestor
        from service.jobs.context import JobContext

        def ingestor(actor: tuple[str, str]) -> Ingestor:
            return Ingestor(self.db, self.vectors, self.embedder, IngestConfig.of(self.settings), tagger=self.tagger,
                            actor=actor)

        return JobContext(db=self.db, vectors=self.vectors, embedder=self.embedder, tagger=self.tagger,
                          ingestor=ingestor, poll_s=self.settings.worker_poll_s, lease_s=self.settings.job_lease_s,
                          disk=self.disk)

    def watch_state(self) -> None:
        """A thread that follows the database's active taxonomy and newest model generation every
        ``HCP_STATE_CHECK_S``, so this process serves what another replica or the worker made current (idempotent;
        the worker also checks before each job item)."""
        if self._watch_stop is not None:
            return
        stop = self._watch_stop = threading.Event()

        def follow() -> None:
            while not stop.wait(self.settings.state_check_s):
                try:
                    self.tagger.sync(max_age_s=0)
                except Exception:  # a database blip: the next round tries again
                    log.exception("could not follow the active taxonomy and model generation")

        threading.Thread(target=follow, name="hcp-state-watch", daemon=True).start()

        def refit() -> None:  # at once, then whenever events were added or erased since the last fit
            from service.engagement.records import purge_expired

            while True:
                try:
                    with self.db.session() as s:
                        purge_expired(s, self.settings.event_retention_days)
                except Exception as exc:  # a database that cannot be written: the fit below still reads
                    log.warning("could not remove expired engagement events: %s", exc.__class__.__name__)
                try:
                    self.ranker.refit_if_changed()
                except Exception:  # a database blip or a bad fit: requests keep the previous generation
                    log.exception("could not refit the engagement ranker")
                if stop.wait(self.settings.ranker_refit_s):
                    return

        threading.Thread(target=refit, name="hcp-ranker-refit", daemon=True).start()

    def begin_shutdown(self) -> None:
        """The first thing on SIGTERM: LLM calls are called off (their callers fall back or leave their job item
        for the next start) and the worker takes no new item."""
        if self.llm is not None:
            self.llm.close()
        if self.worker is not None:
            self.worker.stop()

    def close(self, timeout_s: float = 30.0) -> None:
        if self.closed:
            return
        self.closed = True
        if self._watch_stop is not None:
            self._watch_stop.set()
        self.begin_shutdown()
        if self.worker is not None:
            self.worker.close(timeout_s)
        if self._writer is not None:
            self._writer.close()
        if self._demand is not None:
            self._demand.flush()
        self.vectors.close()
        self.db.dispose()
        if self.llm_server is not None:
            self.llm_server.stop(grace_s=1.0)  # nothing to save; a request it still serves would hold it


def build_llm(settings: Settings, base_url: str | None = None) -> LLMGateway | None:
    """The LLM gateway every call goes through (None with the LLM off)."""
    if settings.effective_llm_mode == "off":
        return None
    url = base_url or settings.llm_base_url
    if not url:
        raise RuntimeError("no LLM endpoint: set HCP_LLM_BASE_URL, or HCP_LLM_MODE=local/off")
    # the local server's streamed answers carry no token counts: its own tokenizer counts the prompt
    counter = GgufPromptCounter(local_model_path(settings)) if settings.effective_llm_mode == "local" else None
    client = LLMClient(url, settings.llm_model, api_key=settings.llm_api_key, timeout_s=settings.llm_timeout_s,
                       max_retries=settings.llm_max_retries, structured_mode=settings.structured_output_mode,
                       prompt_counter=counter)
    return LLMGateway(client, concurrency=settings.effective_llm_concurrency,
                      preempt_after_s=settings.llm_preempt_after_s,
                      interactive_timeout_s=settings.llm_interactive_deadline_s,
                      background_timeout_s=settings.llm_timeout_s)


def start_local_llm(settings: Settings) -> LocalLLMServer:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = LocalLLMServer(local_model_path(settings), settings.llm_model, port=settings.llm_local_port,
                            threads=settings.llm_local_threads, n_ctx=settings.llm_local_ctx,
                            log_path=settings.data_dir / "llm-server.log")
    log.info("starting the local LLM server on %s (model %s)", server.base_url, server.model_path.name)
    return server.start(timeout_s=settings.llm_start_timeout_s)


def build_components(settings: Settings, *, with_llm: bool = True) -> Components:
    """Everything the API needs; starts the local LLM server when the settings say ``local``
    (``with_llm=False``: no LLM, for commands that do not need one, such as ingest)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    if settings.migrate_on_start:
        db.migrate()
    embedder = build_embedder(settings)
    vectors = build_vector_store(settings, embedder.dim)
    server: LocalLLMServer | None = None
    try:
        if with_llm and settings.effective_llm_mode == "local":
            server = start_local_llm(settings)
        llm = build_llm(settings, server.base_url if server else None) if with_llm else None
    except BaseException:
        vectors.close()
        db.dispose()
        raise
    try:
        active = activate_from_file(db, settings.taxonomy_path)
        tagger = Tagger(active.taxonomy, embedder, llm, db, settings.training_dir, mode=settings.tagging_mode,
                        uncertain_band=settings.tagging_uncertain_band,
                        llm_token_ratio=settings.tagging_llm_token_ratio, few_shot=settings.tagging_few_shot,
                        check_every_s=settings.state_check_s)
    except BaseException:
        if server is not None:
            server.stop()
        vectors.close()
        db.dispose()
        raise
    return Components(settings=settings, embedder=embedder, vectors=vectors, db=db, llm=llm, tagger=tagger,
                      llm_server=server)
