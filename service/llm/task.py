"""One LLM task protocol for every stage that asks the LLM (tagging's adjudicator, talking points).

A task is: prompt messages (a versioned template, rendered by the caller) → a structured call constrained to and
validated by a pydantic answer model → the caller's check of the answer against its source → asked again with
the *actual* error when the answer was not usable (instructor's re-ask): the JSON parser's position, each field
the schema refused (``key_message.1.confidence: Input should be less than or equal to 1``), or what the check
found. A fault of the call itself (an HTTP error, a dropped connection) is tried again as it was; a timeout or a
missed deadline is not, as a second try would only wait again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from service.llm.client import LLMCancelled, LLMError
from service.llm.gateway import LLMGateway, Priority

log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)
NOT_RETRIED = ("llm_timeout", "llm_deadline")

REASK = ("Your previous answer could not be used: {feedback}. Answer the same question again, as JSON that follows "
         "the schema, and nothing else.")


@dataclass
class TaskUsage:
    """What a task's calls cost, and the last error (None once an attempt succeeded)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    error: str | None = None

    def add(self, other: TaskUsage) -> None:
        """``other``'s calls, tokens and last error, added to these."""
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.calls += other.calls
        self.error = other.error


@dataclass
class Task(Generic[T]):
    """What is asked and how an answer is accepted. ``check`` reads a schema-valid answer against the source and
    returns what is wrong with it in words the model can act on, or None to accept it. ``attempts``: calls in
    all (a budgeted call takes 1: a second prompt would spend its budget twice)."""

    name: str
    answer: type[T]
    max_tokens: int = 512
    attempts: int = 2
    check: Callable[[T], str | None] | None = None


def ask(llm: LLMGateway, task: Task[T], messages: list[dict[str, str]], usage: TaskUsage, *,
        priority: Priority = "background", deadline: float | None = None, demote_at: float | None = None) -> T:
    """The first usable answer to ``messages``; raises the last :class:`LLMError` when no attempt gave one.

    ``deadline`` (a ``time.monotonic()`` instant) is shared by every attempt; without one each attempt waits the
    gateway's timeout for ``priority``. :class:`LLMCancelled` (preempted for good, shutting down) propagates at once:
    it is not the LLM's failure. ``usage`` gets every attempt's calls and tokens."""
    sent = messages
    failure: LLMError | None = None
    for attempt in range(task.attempts):
        if deadline is not None and deadline <= time.monotonic():
            failure = LLMError("llm_deadline", "the LLM did not finish within the request's deadline")
            break
        try:
            answer = llm.structured(sent, task.answer, priority=priority, deadline=deadline,
                                    max_tokens=task.max_tokens, demote_at=demote_at)
        except LLMCancelled:
            raise
        except LLMError as exc:
            usage.calls += exc.code != "llm_deadline"  # still queued at the deadline: never asked
            failure = exc
        else:
            usage.calls += 1
            usage.prompt_tokens += answer.usage.prompt_tokens
            usage.completion_tokens += answer.usage.completion_tokens
            problem = task.check(answer.value) if task.check is not None else None
            if problem is None:
                usage.error = None
                return answer.value
            failure = LLMError("llm_answer_rejected", f"the {task.name} answer failed its check: {problem}",
                               feedback=problem)
        usage.error = f"{failure.code}: {failure}"
        log.warning("LLM %s attempt %d of %d failed: %s", task.name, attempt + 1, task.attempts, usage.error)
        if failure.code in NOT_RETRIED:
            break
        if failure.feedback is not None:
            sent = [*messages, {"role": "user", "content": REASK.format(feedback=failure.feedback)}]
    assert failure is not None
    usage.error = f"{failure.code}: {failure}"
    raise failure
