"""The LLM gateway: interactive calls before queued background ones, preemption, deadlines, shutdown."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel

from service.llm.client import LLMCancelled, LLMClient, LLMError
from service.llm.gateway import LLMGateway, Priority

from .conftest import SMOLLM_ALIAS
from .faults import FaultyLLMServer


class Empty(BaseModel):
    pass


class Answer(BaseModel):
    answer: str


def _ask(gateway: LLMGateway, name: str, priority: Priority, out: dict[str, Any], model: type[BaseModel] = Empty,
         **kw: Any) -> threading.Thread:
    def run() -> None:
        started = time.monotonic()
        try:
            out[name] = gateway.structured([{"role": "user", "content": name}], model, priority=priority,
                                           max_tokens=kw.pop("max_tokens", 16), **kw)
        except LLMError as err:
            out[name] = err
        out[f"{name}_s"] = time.monotonic() - started
        out.setdefault("order", []).append(name)

    t = threading.Thread(target=run)
    t.start()
    return t


def _one_slot(fake: FaultyLLMServer, *, preempt_after_s: float = 60.0,
              interactive_timeout_s: float = 20.0) -> LLMGateway:
    """A gateway with one slot (as for the local server) in front of the fake; no preemption unless asked."""
    return LLMGateway(LLMClient(fake.base_url, "faulty", max_retries=0, structured_mode="json_object"),
                      concurrency=1, preempt_after_s=preempt_after_s, interactive_timeout_s=interactive_timeout_s)


def _wait(cond: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def _queued(gateway: LLMGateway, priority: Priority) -> int:
    return int(gateway.snapshot()[priority]["queued"])


def test_a_free_slot_goes_to_the_waiting_interactive_call_before_older_background_ones():
    with FaultyLLMServer("slow", delay_s=0.6) as fake:
        gateway = _one_slot(fake)
        out: dict[str, Any] = {}
        threads = [_ask(gateway, "bg-1", "background", out)]
        _wait(lambda: gateway.snapshot()["running"] == 1)
        threads.append(_ask(gateway, "bg-2", "background", out))
        _wait(lambda: _queued(gateway, "background") == 1)
        threads.append(_ask(gateway, "bg-3", "background", out))
        _wait(lambda: _queued(gateway, "background") == 2)
        threads.append(_ask(gateway, "rep", "interactive", out))
        for t in threads:
            t.join(30)
    assert fake.arrivals == ["bg-1", "rep", "bg-2", "bg-3"], fake.arrivals
    assert all(isinstance(out[n], object) and not isinstance(out[n], LLMError) for n in ("bg-1", "bg-2", "bg-3", "rep"))
    stats = gateway.snapshot()
    assert stats["interactive"]["served"] == 1 and stats["background"]["served"] == 3
    assert stats["background"]["preempted"] == 0


def test_an_interactive_call_that_waited_past_the_bound_preempts_a_background_call_which_is_then_retried():
    with FaultyLLMServer("slow", delay_s=8.0, stream_chunks=80) as fake:
        gateway = _one_slot(fake, preempt_after_s=0.3)
        out: dict[str, Any] = {}
        bg = _ask(gateway, "bg", "background", out)
        _wait(lambda: fake.arrivals == ["bg"])
        time.sleep(0.05)  # the fake has read its delay for this request
        fake.delay_s = 0.2  # the interactive answer (and the retried background one) come quickly
        rep = _ask(gateway, "rep", "interactive", out)
        rep.join(10)
        bg.join(20)
    assert not isinstance(out["rep"], LLMError) and out["rep_s"] < 2.0, out
    assert not isinstance(out["bg"], LLMError), out["bg"]  # the caller never saw the preemption
    assert fake.arrivals == ["bg", "rep", "bg"] and fake.finished == ["rep", "bg"]
    assert gateway.snapshot()["background"]["preempted"] == 1


def test_a_call_still_queued_at_its_deadline_fails_without_reaching_the_endpoint():
    with FaultyLLMServer("slow", delay_s=3.0) as fake:
        gateway = _one_slot(fake)
        out: dict[str, Any] = {}
        bg = _ask(gateway, "bg", "background", out)
        _wait(lambda: gateway.snapshot()["running"] == 1)
        rep = _ask(gateway, "rep", "interactive", out, deadline=time.monotonic() + 0.5)
        rep.join(10)
        bg.join(10)
    assert isinstance(out["rep"], LLMError) and out["rep"].code == "llm_deadline"
    assert out["rep_s"] < 1.5 and fake.arrivals == ["bg"]


def test_closing_the_gateway_calls_off_running_and_queued_calls_at_once():
    with FaultyLLMServer("slow", delay_s=20.0, stream_chunks=200) as fake:
        gateway = _one_slot(fake)
        out: dict[str, Any] = {}
        threads = [_ask(gateway, "bg", "background", out)]
        _wait(lambda: gateway.snapshot()["running"] == 1)
        threads.append(_ask(gateway, "rep", "interactive", out))
        _wait(lambda: _queued(gateway, "interactive") == 1)
        started = time.monotonic()
        gateway.close()
        for t in threads:
            t.join(5)
        took = time.monotonic() - started
        with pytest.raises(LLMCancelled):
            gateway.structured([{"role": "user", "content": "late"}], Empty, priority="interactive")
    assert took < 1.0
    assert isinstance(out["bg"], LLMCancelled) and isinstance(out["rep"], LLMCancelled)
    assert out["bg"].code == out["rep"].code == "llm_shutting_down"


def test_with_the_real_server_an_interactive_call_overtakes_queued_background_calls(llm_server):
    gateway = LLMGateway(LLMClient(llm_server.base_url, SMOLLM_ALIAS, structured_mode="json_object",
                                   timeout_s=120), concurrency=1, preempt_after_s=60)
    out: dict[str, Any] = {}
    kw = {"model": Answer, "max_tokens": 48}
    threads = [_ask(gateway, "bg-1", "background", out, **kw)]
    _wait(lambda: gateway.snapshot()["running"] == 1)
    for i in (2, 3, 4):
        threads.append(_ask(gateway, f"bg-{i}", "background", out, **kw))
        _wait(lambda i=i: _queued(gateway, "background") + len(out.get("order", [])) >= i - 1)
    assert _queued(gateway, "background") >= 2  # bg-3 and bg-4 at least wait behind the one running
    threads.append(_ask(gateway, "rep", "interactive", out, **kw))
    for t in threads:
        t.join(120)
    order = out["order"]
    # SmolLM2's JSON is not always valid (that is the model, not the gateway); every call must have been answered
    assert all(not isinstance(out[n], LLMError) or out[n].code in ("llm_invalid_json", "llm_schema_mismatch")
               for n in order), out
    # it came last, and the slot it got was the next one free: before the background calls queued ahead of it
    assert order.index("rep") < order.index("bg-4") and order.index("rep") <= 2, order
    assert [n for n in order if n != "rep"] == ["bg-1", "bg-2", "bg-3", "bg-4"]  # first come, first served
    answered = [out[n] for n in order if not isinstance(out[n], LLMError)]
    assert all(a.usage.prompt_tokens > 0 and a.usage.completion_tokens > 0 for a in answered)


def test_an_interactive_call_not_started_by_its_demote_time_waits_behind_fresh_interactive_calls():
    with FaultyLLMServer("slow", delay_s=1.0) as fake:
        gateway = _one_slot(fake)
        out: dict[str, Any] = {}
        threads = [_ask(gateway, "bg", "background", out)]
        _wait(lambda: gateway.snapshot()["running"] == 1)
        threads.append(_ask(gateway, "late-draft", "interactive", out, demote_at=time.monotonic() + 0.2))
        time.sleep(0.4)  # its request has answered without it
        assert _queued(gateway, "background") == 1 and _queued(gateway, "interactive") == 0
        threads.append(_ask(gateway, "fresh", "interactive", out))
        for t in threads:
            t.join(30)
    assert fake.arrivals == ["bg", "fresh", "late-draft"], fake.arrivals
    assert not isinstance(out["late-draft"], LLMError)  # demoted, not dropped


def test_a_call_given_up_keeps_its_slot_until_the_server_lets_go_of_it():
    with FaultyLLMServer("slow", delay_s=2.0, stream_chunks=2) as fake:  # the first token comes after 1 s
        gateway = _one_slot(fake)
        started = time.monotonic()
        with pytest.raises(LLMError) as err:
            gateway.structured([{"role": "user", "content": "a"}], Empty, priority="interactive",
                               deadline=time.monotonic() + 0.3)
        assert err.value.code == "llm_timeout" and time.monotonic() - started < 0.6  # the caller is not held
        assert gateway.busy()  # but the server still works on it: the next call is not sent yet
        _wait(lambda: not gateway.busy(), timeout=5)
        assert time.monotonic() - started >= 0.9


def test_a_callers_deadline_replaces_the_class_timeout_so_a_follow_up_may_wait_longer_than_a_request():
    with FaultyLLMServer("slow", delay_s=1.0) as fake:
        gateway = _one_slot(fake, interactive_timeout_s=0.3)
        answer = gateway.structured([{"role": "user", "content": "draft"}], Empty, priority="interactive",
                                    deadline=time.monotonic() + 5)
        assert answer.value == Empty()
        with pytest.raises(LLMError) as err:  # no deadline given: the class's timeout applies
            gateway.structured([{"role": "user", "content": "request"}], Empty, priority="interactive")
        assert err.value.code == "llm_timeout"
