"""The service's tagger: the engine for the active taxonomy, with the heads and calibration trained on reviews.

The engine is swapped whole (new taxonomy, new training), never mutated under a running request."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from service.core.embeddings import Embedder
from service.core.prompts import load_prompt
from service.core.taxonomy import Taxonomy
from service.llm.gateway import LLMGateway
from service.store.db import Database
from service.tagging import training
from service.tagging.cache import TagCache
from service.tagging.calibration import Calibrator
from service.tagging.engine import LLM_MODES, Mode, TaggingEngine, TaggingResult
from service.tagging.proposer import load_heads, save_heads
from service.tagging.signals import PrototypeIndex

log = logging.getLogger(__name__)


class Tagger:
    def __init__(self, taxonomy: Taxonomy, embedder: Embedder, llm: LLMGateway | None, db: Database,
                 training_dir: Path, mode: Mode = "learned", *, uncertain_band: tuple[float, float] = (0.2, 0.8),
                 llm_token_ratio: float = 1.5, few_shot: int = 2) -> None:
        self.embedder, self.llm, self.db, self.training_dir = embedder, llm, db, training_dir
        self.options = {"uncertain_band": uncertain_band, "llm_token_ratio": llm_token_ratio, "few_shot": few_shot}
        self.default_mode: Mode = mode if (mode not in LLM_MODES or llm is not None) else "learned"
        self.engine = self._build(taxonomy)

    @property
    def taxonomy(self) -> Taxonomy:
        return self.engine.taxonomy

    def _paths(self, taxonomy: Taxonomy) -> tuple[Path, Path]:
        folder = self.training_dir / taxonomy.key
        return folder / "heads.joblib", folder / "calibrator.joblib"

    def _build(self, taxonomy: Taxonomy, prototypes: PrototypeIndex | None = None) -> TaggingEngine:
        heads_path, cal_path = self._paths(taxonomy)
        heads = load_heads(taxonomy, heads_path)
        # a calibrator stacks the heads it was fitted with: without them (older files) it would misread
        calibrator = Calibrator.load(taxonomy, cal_path) if heads is not None else None
        return TaggingEngine(taxonomy, self.embedder, llm=self.llm, prompt=load_prompt("tagging"),
                             cache=TagCache(self.db), heads=heads, calibrator=calibrator,
                             prototypes=prototypes, **self.options)  # type: ignore[arg-type]

    def set_taxonomy(self, taxonomy: Taxonomy) -> None:
        # built aside and swapped in one assignment: a call in flight keeps the engine it started with
        self.engine = self._build(taxonomy)

    def tag(self, text: str, *, title: str, language: str, chunks: Sequence[str], chunk_vectors: np.ndarray,
            content_hash: str | None, metadata: dict[str, str], mode: Mode | None = None,
            deadline_s: float | None = None) -> TaggingResult:
        engine = self.engine  # one engine for the whole call, even if a retrain swaps it meanwhile
        return engine.tag(text, title=title, language=language, chunks=chunks, chunk_vectors=chunk_vectors,
                          content_hash=content_hash, metadata=metadata, mode=mode or self.default_mode,
                          deadline_s=deadline_s)

    def retrain(self, items: Sequence[training.LabelledItem]) -> dict[str, int]:
        """Fit heads and calibration on reviewed items, save them and start using them."""
        current = self.engine
        engine = self._build(current.taxonomy, prototypes=current.prototypes)  # same taxonomy: same prototypes
        fitted = training.fit(engine, items)
        heads_path, cal_path = self._paths(engine.taxonomy)
        save_heads(fitted.heads, heads_path)  # with the neighbour bank, which is also the few-shot bank
        fitted.calibrator.save(cal_path)
        self.engine = engine
        log.info("retrained on %d reviewed assets in %.1fs: %d heads, %d calibrated dimensions", len(items),
                 fitted.seconds, fitted.heads.count, len(fitted.calibrator.models))
        return {"items": len(items), "heads": fitted.heads.count,
                "calibrated_dimensions": len(fitted.calibrator.models)}
