import json
from typing import Literal

import jsonschema
import pytest
from pydantic import BaseModel, Field

from service.llm.client import LLMClient, LLMError
from service.llm.local_server import free_port

from .conftest import SMOLLM_ALIAS
from .faults import FaultyLLMServer


class Verdict(BaseModel):
    therapy_area: Literal["cardiology", "oncology", "diabetes"]
    confidence: float = Field(ge=0, le=1)
    reason: str


def test_real_local_server_returns_schema_valid_json_through_the_openai_client(llm_server):
    client = LLMClient(llm_server.base_url, SMOLLM_ALIAS, structured_mode="json_object", timeout_s=120)
    answer = client.structured(
        [{"role": "system", "content": "You classify medical texts. Answer in JSON."},
         {"role": "user", "content": "Text: 'Statin therapy lowers LDL cholesterol and cardiovascular events.'"}],
        Verdict, max_tokens=96)
    jsonschema.validate(json.loads(answer.raw), Verdict.model_json_schema())
    assert answer.value.therapy_area in {"cardiology", "oncology", "diabetes"}
    assert answer.usage.prompt_tokens > 10 and answer.usage.completion_tokens > 0


def test_plain_chat_completion_comes_back_with_text_and_usage(llm_server):
    client = LLMClient(llm_server.base_url, SMOLLM_ALIAS, timeout_s=120)
    text, usage = client.chat([{"role": "user", "content": "Say hello."}], max_tokens=16)
    assert text.strip()
    assert usage.completion_tokens > 0
    assert client.ping() < 5


def test_json_schema_dialect_is_sent_as_openai_structured_outputs():
    client = LLMClient("http://127.0.0.1:9/v1", "m", structured_mode="json_schema")
    fmt = client.response_format(Verdict.model_json_schema(), "Verdict")
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Verdict"
    assert "therapy_area" in fmt["json_schema"]["schema"]["properties"]


def test_server_down_is_reported_as_unreachable():
    client = LLMClient(f"http://127.0.0.1:{free_port()}/v1", "m", max_retries=0, timeout_s=5)
    with pytest.raises(LLMError) as err:
        client.chat([{"role": "user", "content": "hi"}])
    assert err.value.code == "llm_unreachable"


@pytest.mark.parametrize(("fault", "code"), [("garbage_json", "llm_invalid_json"), ("http_500", "llm_http_error"),
                                             ("slow", "llm_timeout")])
def test_faults_become_typed_errors(fault, code):
    with FaultyLLMServer(fault, delay_s=3) as fake:
        client = LLMClient(fake.base_url, "faulty", max_retries=0, timeout_s=1, structured_mode="json_object")
        with pytest.raises(LLMError) as err:
            client.structured([{"role": "user", "content": "classify"}], Verdict)
    assert err.value.code == code


def test_an_answer_that_is_json_but_not_the_schema_is_refused():
    with FaultyLLMServer("slow", delay_s=0) as fake:  # answers "{}" promptly
        client = LLMClient(fake.base_url, "faulty", max_retries=0, timeout_s=5)
        with pytest.raises(LLMError) as err:
            client.structured([{"role": "user", "content": "classify"}], Verdict)
    assert err.value.code == "llm_schema_mismatch"
