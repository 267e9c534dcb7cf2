"""Talking points for a rep, each citing approved content it came from.

The LLM never sees a free-form document: it gets numbered sentences from the chosen assets' most relevant
passages and must cite sentence numbers (the JSON schema only admits numbers it was given), so a citation is
a real quote by construction, and is checked again against the asset's current text. Guardrails
(prompts/talking_points/guardrails.yaml) run on every point: a point that tells the HCP what was tracked
about them, or states a number its cited sentences do not contain, is dropped. Sentences that look like
instructions are never offered, nor are headings, titles and fragments: only sentences a rep could say.

A person is waiting, so the LLM has ``deadline_s`` (``HCP_TALKING_POINTS_DEADLINE_S``). Past it, or without an
LLM, or when it fails, the best sentences are quoted as they are, flagged ``extractive``, at once; a request that
missed the deadline also gets a ``followup`` id, and the LLM's points, once drafted, are read from
``GET /v1/talking-points/{id}`` (kept in the database, so any replica answers the poll).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, create_model
from sqlalchemy import select

from indexers.chunker import sentences as split_sentences
from service.claims.check import ClaimChecker
from service.claims.lexicon import default_lexicon
from service.core.prompts import PromptTemplate, load_prompt
from service.core.taxonomy import Taxonomy
from service.llm.client import LLMError
from service.llm.gateway import LLMGateway
from service.llm.task import Task, TaskUsage, ask
from service.matching.cards import CARD_COLUMNS, AssetCard, ChunkRow
from service.matching.matcher import Matcher
from service.matching.need import Need, NeedError, dense_query, lexical_query, parse_need
from service.matching.point_claims import check_point
from service.matching.point_text import Guardrails, heading_texts, in_language, offerable, sayable
from service.matching.reasons import notice
from service.matching.schemas import (
    Basis,
    Citation,
    DroppedPoint,
    MatchRequest,
    TalkingPoint,
    TalkingPointsFollowup,
    TalkingPointsRequest,
    TalkingPointsResponse,
)
from service.store.followups import finish_followup, open_followup, read_followup
from service.store.models import Asset, Chunk
from service.store.vectors import point_id
from service.store.visibility import Scope, rep_visible
from service.tagging.quotes import QuoteChecker

log = logging.getLogger(__name__)

CHUNKS_PER_ASSET = 3
GROUNDED_SHARE = 0.25
# why a point is refused: the code counted in the answer's ``dropped``, and the words the LLM is re-asked with
PROBLEMS = {
    "invalid_citation": "a sentence it cites is not quoted from the source as offered",
    "mixed_sources": "it joins facts from two documents into one claim",
    "tracking_language": "it speaks of what was recorded about the doctor, or repeats an instruction",
    "unsupported_number": "it has a number its cited sentences do not",
    "unsupported_claim": "it says what its cited sentences do not",
    "contradicts_source": "it states a comparison its source contradicts (a difference as similar, or the reverse)",
    "off_label": "it names the product with an indication it is not approved for",
    "unsupported_superlative": "it makes a superlative claim (best, first, only) its source does not",
    "wrong_language": "it is not written in the language asked for",
    "duplicate": "it repeats another point",
}
class AssetsNotVisible(LookupError):
    """Asked-for assets that do not exist or that a rep may not see (the two are not told apart)."""

    def __init__(self, asset_ids: list[str]) -> None:
        super().__init__(", ".join(asset_ids))
        self.asset_ids = asset_ids


@dataclass
class Source:
    id: str
    asset: AssetCard
    chunk: ChunkRow
    text: str
    score: float


@dataclass
class Material:
    """What points may draw on: the assets best first, each one's current chunks, and each chunk's score (its
    cosine to the need; without a need, earlier chunks first)."""

    assets: list[AssetCard]
    chunks: dict[str, list[ChunkRow]]
    score: dict[str, float]


@dataclass
class _Draft:
    """What one request's points are drawn from, fixed before the LLM is asked."""

    request: TalkingPointsRequest
    basis: Basis
    need: Need
    sources: list[Source]
    dropped: dict[str, int] = field(default_factory=dict)
    dropped_points: list[DroppedPoint] = field(default_factory=list)


def answer_model(source_ids: list[str], n: int) -> type[BaseModel]:
    """The LLM's answer as a pydantic model: ``sources`` can only hold the sentence numbers offered."""
    ids: Any = Literal[tuple(source_ids)]  # type: ignore[valid-type]
    point = create_model("TalkingPointDraft", text=(str, Field(min_length=1, max_length=400)),
                         sources=(list[ids], Field(min_length=1, max_length=3)))
    return create_model("TalkingPointsDraft", points=(list[point], Field(min_length=1, max_length=n)))  # type: ignore[valid-type]


class TalkingPointWriter:
    def __init__(self, matcher: Matcher, llm: LLMGateway | None, prompt: PromptTemplate | None = None,
                 guardrails: Guardrails | None = None, *, deadline_s: float = 15.0, followup_s: float = 120.0,
                 followup_ttl_s: float = 3600.0) -> None:
        self.matcher, self.llm = matcher, llm
        self.prompt = prompt or load_prompt("talking_points")
        self.guardrails = guardrails or Guardrails.load()
        self.deadline_s, self.followup_s, self.followup_ttl_s = deadline_s, followup_s, followup_ttl_s
        # drafts outlive their request when they miss its deadline; the gateway, not this pool, limits the LLM
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="hcp-talking-points")

    def write(self, request: TalkingPointsRequest, taxonomy: Taxonomy, *, scope: Scope | None = None,
              owner: str | None = None) -> TalkingPointsResponse:
        """Points within ``deadline_s``. ``owner`` (the asking key): a draft that misses the deadline goes on
        and is kept for that key to poll; without one it is given up at the deadline."""
        basis = self.matcher.basis(request.personalized, request.hcp_id)
        need = parse_need(taxonomy, request.need_tags, request.need_text) if basis == "need_tags" else Need()
        if basis == "need_tags" and need.empty and not request.asset_ids:
            raise NeedError("empty_need", "Give need_tags, need_text or asset_ids, or ask for non-personalised "
                            "points (personalized: false).")
        draft = _Draft(request, basis, need, self._sources(self._material(request, basis, need, taxonomy, scope),
                                                           need, taxonomy))
        if self.llm is None:
            return self._respond(draft, [], "llm_disabled")
        if not draft.sources:
            return self._respond(draft, [], None)
        started = time.monotonic()
        budget = self.followup_s if owner is not None else self.deadline_s
        future = self._pool.submit(self._llm_points, draft, taxonomy, started + budget, started + self.deadline_s)
        try:
            return self._respond(draft, future.result(timeout=self.deadline_s), None)
        except FutureTimeout:
            if owner is None:
                return self._respond(draft, [], "llm_deadline")
        except LLMError as err:
            return self._respond(draft, [], err.code)
        followup = open_followup(self.matcher.db, owner, due_s=budget + 30, ttl_s=self.followup_ttl_s)
        future.add_done_callback(lambda done: self._finish(followup, draft, done))
        return self._respond(draft, [], "llm_deadline", followup=followup)

    def followup(self, followup_id: str, owner: str, scope: Scope | None = None) -> TalkingPointsFollowup | None:
        """A follow-up for the key that asked (None otherwise). Points citing an asset the rep may no longer be
        shown (withdrawn, expired, out of scope since the draft) are left out."""
        found = read_followup(self.matcher.db, followup_id, owner)
        if found is None:
            return None
        result = None
        if found.response is not None:
            result = TalkingPointsResponse.model_validate(found.response)
            cited = {c.asset_id for p in result.points for c in p.citations}
            with self.matcher.db.session() as s:
                visible = set(s.scalars(select(Asset.id).where(Asset.id.in_(cited), rep_visible(scope))))
            kept = [p for p in result.points if all(c.asset_id in visible for c in p.citations)]
            if len(kept) < len(result.points):
                result.dropped["no_longer_visible"] = len(result.points) - len(kept)
                result.points = kept
                result.extractive = any(p.method == "extractive" for p in kept)
        return TalkingPointsFollowup(id=found.id, status=found.status, result=result, error=found.error)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _finish(self, followup_id: str, draft: _Draft, done: Future[list[TalkingPoint]]) -> None:
        try:
            response = self._respond(draft, done.result(), None)
            finish_followup(self.matcher.db, followup_id, response.model_dump(mode="json"), None)
        except LLMError as err:
            finish_followup(self.matcher.db, followup_id, None, err.code)
        except Exception:  # a draft that broke must still end its follow-up, or the rep polls until it is due
            log.exception("talking-point follow-up %s failed", followup_id)
            finish_followup(self.matcher.db, followup_id, None, "internal_error")

    def _respond(self, draft: _Draft, points: list[TalkingPoint], llm_error: str | None,
                 followup: str | None = None) -> TalkingPointsResponse:
        request = draft.request
        points = points + self._extractive(draft.sources, points, request.n - len(points), request.language)
        return TalkingPointsResponse(
            points=points, extractive=any(p.method == "extractive" for p in points), language=request.language,
            personalized=draft.basis == "need_tags", basis=draft.basis, notice=notice(request.language, draft.basis),
            model=self.llm.model if self.llm is not None else None, prompt_version=self.prompt.version,
            llm_error=llm_error, dropped=dict(draft.dropped), dropped_points=list(draft.dropped_points),
            followup=followup)

    # --- what the points may draw on ------------------------------------------------------------
    def _material(self, request: TalkingPointsRequest, basis: Basis, need: Need, taxonomy: Taxonomy,
                  scope: Scope | None) -> Material:
        """The match's own picks, chunks and chunk scores when it chose the assets (nothing is read again); the
        asked-for assets, or the non-personalised list's, read here."""
        match = MatchRequest(need_tags=request.need_tags, need_text=request.need_text, language=request.language,
                             k=5, personalized=request.personalized, hcp_id=request.hcp_id)
        if not request.asset_ids and basis == "need_tags":
            ranking = self.matcher.ranking(match, need, taxonomy, scope=scope)
            picked = [c for c in ranking.picked if c.asset is not None]
            score = {ch.id: c.cosine[ch.id] for c in picked for ch in c.chunks if ch.id in c.cosine}
            unscored = [ch for c in picked for ch in c.chunks if ch.id not in score]
            if unscored and ranking.vector is not None:  # chunks past the dense channel's top hits
                score |= self._cosines(unscored, ranking.vector)
            return Material([c.asset for c in picked if c.asset is not None], {c.asset_id: c.chunks for c in picked},
                            score)
        ids = request.asset_ids or [r.asset_id for r in self.matcher.match(match, taxonomy, scope=scope).results]
        ids = list(dict.fromkeys(ids))
        with self.matcher.db.session() as s:
            cards = {row[0]: AssetCard(*row) for row in s.execute(select(*CARD_COLUMNS).where(
                Asset.id.in_(ids), rep_visible(scope)))}
            chunks: dict[str, list[ChunkRow]] = {}
            for row in s.execute(select(Chunk.asset_id, Chunk.id, Chunk.ordinal, Chunk.text, Chunk.page, Chunk.slide,
                                        Chunk.section, Chunk.kind).join(Asset, Asset.id == Chunk.asset_id)
                                 .where(Chunk.asset_id.in_(list(cards)), Chunk.version == Asset.current_version)
                                 .order_by(Chunk.asset_id, Chunk.ordinal)):
                chunks.setdefault(row[0], []).append(ChunkRow(*row[1:]))
        missing = [i for i in ids if i not in cards]
        if missing and request.asset_ids:
            raise AssetsNotVisible(missing)
        every = [ch for own in chunks.values() for ch in own]
        if need.empty:
            score = {ch.id: -0.01 * ch.ordinal for ch in every}
        else:
            score = self._cosines(every, self.matcher.embedder.embed_query(dense_query(taxonomy, need,
                                                                                       request.language)))
        return Material([cards[i] for i in ids if i in cards], chunks, score)

    def _cosines(self, chunks: list[ChunkRow], query: np.ndarray) -> dict[str, float]:
        """Each chunk's stored vector's cosine to ``query`` (0 for a chunk without one)."""
        vectors = self.matcher.vectors.dense_vectors([point_id(c.id) for c in chunks])
        return {c.id: float(np.dot(query, vectors[point_id(c.id)])) if point_id(c.id) in vectors else 0.0
                for c in chunks}

    def _sources(self, material: Material, need: Need, taxonomy: Taxonomy) -> list[Source]:
        """Numbered sentences from each asset's best passages, taken in turn from each asset (best asset
        first), leaving out instruction-like and tracking-like sentences."""
        score = material.score
        terms = set(self.matcher.terms(lexical_query(taxonomy, need))) if not need.empty else set()
        lexicon = default_lexicon()
        per_asset: list[list[tuple[AssetCard, ChunkRow, str, float]]] = []
        for asset in material.assets:
            own = [c for c in material.chunks.get(asset.id, []) if c.kind != "notes"]  # the presenter's words
            headings = heading_texts(asset.title, own)
            picked: list[tuple[ChunkRow, str, float]] = []
            seen: set[str] = set()
            # the best passages that hold a sentence worth saying (a slide's title chunk holds none)
            sayings = {c.id: [t for t in split_sentences(c.text) if sayable(t, headings) and offerable(t, lexicon)]
                       for c in own}
            usable = [c for c in sorted(own, key=lambda c: -score.get(c.id, 0.0)) if sayings[c.id]]
            for chunk in usable[:CHUNKS_PER_ASSET]:
                for sentence in sayings[chunk.id]:
                    key = sentence.strip().casefold()
                    if key in seen or self.guardrails.injects(sentence) or self.guardrails.tracks(sentence):
                        continue
                    seen.add(key)
                    overlap = len(terms & set(self.matcher.encoder.terms(sentence)))
                    picked.append((chunk, sentence.strip(), score.get(chunk.id, 0.0) + 0.02 * overlap))
            picked.sort(key=lambda p: -p[2])
            per_asset.append([(asset, chunk, text, value) for chunk, text, value in picked])
        out: list[Source] = []
        limit = self.matcher.config.context_sentences
        for depth in range(max((len(p) for p in per_asset), default=0)):
            for entries in per_asset:
                if depth < len(entries) and len(out) < limit:
                    owner, chunk, sentence, value = entries[depth]
                    out.append(Source(f"S{len(out) + 1}", owner, chunk, sentence, value))
        return out

    # --- the LLM's points, checked ----------------------------------------------------------------
    def _llm_points(self, draft: _Draft, taxonomy: Taxonomy, deadline: float, demote_at: float | None = None
                    ) -> list[TalkingPoint]:
        """The LLM's points that pass every check, through the shared task protocol: a malformed answer is asked
        again with the actual error; an answer of which not one point passes is asked again with each point's
        reason, once, when the deadline leaves at least as long as the first answer took (else the extractive
        points fill in at once)."""
        assert self.llm is not None
        request, need, sources = draft.request, draft.need, draft.sources
        needs = "; ".join(_need_labels(taxonomy, need, request.language) + ([need.text] if need.text else []))
        messages = self.prompt.messages(request.language, needs=needs, n=request.n,
                                        sentences=[{"id": s.id, "title": s.asset.title, "text": s.text}
                                                   for s in sources])
        by_id = {s.id: s for s in sources}
        started = time.monotonic()
        checked: list[tuple[list[TalkingPoint], list[tuple[int, str, DroppedPoint]]]] = []
        checker = ClaimChecker(taxonomy)

        def check(answer: BaseModel) -> str | None:
            points, problems = self._checked(answer, by_id, request, checker)
            checked.append((points, problems))
            took = time.monotonic() - started
            if points or len(checked) > 1 or deadline - time.monotonic() < took:
                return None  # something to say, or no second chance left: the extractive points fill the gap
            return "no point could be used: " + "; ".join(f"point {n}: {PROBLEMS[code]}" for n, code, _ in problems)

        task = Task("talking points", answer_model(list(by_id), request.n), max_tokens=160 * request.n + 60,
                    attempts=2, check=check)
        # a draft that missed its request's deadline before it started waits behind fresh requests
        ask(self.llm, task, messages, TaskUsage(), priority="interactive", deadline=deadline, demote_at=demote_at)
        points, problems = checked[-1]
        for _, code, dropped in problems:
            draft.dropped[code] = draft.dropped.get(code, 0) + 1
            draft.dropped_points.append(dropped)
        return points

    def _checked(self, answer: BaseModel, by_id: dict[str, Source], request: TalkingPointsRequest,
                 checker: ClaimChecker) -> tuple[list[TalkingPoint], list[tuple[int, str, DroppedPoint]]]:
        """The answer's points that pass every check (at most ``request.n``), each citing only what supports it,
        and each refused point's number, reason (a key of :data:`PROBLEMS`) and what it failed on."""
        points: list[TalkingPoint] = []
        problems: list[tuple[int, str, DroppedPoint]] = []
        seen: set[str] = set()
        for n, written in enumerate(answer.points, start=1):  # type: ignore[attr-defined]
            text = str(written.text).strip()
            cited = [by_id[i] for i in dict.fromkeys(written.sources) if i in by_id]
            problem = self._problem(text, cited, request.language, seen)
            verdict = check_point(checker, text, [s.chunk.text for s in cited]) if problem is None else None
            if verdict is not None and verdict.problem is None and not self._grounded(text, cited):
                problem = "unsupported_claim"
            problem = problem or (verdict.problem if verdict else None)
            if problem:
                problems.append((n, problem, DroppedPoint(
                    text=text, reason=problem, claim=verdict.claim if verdict else None,
                    quote=verdict.quote if verdict else None, detail=verdict.detail if verdict else None)))
                continue
            seen.add(text.casefold())
            assert verdict is not None
            # only the citations whose passage holds a sentence the point rests on, quoting that sentence
            supported = [_citation(src, verdict.support[i]) for i, src in enumerate(cited) if i in verdict.support]
            points.append(TalkingPoint(text=text, citations=supported or [_citation(src) for src in cited],
                                       method="llm"))
            if len(points) == request.n:
                break
        return points, problems

    def _problem(self, text: str, cited: list[Source], language: str, seen: set[str]) -> str | None:
        if not cited or not all(QuoteChecker(s.chunk.text).contains(s.text, min_chars=2) for s in cited):
            return "invalid_citation"
        if len({s.asset.id for s in cited}) > 1:  # facts from two documents joined into one claim
            return "mixed_sources"
        if self.guardrails.tracks(text) or self.guardrails.injects(text):
            return "tracking_language"
        if not in_language(text, language):
            return "wrong_language"
        if text.casefold() in seen:
            return "duplicate"
        return None

    def _grounded(self, text: str, cited: list[Source]) -> bool:
        """A point in the language of its sources must share words with them (a quarter of its own words at
        least); across languages only the numbers check applies, as words cannot be compared."""
        terms = set(self.matcher.encoder.terms(text))
        same_language = [s for s in cited if in_language(s.text, "zh") == in_language(text, "zh")]
        if not terms or not same_language:
            return True
        source_terms = set().union(*(self.matcher.encoder.terms(s.text) for s in same_language))
        return len(terms & source_terms) >= GROUNDED_SHARE * len(terms)

    def _extractive(self, sources: list[Source], have: list[TalkingPoint], count: int,
                    language: str) -> list[TalkingPoint]:
        """The best source sentences not cited yet, quoted as they are: the HCP's language first, then one
        per asset before a second from the same asset."""
        if count <= 0:
            return []
        used = {(c.chunk_id, c.quote) for p in have for c in p.citations}
        pool = [s for s in sources if (s.chunk.id, s.text) not in used]
        pool.sort(key=lambda s: (not in_language(s.text, language), -s.score))
        chosen: list[Source] = []
        assets_used: set[str] = {c.asset_id for p in have for c in p.citations}
        for fresh_only in (True, False):
            for s in pool:
                if len(chosen) == count:
                    break
                if s in chosen or (fresh_only and s.asset.id in assets_used):
                    continue
                chosen.append(s)
                assets_used.add(s.asset.id)
        return [TalkingPoint(text=s.text, citations=[_citation(s)], method="extractive") for s in chosen]


def _citation(source: Source, quote: str | None = None) -> Citation:
    return Citation(asset_id=source.asset.id, title=source.asset.title, quote=quote or source.text,
                    chunk_id=source.chunk.id,
                    page=source.chunk.page, slide=source.chunk.slide)


def _need_labels(taxonomy: Taxonomy, need: Need, language: str) -> list[str]:
    out = []
    for dim_id, value_id, _ in need.pairs():
        dim = taxonomy.dimension(dim_id)
        value = dim.value(value_id)
        if value is not None:
            out.append(f"{dim.label.get(language)}: {value.label.get(language)}")
    return out

