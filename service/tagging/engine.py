"""The tagging engine: the proposer's signals, a decision policy chosen once per mode, and the LLM adjudicator
for the dimensions the policy leaves open.

- ``embedding``: prototype similarity and keywords through the hand-set prior (no training needed).
- ``learned``: both learned heads (embedding and lexical) stacked by the calibrator; the LLM is never asked.
- ``cascade``: ``learned``, and the LLM is asked only about dimensions whose calibrated probability lies in the
  uncertain band, with the nearest reviewed examples as few-shot evidence, within a token budget that scales
  with the asset (``llm_token_ratio`` × its own tokens).
- ``full``: ``learned``, and the LLM is asked about every open dimension (the "always ask" arm).

Dimensions the file's metadata decides (format, source) are read, never guessed or asked. The LLM's value
fields are enums of the offered candidates, so it cannot name a value outside the taxonomy; its quotes are
checked against the source. If the LLM fails (timeout, HTTP error, invalid JSON twice), the prior decides and
the result says ``llm_unavailable``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np

from service.core.embeddings import Embedder
from service.core.prompts import PromptTemplate
from service.core.taxonomy import Dimension, Taxonomy
from service.core.tokens import count_tokens
from service.llm.gateway import LLMGateway
from service.tagging.adjudicator import Adjudicator, Choices, Question, Usage
from service.tagging.answer import EVIDENCE_MAX_CHARS
from service.tagging.cache import TagCache
from service.tagging.calibration import Calibrator, LLMSignal
from service.tagging.coherence import Coherence
from service.tagging.context import Facts, facts_from_metadata
from service.tagging.examples import ExampleBank
from service.tagging.policy import AskingPolicy, CalibratedPolicy, HandSetPolicy, Policy, Probabilities, Weights
from service.tagging.proposer import Heads, Proposer, Signal, Signals, asset_vector
from service.tagging.quotes import QuoteChecker
from service.tagging.result import Method, Mode, Tag, TaggingResult
from service.tagging.signals import KeywordHit, PrototypeIndex

log = logging.getLogger(__name__)

class TaggingEngine:
    def __init__(self, taxonomy: Taxonomy, embedder: Embedder, *, llm: LLMGateway | None = None,
                 prompt: PromptTemplate | None = None, heads: Heads | None = None,
                 cache: TagCache | None = None, candidates_per_dimension: int = 4,
                 prompt_token_budget: int = 1400, max_windows: int = 3, encoding: str = "cl100k_base",
                 weights: Weights | None = None, max_answer_tokens: int = 700,
                 calibrator: Calibrator | None = None,
                 prototypes: PrototypeIndex | None = None, uncertain_band: tuple[float, float] = (0.2, 0.8),
                 llm_token_ratio: float = 1.5, few_shot: int = 2) -> None:
        """``prototypes``: an index already embedded for this taxonomy (embedding them is the slow part).
        ``prompt_token_budget``: the most one LLM call's prompt may take; the cascade spends at most
        ``llm_token_ratio`` × the asset's own tokens on prompt and answer together."""
        self.taxonomy = taxonomy
        self.embedder = embedder
        self.llm = llm
        self.prompt = prompt
        self.k = candidates_per_dimension
        self.budget = prompt_token_budget
        self.encoding = encoding
        self.weights = weights or Weights()
        self.band = uncertain_band
        self.ratio = llm_token_ratio
        self.few_shot = few_shot
        self.proposer = Proposer(taxonomy, embedder, prototypes)
        self.coherence = Coherence(taxonomy)
        self.adjudicator = Adjudicator(taxonomy, llm, prompt, cache=cache, encoding=encoding, max_windows=max_windows,
                                       max_answer_tokens=max_answer_tokens, embedder_name=embedder.name) \
            if llm is not None and prompt is not None else None
        self.heads: Heads | None = None
        self.calibrator: Calibrator | None = None
        self.install(heads, calibrator)

    @property
    def prototypes(self) -> PrototypeIndex:
        return self.proposer.prototypes

    def install(self, heads: Heads | None, calibrator: Calibrator | None) -> None:
        """What training produced, used from the next call on."""
        self.heads, self.calibrator = heads, calibrator

    @property
    def examples(self) -> ExampleBank | None:
        """The few-shot bank: the reviewed examples the neighbour vote was fitted on."""
        return self.heads.neighbours if self.heads is not None else None

    def policy(self, mode: Mode) -> Policy:
        """The decision policy for ``mode``, chosen once per call."""
        if mode == "embedding":
            return HandSetPolicy(self.weights)
        prior = CalibratedPolicy(self.calibrator, self.weights) if self.calibrator is not None \
            else HandSetPolicy(self.weights, use_heads=True)
        if mode == "learned" or self.adjudicator is None:
            return prior
        return AskingPolicy(prior, None if mode == "full" else self.band)

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
        policy = self.policy(mode)
        hits = self.proposer.keywords.hits(text)
        facts = facts_from_metadata(self.taxonomy, metadata or {})
        signals = self.proposer.signals(text, chunk_vectors, None if mode == "embedding" else self.heads, hits,
                                        facts)
        result = TaggingResult(tags=[], status="llm_off", taxonomy=self.taxonomy.key,
                               prompt_version=self.prompt.version if self.prompt else None,
                               models={"embedder": self.embedder.name, "policy": policy.name})
        known = self._from_metadata(facts, metadata or {})
        fixed = {dim: {k.value for k in known if k.dimension == dim} for dim in {k.dimension for k in known}}
        # only what content can carry: an HCP-only dimension (channel preference, potential tier) describes the
        # doctor, so no asset is tagged with it and the LLM is never asked about it
        priors = {dim.id: policy.prior(dim, signals[dim.id]) for dim in self.taxonomy.for_content()
                  if dim.id not in fixed}
        calibrated = {dim.id for dim in self.taxonomy.dimensions if policy.calibrated(dim)}
        choices: Choices | None = None
        questions = self._questions(policy, priors, fixed, calibrated)
        if questions and self.llm is not None:
            result.models["llm"] = self.llm.model
            # the clock starts at the LLM, as the setting says: the signals' own time is not the LLM's budget
            deadline = None if deadline_s is None else time.monotonic() + deadline_s
            choices = self._adjudicate(text, title, language, chunks, chunk_vectors, questions, content_hash,
                                       result, deadline, cascade=mode == "cascade")
        checker = QuoteChecker(text)
        answered = set(result.asked) if choices is not None else set()
        probs = {dim_id: policy.with_llm(self.taxonomy.dimension(dim_id), prior,
                                         self.llm_signals(self.taxonomy.dimension(dim_id), answered, choices, checker))
                 if dim_id in answered else dict(prior) for dim_id, prior in priors.items()}
        chosen = self.coherence.resolve(probs, self._selector(policy, answered), fixed, calibrated)
        decided = [tag for dim in self.taxonomy.dimensions if dim.id in probs
                   for tag in self._tags(dim, probs[dim.id], chosen[dim.id], priors[dim.id], signals[dim.id], hits,
                                         choices if dim.id in answered else None, checker, chunks, chunk_vectors)]
        result.tags = [*known, *decided]
        return result

    @staticmethod
    def _selector(policy: Policy, answered: set[str]) -> Callable[[Dimension, Probabilities], list[str]]:
        """The values a dimension tags: its best value (a single-valued one) or every value, at or above the
        policy's threshold, most probable first."""
        def select(dim: Dimension, probs: Probabilities) -> list[str]:
            threshold = policy.threshold(dim, dim.id in answered)
            ranked = sorted(probs, key=lambda v: -probs[v])
            return [v for v in (ranked[:1] if dim.cardinality == "single" else ranked) if probs[v] >= threshold]

        return select

    def _questions(self, policy: Policy, priors: dict[str, Probabilities], fixed: dict[str, set[str]],
                   calibrated: set[str]) -> list[Question]:
        """What the LLM is asked: the dimensions the policy wants it for, each with its most probable values,
        less those that contradict what the policy alone would tag (held to the implications): an Oncotinib key
        message is not offered for content tagged Cardiovex, whatever the document tells the model."""
        wanted = [dim for dim in self.taxonomy.dimensions if dim.id in priors and policy.wants_llm(dim, priors[dim.id])]
        if not wanted:  # the default, learned mode asks nothing: no coherence pass for the LLM's sake
            return []
        tagged = self.coherence.resolve({d: dict(p) for d, p in priors.items()}, self._selector(policy, set()),
                                        fixed, calibrated)
        ruled_out = self.coherence.ruled_out
        questions = [self._question(dim, {v: p for v, p in priors[dim.id].items()
                                          if not ruled_out(dim.id, v, tagged, fixed)}) for dim in wanted]
        return [q for q in questions if q.candidates]

    def _question(self, dim: Dimension, prior: Probabilities) -> Question:
        ranked = sorted(prior, key=lambda v: -prior[v])
        # how far the deciding probability is from a coin toss: the best value's for a single-valued
        # dimension, the most doubtful value's for a multi-valued one (smaller: more worth asking)
        deciding = [prior[ranked[0]]] if dim.cardinality == "single" and ranked else [prior[v] for v in ranked]
        return Question(dim, ranked[: self.k], min(abs(p - 0.5) for p in deciding) if deciding else 0.5)

    def _from_metadata(self, facts: Facts, metadata: dict[str, str]) -> list[Tag]:
        """Tags that are facts of the asset (its format, its source): read, not guessed."""
        tags = []
        for dim in self.taxonomy.dimensions:
            if dim.id in facts and dim.from_metadata is not None:
                field_name = dim.from_metadata.field
                tags.append(Tag(dim.id, facts[dim.id], 1.0, "metadata", f"{field_name}: {metadata[field_name]}",
                                evidence_verified=False, needs_review=False))
        return tags

    def _tags(self, dim: Dimension, probs: Probabilities, chosen: list[str], prior: Probabilities,
              signals: dict[str, Signal], hits: dict[tuple[str, str], KeywordHit], choices: Choices | None,
              checker: QuoteChecker, chunks: list[str], chunk_vectors: np.ndarray) -> list[Tag]:
        """The tags of ``chosen`` values, each with its evidence: the LLM's quote where it chose the value and
        the quote is in the source, else the keyword's sentence, else the closest passage."""
        tags = []
        for value in chosen:
            p = probs[value]
            s = signals[value]
            hit = hits.get((dim.id, value))
            evidence, verified = (hit.sentence, True) if hit else (None, False)
            method: Method = "keyword" if hit else "embedding"
            if s.embedding_head is not None or s.lexical_head is not None:
                method = "learned"
            pick = choices.get((dim.id, value)) if choices is not None else None
            if pick is not None:
                method = "llm"
                if checker.contains(pick[1]):
                    evidence, verified = pick[1], True  # an unfound quote is dropped
            if evidence is None:
                evidence, verified = self._best_passage(dim, value, chunks, chunk_vectors), True
            tags.append(Tag(dim.id, value, round(p, 4), method, evidence, verified, needs_review=p < dim.threshold,
                            signals={"prior": round(prior[value], 4), "embedding_z": round(s.embedding_z, 3),
                                     "keyword_hits": s.keyword_hits,
                                     "learned": None if s.embedding_head is None else round(s.embedding_head, 4),
                                     "lexical": None if s.lexical_head is None else round(s.lexical_head, 4)}))
        return tags

    @staticmethod
    def llm_signals(dim: Dimension, asked: set[str], choices: Choices | None, checker: QuoteChecker
                    ) -> dict[str, LLMSignal]:
        """Per value: offered to the LLM?, its confidence if it chose the value, quote found?"""
        if choices is None or dim.id not in asked:
            return {}
        return {v.id: (True, max(choices[(dim.id, v.id)][0], 1e-3), checker.contains(choices[(dim.id, v.id)][1]))
                if (dim.id, v.id) in choices else (True, 0.0, False) for v in dim.values}

    def _best_passage(self, dim: Dimension, value: str, chunks: list[str], chunk_vectors: np.ndarray) -> str:
        """Evidence for a tag the embedding proposed: the start of the chunk closest to the value."""
        protos = self.prototypes
        d = self.taxonomy.dimensions.index(dim)
        v = dim.value_ids.index(value)
        rows = protos.value_rows(d, v)
        vectors = chunk_vectors if chunk_vectors.ndim == 2 else chunk_vectors[None, :]
        best = int((vectors @ protos.matrix[rows].T).max(axis=1).argmax()) if rows.size else 0
        return chunks[min(best, len(chunks) - 1)][:EVIDENCE_MAX_CHARS]

    # --- the LLM -----------------------------------------------------------------------------
    def _adjudicate(self, text: str, title: str, language: str, chunks: list[str], chunk_vectors: np.ndarray,
                    questions: list[Question], content_hash: str | None, result: TaggingResult,
                    deadline: float | None, *, cascade: bool) -> Choices | None:
        assert self.adjudicator is not None
        # the cascade: prompt and answer together within the ratio of the asset's own tokens, the most uncertain
        # dimensions first (those that do not fit are decided by the prior)
        total = int(self.ratio * count_tokens(text, self.encoding)) if cascade else None
        if cascade:
            questions = sorted(questions, key=lambda q: q.margin)
        dims = [q.dimension.id for q in questions]
        bank = self.examples
        shots = bank.nearest(asset_vector(chunk_vectors), dims, k=self.few_shot) if bank is not None and self.few_shot \
            else []
        usage = Usage()
        choices = self.adjudicator.ask(text, title=title, language=language, chunks=chunks, questions=questions,
                                       prompt_budget=self.budget, usage=usage, examples=shots,
                                       content_hash=content_hash, relevance=self._relevance(questions),
                                       one_window=cascade, total_budget=total, deadline=deadline)
        result.prompt_tokens += usage.prompt_tokens
        result.completion_tokens += usage.completion_tokens
        result.llm_calls += usage.calls
        result.llm_error = usage.error
        if choices is None:
            result.status = "llm_off" if usage.error and usage.error.startswith("llm_budget") else "llm_unavailable"
            return None
        result.status = "cached" if usage.cached else "ok"
        result.asked = usage.asked
        return choices

    def _relevance(self, questions: list[Question]) -> Callable[[list[str]], list[float]]:
        """Scores sentences by how much they argue for the offered candidates: the lexical head's weights
        (keyword hits where no head exists)."""
        lexical = self.heads.lexical if self.heads is not None else None
        keywords = self.proposer.keywords

        def score(sentences: list[str]) -> list[float]:
            total = np.zeros(len(sentences), dtype=np.float32)
            sentence_hits: list[dict[tuple[str, str], KeywordHit]] | None = None
            for q in questions:
                head = lexical.heads.get(q.dimension.id) if lexical is not None else None
                for value in q.candidates:
                    if head is not None and value in head.values:
                        s = head.sentence_scores(sentences, value)
                        total += np.maximum(s, 0) / (float(np.abs(s).max()) or 1.0)
                    else:
                        if sentence_hits is None:
                            sentence_hits = [keywords.hits(x) for x in sentences]
                        total += np.asarray([1.0 if (q.dimension.id, value) in h else 0.0 for h in sentence_hits],
                                            dtype=np.float32)
            return total.tolist()

        return score

    def ask_for_training(self, text: str, *, title: str, language: str, chunks: list[str],
                         chunk_vectors: np.ndarray, content_hash: str | None, heads: Heads | None
                         ) -> dict[str, dict[str, LLMSignal]] | None:
        """The LLM's answer on a labelled item, every dimension offered, as calibration features (None when
        the LLM failed)."""
        if self.adjudicator is None:
            return None
        signals: Signals = self.proposer.signals(text, chunk_vectors, heads)
        policy = HandSetPolicy(self.weights, use_heads=True)
        questions = [self._question(dim, policy.prior(dim, signals[dim.id])) for dim in self.taxonomy.dimensions]
        scratch = TaggingResult(tags=[], status="llm_off", taxonomy=self.taxonomy.key, prompt_version=None, models={})
        choices = self._adjudicate(text, title, language, chunks, chunk_vectors, questions, content_hash, scratch,
                                   None, cascade=False)
        if choices is None:
            return None
        checker = QuoteChecker(text)
        asked = {q.dimension.id for q in questions}
        return {dim.id: self.llm_signals(dim, asked, choices, checker) for dim in self.taxonomy.dimensions}
