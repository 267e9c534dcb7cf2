"""The adjudicator: the LLM task that settles the dimensions the decision policy leaves open.

Prompt → validated pydantic answer → asked again once with the actual error (``service.llm.task``, the protocol
talking points share) → quotes checked against the source.
The answer schema's value fields are enums of the offered candidates, so the LLM cannot name a value outside
the taxonomy. Every call keeps to a token budget: the prompt carries what fits, in this order of sacrifice
— few-shot examples, then label meanings, then the less relevant sentences of the document — and when not
even the question and a few sentences fit, the LLM is not asked (the policy's prior stands).

Answers are cached on the exact messages sent, so re-tagging an unchanged asset costs no tokens.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from indexers.document import sha256_hex
from service.core.prompts import PromptTemplate
from service.core.taxonomy import Dimension, Taxonomy
from service.core.tokens import count_tokens, truncate_to_tokens
from service.llm.client import LLMCancelled, LLMError
from service.llm.gateway import LLMGateway
from service.llm.task import Task, TaskUsage, ask
from service.tagging.answer import answer_model
from service.tagging.cache import TagCache, cache_key
from service.tagging.examples import FewShot

Choices = dict[tuple[str, str], tuple[float, str]]  # (dimension, value) -> (confidence, evidence quote)
_SENTENCE = re.compile(r"[^。！？；!?;\n]+[。！？；!?;]?|[^.\n]+\.?")
MIN_TEXT_TOKENS = 24  # fewer than this of the document and the LLM would only be guessing
ANSWER_TOKENS_PER_DIMENSION = 40  # a value id, a confidence and a short quote, as JSON
BUDGET_CHOICES = 1  # a budgeted answer names at most this many values of a multi-valued dimension...
BUDGET_EVIDENCE_CHARS = 60  # ...with quotes this short, so that it fits the answer tokens it is given


@dataclass
class Question:
    dimension: Dimension
    candidates: list[str]  # value ids, most probable first
    margin: float = 0.0  # distance of the deciding probability from 0.5 (the cascade asks the smallest first)


@dataclass
class Usage(TaskUsage):
    """What a call cost, added to the caller's result."""

    cached: bool = False
    asked: list[str] = field(default_factory=list)  # the dimensions that fitted the budget and were put


class Adjudicator:
    def __init__(self, taxonomy: Taxonomy, llm: LLMGateway, prompt: PromptTemplate, *, cache: TagCache | None = None,
                 encoding: str = "cl100k_base", max_windows: int = 3, max_answer_tokens: int = 700,
                 embedder_name: str = "") -> None:
        self.taxonomy, self.llm, self.prompt, self.cache = taxonomy, llm, prompt, cache
        self.encoding, self.max_windows, self.max_answer_tokens = encoding, max_windows, max_answer_tokens
        self.embedder_name = embedder_name

    def answer_tokens(self, questions: Sequence[Question]) -> int:
        """The most a budgeted answer to ``questions`` may take (one short choice per dimension)."""
        return min(self.max_answer_tokens, ANSWER_TOKENS_PER_DIMENSION * len(questions))

    def ask(self, text: str, *, title: str, language: str, chunks: Sequence[str], questions: Sequence[Question],
            prompt_budget: int, usage: Usage, examples: Sequence[FewShot] = (), content_hash: str | None = None,
            relevance: Callable[[list[str]], list[float]] | None = None, one_window: bool = False,
            total_budget: int | None = None, deadline: float | None = None) -> Choices | None:
        """The LLM's choices for ``questions``, or None when it failed or the budget leaves it nothing to read.

        ``prompt_budget``: the prompt tokens of one call (the answer has :meth:`answer_tokens`). ``one_window``:
        read the most relevant sentences (by ``relevance``) in one call rather than the whole document in up to
        ``max_windows`` calls. ``total_budget``: prompt and answer together; questions are dropped from the end
        (ask the most uncertain first) until the rest fits, and the answers asked for shrink with them."""
        lang = "zh" if language in ("zh", "mixed") else "en"
        own = count_tokens(text, self.encoding)
        questions = list(questions)
        plan = None
        while questions:
            room = prompt_budget if total_budget is None else \
                min(prompt_budget, total_budget - self.answer_tokens(questions))
            plan = self._plan(text, own, title, lang, chunks, questions, examples, room, relevance, one_window)
            if plan is not None or total_budget is None:
                break
            questions.pop()
        if plan is None:
            usage.error = "llm_budget: the token budget leaves no room for the document"
            return None
        usage.asked = [q.dimension.id for q in questions]
        offered = {q.dimension.id: q.candidates for q in questions}
        model = answer_model(self.taxonomy, offered) if total_budget is None else \
            answer_model(self.taxonomy, offered, max_choices=BUDGET_CHOICES, evidence_chars=BUDGET_EVIDENCE_CHARS)
        # a budgeted answer gets what the budget kept for it; an unbudgeted one room for every choice and quote
        answer_tokens = self.answer_tokens(questions) if total_budget is not None else self.max_answer_tokens
        windows, context = plan
        messages = [self.prompt.messages(lang, title=title, text=w, **context) for w in windows]
        key = cache_key(content=content_hash or sha256_hex(text.encode("utf-8")), taxonomy=self.taxonomy.key,
                        llm=self.llm.model, embedder=self.embedder_name, prompt=self.prompt.version,
                        messages=messages)
        cached = self.cache.get(key) if self.cache else None
        if cached is not None:
            usage.cached = True
            return {(d, v): (conf, quote) for d, v, conf, quote in cached["choices"]}
        merged: Choices = {}
        spent = Usage()
        for m in messages:
            # a budgeted call is not repaired: a second prompt would spend the budget twice
            answer = self._call(m, model, spent, answer_tokens, deadline,
                                attempts=1 if total_budget is not None else 2)
            if answer is None:
                usage.add(spent)
                return None
            for dim_id in offered:
                for choice in getattr(answer, dim_id, None) or []:
                    value = str(choice.value)
                    if not self.taxonomy.has(dim_id, value):  # belt and braces: the enum already forbids it
                        continue
                    previous = merged.get((dim_id, value))
                    if previous is None or choice.confidence > previous[0]:
                        merged[(dim_id, value)] = (float(choice.confidence), str(choice.evidence))
        for q in questions:  # a merged single-valued dimension keeps its best value
            if q.dimension.cardinality == "single":
                picks = sorted(((k, v) for k, v in merged.items() if k[0] == q.dimension.id), key=lambda kv: -kv[1][0])
                for k, _ in picks[1:]:
                    del merged[k]
        usage.add(spent)  # the last attempt succeeded: spent.error is None
        if self.cache is not None:
            self.cache.put(key, {"choices": [[d, v, c, q] for (d, v), (c, q) in merged.items()]}, self.llm.model,
                           self.prompt.version, spent.prompt_tokens, spent.completion_tokens)
        return merged

    # --- what goes into the prompt --------------------------------------------------------------
    def _context(self, questions: Sequence[Question], lang: str, examples: Sequence[FewShot], meanings: bool
                 ) -> dict[str, Any]:
        dims = [{"id": q.dimension.id, "single": q.dimension.cardinality == "single",
                 "candidates": [{"id": v, "meaning": _meaning(q.dimension, v, lang) if meanings else ""}
                                for v in q.candidates]} for q in questions]
        asked = {q.dimension.id for q in questions}
        shots = [{"snippet": e.snippet,
                  "answer": "; ".join(f"{d}: {', '.join(sorted(v)) or 'none'}" for d, v in sorted(e.labels.items())
                                      if d in asked)} for e in examples]
        return {"dimensions": dims, "examples": shots}

    def _plan(self, text: str, own: int, title: str, lang: str, chunks: Sequence[str], questions: Sequence[Question],
              examples: Sequence[FewShot], room: int, relevance: Callable[[list[str]], list[float]] | None,
              one_window: bool) -> tuple[list[str], dict[str, Any]] | None:
        """The document windows and prompt context that fit ``room`` prompt tokens, or None (``own``: the
        document's tokens)."""
        attempts = [(list(examples), True), ([], True), ([], False)] if examples else [([], True), ([], False)]
        context: dict[str, Any] = {}
        text_room = 0
        for shots, meanings in attempts:
            context = self._context(questions, lang, shots, meanings)
            overhead = count_tokens(str(self.prompt.messages(lang, title=title, text="", **context)), self.encoding)
            text_room = room - overhead
            if text_room >= own:
                return [text], context
        if text_room < min(own, MIN_TEXT_TOKENS):
            return None
        if one_window:
            return [self._relevant_sentences(text, text_room, relevance)], context
        return self._windows(chunks, text_room), context

    def _relevant_sentences(self, text: str, room: int, relevance: Callable[[list[str]], list[float]] | None
                            ) -> str:
        """The sentences that argue most for the candidates, in document order, within ``room`` tokens."""
        sentences = [s.strip() for s in _SENTENCE.findall(text) if s.strip()]
        scores = relevance(sentences) if relevance is not None else [0.0] * len(sentences)
        order = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
        kept: set[int] = set()
        used = 0
        for i in order:
            cost = count_tokens(sentences[i], self.encoding) + 1
            if used + cost <= room:
                kept.add(i)
                used += cost
        if not kept:
            return truncate_to_tokens(sentences[order[0]], room, self.encoding)
        return " ".join(sentences[i] for i in sorted(kept))

    def _windows(self, chunks: Sequence[str], room: int) -> list[str]:
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

    # --- the call -----------------------------------------------------------------------------
    def _call(self, messages: list[dict[str, str]], model: type[BaseModel], usage: Usage, max_tokens: int,
              deadline: float | None = None, attempts: int = 2) -> BaseModel | None:
        """The LLM's answer through the shared task protocol (asked again with the actual error when it was not
        valid for the schema), or None when it failed: the policy's prior then decides. No check re-asks on the
        quotes: an unfound quote is evidence to weigh (the policy lowers the LLM's say), not a malformed answer.
        A ``deadline`` means a person waits: the call is interactive and every attempt shares that deadline;
        without one it is background work. :class:`LLMCancelled` (shutting down) is not a failure: it
        propagates."""
        task = Task("tagging", model, max_tokens=max_tokens, attempts=attempts)
        try:
            return ask(self.llm, task, messages, usage, priority="background" if deadline is None else "interactive",
                       deadline=deadline)
        except LLMCancelled:
            raise
        except LLMError:
            return None  # usage.error says why


def _meaning(dim: Dimension, value_id: str, language: str) -> str:
    value = dim.value(value_id)
    assert value is not None
    label = value.label.get(language)
    definition = value.definition.get(language)
    return f"{label}. {definition}" if definition and definition != label else label
