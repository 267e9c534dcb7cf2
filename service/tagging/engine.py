"""The tagging engine: embeddings and keywords propose, learned heads sharpen, the LLM decides.

For each dimension the non-LLM signals give every value a prior probability; the top candidates go
to the LLM in ONE call per asset (per window for long assets, merged after). The LLM answers in a
schema whose value fields are enums of those candidates, so it cannot name a value outside the
taxonomy; its evidence quotes are checked against the source. The decision combines the prior and
the LLM's choice into a confidence; below the dimension's threshold a tag is kept but marked
``needs_review``. If the LLM fails twice (timeout, HTTP error, invalid JSON), the other signals
decide and the result says ``llm_unavailable``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from indexers.document import sha256_hex
from service.core.embeddings import Embedder
from service.core.prompts import PromptTemplate
from service.core.taxonomy import Dimension, Taxonomy
from service.core.tokens import count_tokens, truncate_to_tokens
from service.llm.client import LLMCancelled, LLMError
from service.llm.gateway import LLMGateway, Priority
from service.tagging.answer import EVIDENCE_MAX_CHARS, answer_model
from service.tagging.cache import TagCache, cache_key
from service.tagging.calibration import Calibrator, LLMSignal
from service.tagging.learned import LearnedHeads
from service.tagging.quotes import QuoteChecker
from service.tagging.signals import KeywordHit, KeywordMatcher, PrototypeIndex, standardise

log = logging.getLogger(__name__)

Mode = Literal["embedding", "learned", "llm", "full"]
Method = Literal["llm", "embedding", "keyword", "learned", "metadata", "human"]
Status = Literal["ok", "cached", "llm_unavailable", "llm_off"]


@dataclass
class Candidate:
    dimension: str
    value: str
    prior: float
    embedding_z: float
    keyword_hits: int
    keyword_sentence: str | None
    learned: float | None


@dataclass
class Tag:
    dimension: str
    value: str
    confidence: float
    method: Method
    evidence: str | None
    evidence_verified: bool
    needs_review: bool
    signals: dict[str, float | None] = field(default_factory=dict)


@dataclass
class TaggingResult:
    tags: list[Tag]
    status: Status
    taxonomy: str
    prompt_version: str | None
    models: dict[str, str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    llm_error: str | None = None

    def values(self, dimension: str) -> set[str]:
        return {t.value for t in self.tags if t.dimension == dimension}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


@dataclass
class Weights:
    """The prior before any reviewed examples calibrate it (hand-set on the sample set's scale)."""

    bias: float = -2.2
    embedding_z: float = 1.1
    keyword: float = 1.2  # per hit, up to three
    learned_share: float = 0.7  # weight of a learned head's probability against the rest, when one exists
    llm_chosen: float = 3.0  # added to the logit, scaled by the LLM's confidence
    llm_not_chosen: float = -1.5
    unverified_quote: float = 0.4  # share of the LLM boost kept when its quote is not in the source


class TaggingEngine:
    def __init__(self, taxonomy: Taxonomy, embedder: Embedder, *, llm: LLMGateway | None = None,
                 prompt: PromptTemplate | None = None, heads: LearnedHeads | None = None,
                 cache: TagCache | None = None, candidates_per_dimension: int = 4,
                 prompt_token_budget: int = 1400, max_windows: int = 3, encoding: str = "cl100k_base",
                 weights: Weights | None = None, max_answer_tokens: int = 700,
                 calibrator: Calibrator | None = None, prototypes: PrototypeIndex | None = None) -> None:
        """``prototypes``: an index already embedded for this taxonomy (embedding them is the slow part)."""
        self.taxonomy = taxonomy
        self.embedder = embedder
        self.llm = llm
        self.prompt = prompt
        self.heads = heads
        self.cache = cache
        self.k = candidates_per_dimension
        self.budget = prompt_token_budget
        self.max_windows = max_windows
        self.encoding = encoding
        self.weights = weights or Weights()
        self.calibrator = calibrator
        self.max_answer_tokens = max_answer_tokens
        self.prototypes = prototypes if prototypes is not None and prototypes.taxonomy is taxonomy \
            else PrototypeIndex(taxonomy, embedder)
        self.keywords = KeywordMatcher(taxonomy)

    # --- signals -----------------------------------------------------------------------------
    def signals(self, text: str, chunk_vectors: np.ndarray, *, use_learned: bool = True,
                heads: LearnedHeads | None = None, hits: dict[tuple[str, str], KeywordHit] | None = None
                ) -> dict[str, dict[str, tuple[float, int, float | None]]]:
        """Raw signals per dimension and value: (embedding z-score, keyword hits, learned probability).
        ``heads`` overrides the engine's own (calibration scores held-out examples with other heads);
        ``hits`` are the text's keyword hits when the caller has them already."""
        heads = heads or self.heads
        sims = self.prototypes.scores(chunk_vectors)
        hits = self.keywords.hits(text) if hits is None else hits
        asset_vector = chunk_vectors.mean(axis=0) if chunk_vectors.ndim == 2 else chunk_vectors
        asset_vector = asset_vector / (np.linalg.norm(asset_vector) or 1.0)
        learned = heads.predict(asset_vector) if (heads and use_learned) else {}
        out: dict[str, dict[str, tuple[float, int, float | None]]] = {}
        for dim in self.taxonomy.dimensions:
            z = standardise(sims[dim.id])
            out[dim.id] = {}
            for i, value in enumerate(dim.values):
                hit = hits.get((dim.id, value.id))
                out[dim.id][value.id] = (float(z[i]), hit.count if hit else 0, learned.get((dim.id, value.id)))
        return out

    def candidates(self, text: str, chunk_vectors: np.ndarray, *, use_learned: bool = True,
                   heads: LearnedHeads | None = None) -> dict[str, list[Candidate]]:
        """Every value of every dimension with its prior, best first.

        With learned heads in play and a calibrator fitted for the dimension, the prior is the calibrated
        probability; otherwise the hand-set weights combine embedding and keyword evidence (and blend in
        a learned head's probability where one exists)."""
        w = self.weights
        hits = self.keywords.hits(text)
        signals = self.signals(text, chunk_vectors, use_learned=use_learned, heads=heads, hits=hits)
        out: dict[str, list[Candidate]] = {}
        for dim in self.taxonomy.dimensions:
            cands = []
            for value_id, (z, n_hits, p_learned) in signals[dim.id].items():
                prior = self.calibrator.probability(dim.id, z, n_hits, p_learned) \
                    if (self.calibrator and use_learned) else None
                if prior is None:
                    prior = _sigmoid(w.bias + w.embedding_z * z + w.keyword * min(n_hits, 3))
                    if p_learned is not None:
                        prior = w.learned_share * p_learned + (1 - w.learned_share) * prior
                hit = hits.get((dim.id, value_id))
                cands.append(Candidate(dim.id, value_id, prior, z, n_hits, hit.sentence if hit else None, p_learned))
            out[dim.id] = sorted(cands, key=lambda c: c.prior, reverse=True)
        return out

    # --- the whole decision --------------------------------------------------------------------
    def tag(self, text: str, *, title: str = "", language: str = "en", chunks: Sequence[str] | None = None,
            chunk_vectors: np.ndarray | None = None, content_hash: str | None = None,
            metadata: dict[str, str] | None = None, mode: Mode = "full", deadline_s: float | None = None
            ) -> TaggingResult:
        """``deadline_s``: the most the LLM may take in all (every window and repair), for a person waiting on
        the answer; None for background work, where each call waits the client's own timeout."""
        chunks = list(chunks) if chunks else [text]
        if chunk_vectors is None:
            chunk_vectors = self.embedder.embed_passages(chunks)
        use_learned = mode in ("learned", "full", "llm")
        cands = self.candidates(text, chunk_vectors, use_learned=use_learned)
        result = TaggingResult(tags=[], status="llm_off", taxonomy=self.taxonomy.key,
                               prompt_version=self.prompt.version if self.prompt else None,
                               models={"embedder": self.embedder.name})
        known = self._from_metadata(metadata or {})
        known_dims = {k.dimension for k in known}
        llm_choices: dict[tuple[str, str], tuple[float, str]] | None = None
        if mode in ("llm", "full") and self.llm is not None and self.prompt is not None:
            result.models["llm"] = self.llm.model
            # a dimension the file's metadata already decides is not worth the LLM's tokens
            open_cands = {d: c for d, c in cands.items() if d not in known_dims}
            # the clock starts at the LLM, as the setting says: the signals' own time is not the LLM's budget
            deadline = None if deadline_s is None else time.monotonic() + deadline_s
            llm_choices = self._ask_llm(text, title, language, chunks, open_cands, content_hash, result, deadline)
        decided = self._decide(text, chunks, chunk_vectors, cands, llm_choices, mode)
        result.tags = [*known, *[t for t in decided if t.dimension not in known_dims]]
        return result

    def _from_metadata(self, metadata: dict[str, str]) -> list[Tag]:
        """Tags that are facts of the asset (its format, its source): read, not guessed."""
        tags = []
        for dim in self.taxonomy.dimensions:
            rule = dim.from_metadata
            if rule is None or rule.field not in metadata:
                continue
            value = rule.values.get(str(metadata[rule.field]))
            if value is not None:
                tags.append(Tag(dim.id, value, 1.0, "metadata", f"{rule.field}: {metadata[rule.field]}",
                                evidence_verified=False, needs_review=False))
        return tags

    def llm_signals(self, cands: dict[str, list[Candidate]],
                    llm_choices: dict[tuple[str, str], tuple[float, str]], checker: QuoteChecker
                    ) -> dict[str, dict[str, LLMSignal]]:
        """Per dimension and value: offered to the LLM?, its confidence if it chose the value, quote found?"""
        out: dict[str, dict[str, LLMSignal]] = {}
        for dim_id, dim_cands in cands.items():
            offered = {c.value for c in dim_cands[: self.k]}
            out[dim_id] = {}
            for c in dim_cands:
                choice = llm_choices.get((dim_id, c.value))
                conf, verified = (choice[0], checker.contains(choice[1])) if choice else (0.0, False)
                out[dim_id][c.value] = (c.value in offered, max(conf, 1e-3) if choice else 0.0, verified)
        return out

    def ask_for_training(self, text: str, *, title: str, language: str, chunks: list[str],
                         chunk_vectors: np.ndarray, content_hash: str | None, heads: LearnedHeads | None
                         ) -> dict[str, dict[str, LLMSignal]] | None:
        """The LLM's answer on a labelled item, as calibration features (None when the LLM failed)."""
        if self.llm is None or self.prompt is None:
            return None
        cands = self.candidates(text, chunk_vectors, heads=heads)
        scratch = TaggingResult(tags=[], status="llm_off", taxonomy=self.taxonomy.key,
                                prompt_version=self.prompt.version, models={})
        choices = self._ask_llm(text, title, language, chunks, cands, content_hash, scratch)
        return None if choices is None else self.llm_signals(cands, choices, QuoteChecker(text))

    def _decide(self, text: str, chunks: list[str], chunk_vectors: np.ndarray, cands: dict[str, list[Candidate]],
                llm_choices: dict[tuple[str, str], tuple[float, str]] | None, mode: Mode) -> list[Tag]:
        w = self.weights
        checker = QuoteChecker(text)
        signals = self.llm_signals(cands, llm_choices, checker) if llm_choices is not None else None
        fitted_llm = signals is not None and mode == "full" and self.calibrator is not None
        tags: list[Tag] = []
        for dim in self.taxonomy.dimensions:
            scored: list[tuple[float, Candidate, Method, str | None, bool]] = []
            use_fitted = fitted_llm and self.calibrator is not None and dim.id in self.calibrator.llm_thresholds
            for c in cands[dim.id]:
                logit = _logit(c.prior)
                method: Method = "learned" if c.learned is not None and mode == "learned" else \
                    ("keyword" if c.keyword_hits else "embedding")
                evidence, verified = c.keyword_sentence, c.keyword_sentence is not None
                if llm_choices is not None and signals is not None:
                    offered, conf, quote_found = signals[dim.id][c.value]
                    choice = llm_choices.get((dim.id, c.value))
                    if use_fitted:
                        assert self.calibrator is not None
                        p = self.calibrator.with_llm(dim.id, c.prior, signals[dim.id][c.value])
                        logit = _logit(p if p is not None else c.prior)
                    elif choice is not None:
                        boost = w.llm_chosen * conf * (1.0 if quote_found else w.unverified_quote)
                        logit = w.bias + boost if mode == "llm" else logit + boost
                    elif mode == "llm":
                        logit = w.bias + w.llm_not_chosen
                    elif offered:
                        logit += w.llm_not_chosen
                    if choice is not None:
                        method = "llm"
                        evidence = choice[1] if quote_found else evidence  # an unfound quote is dropped
                        verified = quote_found or evidence is not None
                scored.append((_sigmoid(logit), c, method, evidence, verified))
            scored.sort(key=lambda s: s[0], reverse=True)
            if use_fitted:
                assert self.calibrator is not None
                threshold = self.calibrator.llm_thresholds[dim.id]
            else:
                threshold = self._threshold(dim, mode != "embedding" and llm_choices is None)
            chosen = self._select(dim, scored, threshold)
            for confidence, c, method, evidence, verified in chosen:
                if evidence is None:
                    evidence, verified = self._best_passage(dim, c, chunks, chunk_vectors), True
                tags.append(Tag(dim.id, c.value, round(confidence, 4), method, evidence, verified,
                                needs_review=confidence < dim.threshold,
                                signals={"prior": round(c.prior, 4), "embedding_z": round(c.embedding_z, 3),
                                         "keyword_hits": c.keyword_hits,
                                         "learned": None if c.learned is None else round(c.learned, 4)}))
        return tags

    def _threshold(self, dim: Dimension, calibrated: bool) -> float:
        """The probability a value needs to be selected: fitted per dimension when the calibrated prior
        decides alone (no LLM moved the scores), else the prior's defaults."""
        fitted = self.calibrator.thresholds.get(dim.id) if self.calibrator and calibrated else None
        if fitted is not None:
            return fitted
        return 0.35 if dim.cardinality == "single" else 0.5

    @staticmethod
    def _select(dim: Dimension, scored: list[tuple[float, Candidate, Method, str | None, bool]], threshold: float
                ) -> list[tuple[float, Candidate, Method, str | None, bool]]:
        if not scored:
            return []
        if dim.cardinality == "single":
            return scored[:1] if scored[0][0] >= threshold else []
        return [s for s in scored if s[0] >= threshold]

    def _best_passage(self, dim: Dimension, c: Candidate, chunks: list[str], chunk_vectors: np.ndarray) -> str:
        """Evidence for a tag the embedding proposed: the start of the chunk closest to the value."""
        mask = [i for i, (d, v) in enumerate(self.prototypes.owners)
                if self.taxonomy.dimensions[d].id == dim.id and self.taxonomy.dimensions[d].values[v].id == c.value]
        vectors = chunk_vectors if chunk_vectors.ndim == 2 else chunk_vectors[None, :]
        best = int((vectors @ self.prototypes.matrix[mask].T).max(axis=1).argmax()) if mask else 0
        return chunks[min(best, len(chunks) - 1)][:EVIDENCE_MAX_CHARS]

    # --- the LLM -----------------------------------------------------------------------------
    def _windows(self, text: str, chunks: list[str], overhead: int) -> list[str]:
        room = max(200, self.budget - overhead)
        if count_tokens(text, self.encoding) <= room:
            return [text]
        windows: list[str] = []
        current = ""
        for chunk in chunks:
            candidate = f"{current}\n\n{chunk}" if current else chunk
            if current and count_tokens(candidate, self.encoding) > room:
                windows.append(current)
                current = chunk
            else:
                current = candidate
            if len(windows) == self.max_windows:
                break
        if current and len(windows) < self.max_windows:
            windows.append(current)
        return [truncate_to_tokens(w, room, self.encoding) for w in windows]

    def _ask_llm(self, text: str, title: str, language: str, chunks: list[str], cands: dict[str, list[Candidate]],
                 content_hash: str | None, result: TaggingResult, deadline: float | None = None
                 ) -> dict[tuple[str, str], tuple[float, str]] | None:
        assert self.llm is not None and self.prompt is not None
        # only the dimensions still open: those read from the file's metadata (format, source) are not asked
        dims = [dim for dim in self.taxonomy.dimensions if dim.id in cands]
        offered = {dim.id: [c.value for c in cands[dim.id][: self.k]] for dim in dims}
        lang = "zh" if language in ("zh", "mixed") else "en"
        context_dims = []
        for dim in dims:
            context_dims.append({
                "id": dim.id, "label": dim.label.get(lang), "single": dim.cardinality == "single",
                "candidates": [{"id": v, "meaning": _meaning(dim, v, lang)} for v in offered[dim.id]]})
        model = answer_model(self.taxonomy, offered)
        overhead = count_tokens(str(self.prompt.messages(lang, dimensions=context_dims, title=title, text="")),
                                self.encoding)
        windows = self._windows(text, chunks, overhead)
        key = cache_key(content=content_hash or sha256_hex(text.encode("utf-8")), taxonomy=result.taxonomy,
                        llm=self.llm.model, embedder=self.embedder.name, prompt=self.prompt.version, offered=offered,
                        windows=len(windows))
        cached = self.cache.get(key) if self.cache else None
        if cached is not None:
            result.status = "cached"
            return {(d, v): (conf, quote) for d, v, conf, quote in cached["choices"]}
        merged: dict[tuple[str, str], tuple[float, str]] = {}
        for window in windows:
            messages = self.prompt.messages(lang, dimensions=context_dims, title=title, text=window)
            answer = self._call_with_repair(messages, model, result, deadline)
            if answer is None:
                result.status = "llm_unavailable"
                return None
            for dim_id in offered:
                for choice in getattr(answer, dim_id, None) or []:
                    value = str(choice.value)
                    if not self.taxonomy.has(dim_id, value):  # belt and braces: the enum already forbids it
                        continue
                    previous = merged.get((dim_id, value))
                    if previous is None or choice.confidence > previous[0]:
                        merged[(dim_id, value)] = (float(choice.confidence), str(choice.evidence))
        for dim in self.taxonomy.dimensions:  # a merged single-valued dimension keeps its best value
            if dim.cardinality == "single":
                picks = sorted(((k, v) for k, v in merged.items() if k[0] == dim.id), key=lambda kv: -kv[1][0])
                for k, _ in picks[1:]:
                    del merged[k]
        result.status = "ok"
        if self.cache is not None:
            self.cache.put(key, {"choices": [[d, v, c, q] for (d, v), (c, q) in merged.items()]}, self.llm.model,
                           self.prompt.version, result.prompt_tokens, result.completion_tokens)
        return merged

    def _call_with_repair(self, messages: list[dict[str, str]], model: type[BaseModel],
                          result: TaggingResult, deadline: float | None = None) -> BaseModel | None:
        """The LLM's answer, asked again once with the error when it was not valid JSON for the schema. A
        ``deadline`` means a person waits: the call is interactive and every attempt shares that deadline;
        without one it is background work, each attempt waiting the gateway's background timeout.
        :class:`LLMCancelled` (shutting down) is not a failure to fall back on: it propagates."""
        assert self.llm is not None
        attempt_messages = messages
        priority: Priority = "background" if deadline is None else "interactive"
        for attempt in range(2):
            if deadline is not None and deadline <= time.monotonic():
                result.llm_error = "llm_deadline: the LLM did not finish within the request's deadline"
                log.warning("LLM tagging stopped: %s", result.llm_error)
                return None
            try:
                answer = self.llm.structured(attempt_messages, model, priority=priority, deadline=deadline,
                                             max_tokens=self.max_answer_tokens)
            except LLMCancelled:
                raise
            except LLMError as exc:
                result.llm_calls += exc.code != "llm_deadline"  # still queued at the deadline: never asked
                result.llm_error = f"{exc.code}: {exc}"
                log.warning("LLM tagging attempt %d failed: %s", attempt + 1, result.llm_error)
                if exc.code in ("llm_timeout", "llm_deadline"):
                    return None  # a second try would only wait again
                if exc.code in ("llm_invalid_json", "llm_schema_mismatch"):
                    attempt_messages = [*messages, {"role": "user", "content":
                                        "Your previous answer was not valid JSON for the schema. "
                                        "Answer again with JSON only."}]
                continue
            result.llm_calls += 1
            result.prompt_tokens += answer.usage.prompt_tokens
            result.completion_tokens += answer.usage.completion_tokens
            result.llm_error = None
            return answer.value
        return None


def _meaning(dim: Dimension, value_id: str, language: str) -> str:
    value = dim.value(value_id)
    assert value is not None
    label = value.label.get(language)
    definition = value.definition.get(language)
    return f"{label}. {definition}" if definition and definition != label else label

