"""The one LLM task protocol (``service.llm.task``): an answer the schema or the caller's check refuses is asked
again with the actual error; a fault of the call is tried again as it was. The fake server only scripts answers
a real model would not give on demand."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from service.llm.client import LLMClient, LLMError
from service.llm.gateway import LLMGateway
from service.llm.task import Task, TaskUsage, ask

from .faults import FaultyLLMServer

QUESTION = [{"role": "system", "content": "Rate the evidence."},
            {"role": "user", "content": "VIVA-AF, 14,200 patients."}]


class Rating(BaseModel):
    level: str
    confidence: float = Field(ge=0, le=1)


def _gateway(fake: FaultyLLMServer) -> LLMGateway:
    return LLMGateway(LLMClient(fake.base_url, "faulty", max_retries=0, structured_mode="json_object"))


def test_an_answer_the_schema_refuses_is_asked_again_with_each_refused_field():
    with FaultyLLMServer("scripted", script='{"level": "rct", "confidence": 1.7}') as fake:
        usage = TaskUsage()
        with pytest.raises(LLMError) as err:
            ask(_gateway(fake), Task("rating", Rating), QUESTION, usage)
    assert err.value.code == "llm_schema_mismatch" and usage.calls == 2
    assert fake.bodies[1]["messages"][:2] == QUESTION  # the same question, then what was wrong with the answer
    assert "confidence: Input should be less than or equal to 1" in fake.arrivals[1], fake.arrivals[1]
    assert usage.error is not None and usage.error.startswith("llm_schema_mismatch")


def test_text_that_is_not_json_is_asked_again_with_the_parsers_position():
    with FaultyLLMServer("garbage_json") as fake, pytest.raises(LLMError) as err:
        ask(_gateway(fake), Task("rating", Rating), QUESTION, TaskUsage())
    assert err.value.code == "llm_invalid_json" and fake.requests == 2
    assert "not JSON: Expecting" in fake.arrivals[1] and "line 1 column" in fake.arrivals[1], fake.arrivals[1]


def test_the_callers_check_against_the_source_rejects_an_answer_in_words_the_model_can_act_on():
    source = "Stroke was reduced by 21% in a randomised trial."
    seen: list[str] = []

    def check(answer: Rating) -> str | None:
        seen.append(answer.level)
        return None if answer.level in source else f"'{answer.level}' is not a word of the source"

    with FaultyLLMServer("scripted", script='{"level": "meta-analysis", "confidence": 0.9}') as fake:
        usage = TaskUsage()
        with pytest.raises(LLMError) as err:
            ask(_gateway(fake), Task("rating", Rating, check=check), QUESTION, usage)
        assert err.value.code == "llm_answer_rejected" and seen == ["meta-analysis"] * 2
        assert "'meta-analysis' is not a word of the source" in fake.arrivals[1]
        assert usage.calls == 2 and usage.prompt_tokens > 0 and usage.completion_tokens > 0

        fake.script = '{"level": "randomised", "confidence": 0.9}'
        usage = TaskUsage()
        answer = ask(_gateway(fake), Task("rating", Rating, check=check), QUESTION, usage)
    assert answer.level == "randomised" and usage.calls == 1 and usage.error is None


def test_a_fault_of_the_call_is_tried_again_as_it_was_and_a_budgeted_task_is_asked_once():
    with FaultyLLMServer("http_500") as fake:
        with pytest.raises(LLMError) as err:
            ask(_gateway(fake), Task("rating", Rating), QUESTION, TaskUsage())
        assert err.value.code == "llm_http_error" and fake.requests == 2
        assert fake.bodies[0]["messages"] == fake.bodies[1]["messages"] == QUESTION  # nothing to tell the model
        with pytest.raises(LLMError):
            ask(_gateway(fake), Task("rating", Rating, attempts=1), QUESTION, TaskUsage())
        assert fake.requests == 3
