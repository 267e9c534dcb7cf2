"""The service's tagger: the engine for the active taxonomy, with the heads and calibration trained on reviews.

The engine is swapped whole (new taxonomy, new training), never mutated under a running request."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from service.core.embeddings import Embedder
from service.core.prompts import load_prompt
from service.core.taxonomy import Taxonomy, parse_taxonomy
from service.llm.gateway import LLMGateway
from service.store.db import Database
from service.store.generations import active_taxonomy_source, add_generation, load_generation, serving_state
from service.tagging import training
from service.tagging.cache import TagCache
from service.tagging.calibration import Calibrator
from service.tagging.engine import TaggingEngine
from service.tagging.proposer import Heads, dump_heads, load_heads, parse_heads
from service.tagging.result import LLM_MODES, Mode, TaggingResult
from service.tagging.signals import PrototypeIndex

log = logging.getLogger(__name__)


class Tagger:
    """The engine for the active taxonomy, with the newest model generation trained for it.

    Both live in the database (``service.store.generations``): :meth:`sync` compares them with what this process
    serves, at most every ``check_every_s``, and swaps in a new engine when another process changed either (a
    taxonomy replaced through another replica, a retrain run by the worker)."""

    def __init__(self, taxonomy: Taxonomy, embedder: Embedder, llm: LLMGateway | None, db: Database,
                 training_dir: Path, mode: Mode = "learned", *, uncertain_band: tuple[float, float] = (0.2, 0.8),
                 llm_token_ratio: float = 1.5, few_shot: int = 2, check_every_s: float = 2.0) -> None:
        self.embedder, self.llm, self.db, self.training_dir = embedder, llm, db, training_dir
        self.options = {"uncertain_band": uncertain_band, "llm_token_ratio": llm_token_ratio, "few_shot": few_shot}
        self.default_mode: Mode = mode if (mode not in LLM_MODES or llm is not None) else "learned"
        self.check_every_s = check_every_s
        self._lock = threading.Lock()
        self._checked = time.monotonic()
        state = serving_state(db)
        self.engine, self.generation = self._build(taxonomy, generation=state.generation if state and
                                                   state.taxonomy_key == taxonomy.key else None)

    @property
    def taxonomy(self) -> Taxonomy:
        return self.engine.taxonomy

    def _legacy_paths(self, taxonomy: Taxonomy) -> tuple[Path, Path]:
        """Where releases before model generations kept a retrain's files (read when the database has none)."""
        folder = self.training_dir / taxonomy.key
        return folder / "heads.joblib", folder / "calibrator.joblib"

    def _build(self, taxonomy: Taxonomy, prototypes: PrototypeIndex | None = None,
               generation: int | None = None) -> tuple[TaggingEngine, int | None]:
        heads: Heads | None
        if generation is not None:
            raw_heads, raw_calibrator = load_generation(self.db, generation)
            heads = parse_heads(taxonomy, raw_heads)
            calibrator = Calibrator.loads(taxonomy, raw_calibrator) if heads is not None else None
        else:
            heads_path, cal_path = self._legacy_paths(taxonomy)
            heads = load_heads(taxonomy, heads_path)
            # a calibrator stacks the heads it was fitted with: without them (older files) it would misread
            calibrator = Calibrator.load(taxonomy, cal_path) if heads is not None else None
        engine = TaggingEngine(taxonomy, self.embedder, llm=self.llm, prompt=load_prompt("tagging"),
                               cache=TagCache(self.db), heads=heads, calibrator=calibrator,
                               prototypes=prototypes, **self.options)  # type: ignore[arg-type]
        return engine, generation

    def set_taxonomy(self, taxonomy: Taxonomy) -> None:
        """Serve ``taxonomy`` now (this process made it active); built aside and swapped in one assignment, so a
        call in flight keeps the engine it started with. A new version has no generation yet."""
        with self._lock:
            self.engine, self.generation = self._build(taxonomy)

    def sync(self, *, max_age_s: float | None = None) -> bool:
        """Follow the database when its state was last read more than ``max_age_s`` ago (default
        ``check_every_s``; 0: now): a new active taxonomy or a newer generation builds and swaps in a new engine.
        True when it swapped."""
        age = self.check_every_s if max_age_s is None else max_age_s
        if time.monotonic() - self._checked < age:
            return False
        with self._lock:
            if age and time.monotonic() - self._checked < age:
                return False  # another thread checked while this one waited
            state = serving_state(self.db)
            self._checked = time.monotonic()
            if state is None or (state.taxonomy_key == self.taxonomy.key and state.generation == self.generation):
                return False
            taxonomy = self.taxonomy
            if state.taxonomy_key != taxonomy.key:
                active = active_taxonomy_source(self.db)
                if active is None:
                    return False
                taxonomy = parse_taxonomy(active[1], active[0])
            same = taxonomy.key == self.taxonomy.key
            self.engine, self.generation = self._build(
                taxonomy, prototypes=self.engine.prototypes if same else None, generation=state.generation)
            log.info("now serving taxonomy %s, model generation %s", taxonomy.key, state.generation)
            return True

    def tag(self, text: str, *, title: str, language: str, chunks: Sequence[str], chunk_vectors: np.ndarray,
            content_hash: str | None, metadata: dict[str, str], mode: Mode | None = None,
            deadline_s: float | None = None) -> TaggingResult:
        engine = self.engine  # one engine for the whole call, even if a retrain swaps it meanwhile
        return engine.tag(text, title=title, language=language, chunks=chunks, chunk_vectors=chunk_vectors,
                          content_hash=content_hash, metadata=metadata, mode=mode or self.default_mode,
                          deadline_s=deadline_s)

    def retrain(self, items: Sequence[training.LabelledItem],
                actor: tuple[str, str] = ("system", "worker")) -> dict[str, int]:
        """Fit heads and calibration on reviewed items, store them as a new model generation (every process
        picks it up) and start using it here."""
        current = self.engine
        engine, _ = self._build(current.taxonomy, prototypes=current.prototypes)  # same taxonomy: same prototypes
        fitted = training.fit(engine, items)
        generation = add_generation(self.db, engine.taxonomy.key, dump_heads(fitted.heads), fitted.calibrator.dumps(),
                                    len(items), actor)
        with self._lock:
            self.engine, self.generation = self._build(current.taxonomy, prototypes=current.prototypes,
                                                       generation=generation)
        log.info("retrained on %d reviewed assets in %.1fs: %d heads, %d calibrated dimensions (generation %d)",
                 len(items), fitted.seconds, fitted.heads.count, len(fitted.calibrator.models), generation)
        return {"items": len(items), "heads": fitted.heads.count,
                "calibrated_dimensions": len(fitted.calibrator.models), "generation": generation}
