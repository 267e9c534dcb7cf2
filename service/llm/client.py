"""The only way the service reaches an LLM: the ``openai`` client against an OpenAI-compatible endpoint.

Structured output comes in two dialects:
- ``json_schema``: ``response_format={"type": "json_schema", "json_schema": {...}}`` (OpenAI, vLLM);
- ``json_object``: ``response_format={"type": "json_object", "schema": {...}}``, which llama.cpp
  servers enforce by grammar (they answer 500 to the ``json_schema`` form).
The answer is always validated against the pydantic model that produced the schema.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import openai
from openai import OpenAI
from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)


class LLMError(RuntimeError):
    """The LLM could not give a usable answer. ``code`` says why, for callers and API errors."""

    def __init__(self, code: Literal["llm_timeout", "llm_unreachable", "llm_http_error",
                                     "llm_invalid_json", "llm_schema_mismatch", "llm_disabled"],
                 message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class StructuredAnswer(Generic[T]):
    value: T
    usage: Usage
    raw: str


class LLMClient:
    """A thin, typed wrapper over ``openai.OpenAI`` for chat completions with structured output."""

    def __init__(self, base_url: str, model: str, *, api_key: str = "not-needed", timeout_s: float = 120.0,
                 max_retries: int = 1, structured_mode: Literal["json_schema", "json_object"] = "json_schema",
                 ) -> None:
        self.base_url = base_url
        self.model = model
        self.structured_mode = structured_mode
        self.timeout_s = timeout_s
        self._client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=max_retries)

    def response_format(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        if self.structured_mode == "json_object":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}}

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 512, temperature: float = 0.0,
             response_format: dict[str, Any] | None = None) -> tuple[str, Usage]:
        """One chat completion; errors become :class:`LLMError` with a machine-readable code."""
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                                  "temperature": temperature}
        if response_format is not None:
            kwargs["response_format"] = response_format
        with self._translated_errors():
            completion = self._client.chat.completions.create(**kwargs)
        text = (completion.choices[0].message.content or "") if completion.choices else ""
        usage = Usage()
        if completion.usage:
            usage = Usage(completion.usage.prompt_tokens or 0, completion.usage.completion_tokens or 0)
        return text, usage

    def structured(self, messages: list[dict[str, str]], model: type[T], *, max_tokens: int = 512,
                   temperature: float = 0.0) -> StructuredAnswer[T]:
        """A chat completion constrained to ``model``'s JSON schema and validated by it."""
        schema = model.model_json_schema()
        text, usage = self.chat(messages, max_tokens=max_tokens, temperature=temperature,
                                response_format=self.response_format(schema, model.__name__))
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LLMError("llm_invalid_json", f"the LLM answered text that is not JSON: {text[:200]!r}") from exc
        try:
            value = model.model_validate(data)
        except ValidationError as exc:
            raise LLMError("llm_schema_mismatch",
                           f"the LLM's JSON does not match {model.__name__}: {exc.error_count()} errors") from exc
        return StructuredAnswer(value=value, usage=usage, raw=text)

    def ping(self) -> float:
        """Seconds taken to list the endpoint's models; raises :class:`LLMError` when it is down."""
        started = time.perf_counter()
        with self._translated_errors():
            self._client.models.list()
        return time.perf_counter() - started

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        # APITimeoutError subclasses APIConnectionError: order matters.
        try:
            yield
        except openai.APITimeoutError as exc:
            raise LLMError("llm_timeout", f"the LLM at {self.base_url} did not answer in time") from exc
        except openai.APIConnectionError as exc:
            raise LLMError("llm_unreachable", f"cannot reach the LLM at {self.base_url}") from exc
        except openai.APIStatusError as exc:
            raise LLMError("llm_http_error", f"the LLM at {self.base_url} answered HTTP {exc.status_code}") from exc

    def with_timeout(self, timeout_s: float) -> LLMClient:
        """A copy with another timeout (health probes must not wait two minutes)."""
        clone = object.__new__(LLMClient)
        clone.base_url, clone.model, clone.structured_mode = self.base_url, self.model, self.structured_mode
        clone.timeout_s = timeout_s
        clone._client = self._client.with_options(timeout=timeout_s, max_retries=0)
        return clone
