"""The one way the service's code reaches the LLM: a scheduler in front of the endpoint.

- Two priority classes. *interactive* calls (talking points, ``POST /v1/tag``) have a person waiting;
  *background* calls (ingest, re-tag, retrain jobs) do not.
- At most ``concurrency`` calls are at the endpoint at once (the local llama.cpp server evaluates one request at
  a time; a queue at the server would hide the priorities from us).
- A free slot goes to the oldest interactive call, and to a background call only when no interactive one waits.
- An interactive call that has waited ``preempt_after_s`` cancels the youngest running background call. That call
  is streamed, so the server stops at its next token; the background call then queues again at the head of its
  class and is retried from the start, invisibly to its caller.
- Each call has a deadline: the caller's (a request's budget) or its class's timeout. A call still queued at its
  deadline fails with ``llm_deadline`` without reaching the endpoint.
- ``close()`` (shutdown) cancels every call, queued or running, at once.
- A slot is free when the endpoint is: a call given up (preempted, past its deadline) returns to its caller at
  once, but keeps its slot until its HTTP request is over, since the server goes on with it until then (to the
  end of the prompt's evaluation, at least). Sending the next call earlier would only queue it at the server,
  out of the gateway's sight, and spend its deadline there.

What cancelling costs, measured on llama-cpp-python's server (bench/llm_cancel.py): a streamed request the client
drops frees the server at its next token; a non-streamed one runs to its end whatever the client does, and no
request can be stopped while the server is still evaluating its prompt. So every call is streamed, and an
interactive call's wait after a preemption is bounded by what is left of that prompt's evaluation.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel

from service.llm.client import LLMCancelled, LLMClient, LLMError, StructuredAnswer

T = TypeVar("T", bound=BaseModel)
Priority = Literal["interactive", "background"]
PRIORITIES: tuple[Priority, ...] = ("interactive", "background")
RECENT = 200  # calls per class kept for the latency figures


@dataclass(eq=False)
class _Call:
    priority: Priority
    queued_at: float
    deadline: float
    cancel: threading.Event = field(default_factory=threading.Event)
    started_at: float | None = None
    preempted: bool = False
    requeued: bool = False  # a preempted call's next attempt: first in its class
    demote_at: float | None = None  # still queued then: nobody waits on it any more, it queues as background


@dataclass
class _ClassStats:
    served: int = 0
    failed: int = 0
    preempted: int = 0
    deadline_in_queue: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT))


class LLMGateway:
    """Priorities, a concurrency limit, preemption and deadlines in front of one :class:`LLMClient`."""

    def __init__(self, client: LLMClient, *, concurrency: int = 1, preempt_after_s: float = 1.0,
                 interactive_timeout_s: float = 20.0, background_timeout_s: float = 120.0) -> None:
        self.client = client
        self.concurrency = concurrency
        self.preempt_after_s = preempt_after_s
        self.timeouts: dict[Priority, float] = {"interactive": interactive_timeout_s,
                                                "background": background_timeout_s}
        self._cond = threading.Condition()
        self._queues: dict[Priority, deque[_Call]] = {p: deque() for p in PRIORITIES}
        self._running: list[_Call] = []
        self._stats: dict[Priority, _ClassStats] = {p: _ClassStats() for p in PRIORITIES}
        self._closed = False

    # --- what callers see of the endpoint --------------------------------------------------------
    @property
    def model(self) -> str:
        return self.client.model

    @property
    def base_url(self) -> str:
        return self.client.base_url

    @property
    def structured_mode(self) -> str:
        return self.client.structured_mode

    @property
    def closed(self) -> bool:
        return self._closed

    # --- calls --------------------------------------------------------------------------------
    def structured(self, messages: list[dict[str, str]], model: type[T], *, priority: Priority,
                   deadline: float | None = None, max_tokens: int = 512, temperature: float = 0.0,
                   demote_at: float | None = None) -> StructuredAnswer[T]:
        """One structured call through the scheduler. ``deadline``: a ``time.monotonic()`` instant by which the
        answer is needed (None: the class's timeout from now; given, it replaces that timeout). ``demote_at``: an
        interactive call not started by then (its request has answered without it) queues behind fresh
        interactive calls, as background."""
        now = time.monotonic()
        # the caller's deadline when it gives one (a talking-point follow-up may wait longer than a request does)
        call = _Call(priority, now, deadline if deadline is not None else now + self.timeouts[priority],
                     demote_at=demote_at)
        while True:
            self._admit(call)
            try:
                # always streamed, so that preemption and shutdown can call it off (see the module's note)
                answer = self.client.structured(messages, model, max_tokens=max_tokens, temperature=temperature,
                                                timeout_s=max(call.deadline - time.monotonic(), 0.05),
                                                cancel=call.cancel, on_closed=partial(self._free, call))
            except LLMCancelled:
                if self._release(call, ok=None) and not self._closed:
                    # preempted: a new attempt, first in its class (the old one keeps its slot until its request
                    # is over); its own timeout restarts, as being preempted is not the LLM's slowness
                    call = replace(call, cancel=threading.Event(), started_at=None, preempted=False, requeued=True,
                                   deadline=call.deadline if deadline is not None
                                   else time.monotonic() + self.timeouts[priority])
                    continue
                raise LLMCancelled("llm_shutting_down", "the service is shutting down") from None
            except BaseException:
                self._release(call, ok=False)
                raise
            self._release(call, ok=True)
            return answer

    def _admit(self, call: _Call) -> None:
        with self._cond:
            queue = self._queues[call.priority]
            if call.requeued:
                queue.appendleft(call)
            else:
                queue.append(call)
            try:
                while True:
                    if self._closed:
                        raise LLMCancelled("llm_shutting_down", "the service is shutting down")
                    if self._may_start(call):
                        queue.remove(call)
                        call.started_at = time.monotonic()
                        self._running.append(call)
                        return
                    now = time.monotonic()
                    if call.priority == "interactive" and call.demote_at is not None and now >= call.demote_at:
                        queue.remove(call)
                        call.priority, queue = "background", self._queues["background"]
                        queue.append(call)
                        self._cond.notify_all()
                        continue
                    if now >= call.deadline:
                        self._stats[call.priority].deadline_in_queue += 1
                        raise LLMError("llm_deadline", "the LLM was busy until this request's deadline passed")
                    wake = call.deadline - now
                    if call.priority == "interactive" and call.demote_at is not None:
                        wake = min(wake, max(call.demote_at - now, 0.0) + 0.001)
                    if call.priority == "interactive":
                        waited = now - call.queued_at
                        if waited >= self.preempt_after_s:
                            self._preempt_background()
                            wake = min(wake, 0.25)
                        else:
                            wake = min(wake, self.preempt_after_s - waited)
                    self._cond.wait(wake)
            except BaseException:
                if call in queue:
                    queue.remove(call)
                self._cond.notify_all()
                raise

    def _may_start(self, call: _Call) -> bool:
        if len(self._running) >= self.concurrency or self._queues[call.priority][0] is not call:
            return False
        return call.priority == "interactive" or not self._queues["interactive"]

    def _preempt_background(self) -> None:
        """Called with the lock held: cancel the youngest running background call, unless one is already
        being cancelled (one room made per wait is enough)."""
        if len(self._running) < self.concurrency or any(c.preempted for c in self._running):
            return
        victims = [c for c in self._running if c.priority == "background"]
        if victims:
            victim = max(victims, key=lambda c: c.started_at or 0.0)
            victim.preempted = True
            victim.cancel.set()
            self._stats["background"].preempted += 1

    def _free(self, call: _Call) -> None:
        """The call's HTTP request is over: its slot is free."""
        with self._cond:
            if call in self._running:
                self._running.remove(call)
            self._cond.notify_all()

    def _release(self, call: _Call, *, ok: bool | None) -> bool:
        """Its caller is done with the call (the slot is freed by :meth:`_free`); True when it was preempted."""
        with self._cond:
            now = time.monotonic()
            stats = self._stats[call.priority]
            if ok is True:
                stats.served += 1
                stats.latencies.append(now - call.queued_at)
            elif ok is False:
                stats.failed += 1
            return call.preempted

    def close(self) -> None:
        """Shutting down: every queued call fails and every running one is called off now."""
        with self._cond:
            self._closed = True
            for call in self._running:
                call.cancel.set()
            self._cond.notify_all()

    # --- what /readyz reports -------------------------------------------------------------------
    def busy(self) -> bool:
        with self._cond:
            return bool(self._running)

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            out: dict[str, Any] = {"concurrency": self.concurrency, "running": len(self._running)}
            for p in PRIORITIES:
                s = self._stats[p]
                lat = list(s.latencies)
                out[p] = {"queued": len(self._queues[p]), "running": sum(c.priority == p for c in self._running),
                          "served": s.served, "failed": s.failed, "preempted": s.preempted,
                          "deadline_in_queue": s.deadline_in_queue,
                          "latency_p50_s": round(float(np.percentile(lat, 50)), 3) if lat else None,
                          "latency_p95_s": round(float(np.percentile(lat, 95)), 3) if lat else None}
            return out
