"""The only way the service reaches an LLM: the ``openai`` client against an OpenAI-compatible endpoint.

Structured output comes in two dialects:
- ``json_schema``: ``response_format={"type": "json_schema", "json_schema": {...}}`` (OpenAI, vLLM);
- ``json_object``: ``response_format={"type": "json_object", "schema": {...}}``, which llama.cpp
  servers enforce by grammar (they answer 500 to the ``json_schema`` form).
The answer is always validated against the pydantic model that produced the schema.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import httpx
import openai
from openai import OpenAI
from pydantic import BaseModel, ValidationError

T = TypeVar("T", bound=BaseModel)


class LLMError(RuntimeError):
    """The LLM could not give a usable answer. ``code`` says why, for callers and API errors."""

    def __init__(self, code: Literal["llm_timeout", "llm_unreachable", "llm_http_error", "llm_invalid_json",
                                     "llm_schema_mismatch", "llm_answer_rejected", "llm_disabled", "llm_interrupted",
                                     "llm_deadline", "llm_cancelled", "llm_shutting_down"],
                 message: str, *, feedback: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        # what was wrong with the answer itself, in words the model can act on (the JSON parser's position, each
        # field the schema refused, the caller's check): sent back when the task asks again; None for a fault
        # of the call (timeout, HTTP error), where there is nothing to tell the model
        self.feedback = feedback


FEEDBACK_ERRORS = 5  # the first few fields a schema refused are enough to act on; the rest repeat them


def validation_feedback(exc: ValidationError) -> str:
    """Each refused field as ``path: message`` (``key_message.1.confidence: Input should be less than or equal
    to 1``), the first :data:`FEEDBACK_ERRORS` of them."""
    errors = exc.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(the answer)'}: {e['msg']}" for e in errors[:FEEDBACK_ERRORS]]
    more = len(errors) - FEEDBACK_ERRORS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


class LLMCancelled(LLMError):
    """The call was called off by its caller (the gateway preempting a background call, or shutting down):
    not the LLM's failure, so callers do not fall back on it as they do on an error."""


PromptCounter = Callable[[list[dict[str, str]]], int]


def estimated_prompt_tokens(messages: list[dict[str, str]]) -> int:
    """Prompt tokens counted with cl100k (plus the chat template's few per message) for servers whose streamed
    answers carry no usage: an estimate, used only where the server gives no count of its own."""
    from service.core.tokens import count_tokens

    return sum(count_tokens(m.get("content", "")) + 4 for m in messages) + 3


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False  # the prompt count is ours, the server gave none (see PromptCounter)


@dataclass
class StructuredAnswer(Generic[T]):
    value: T
    usage: Usage
    raw: str


class LLMClient:
    """A thin, typed wrapper over ``openai.OpenAI`` for chat completions with structured output."""

    def __init__(self, base_url: str, model: str, *, api_key: str = "not-needed", timeout_s: float = 120.0,
                 max_retries: int = 1, structured_mode: Literal["json_schema", "json_object"] = "json_schema",
                 prompt_counter: PromptCounter | None = None) -> None:
        self.base_url = base_url
        self.model = model
        self.structured_mode = structured_mode
        self.timeout_s = timeout_s
        self.prompt_counter = prompt_counter or estimated_prompt_tokens
        self._client = OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=max_retries)

    def response_format(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        if self.structured_mode == "json_object":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}}

    def chat(self, messages: list[dict[str, str]], *, max_tokens: int = 512, temperature: float = 0.0,
             response_format: dict[str, Any] | None = None, timeout_s: float | None = None,
             cancel: threading.Event | None = None, on_closed: Callable[[], None] | None = None
             ) -> tuple[str, Usage]:
        """One chat completion; errors become :class:`LLMError` with a machine-readable code.

        With ``cancel`` the answer is streamed and the call can be called off: setting the event makes this
        return at once (:class:`LLMCancelled`), and the stream is closed at the next token, which is when a
        llama.cpp server notices and frees its slot (a non-streamed request runs to its end however the client
        gives up, and no server can interrupt the evaluation of a prompt it has started). ``on_closed`` is called
        once the HTTP request is over, which for a call given up is later than this returns: only then is the
        server free again."""
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                                  "temperature": temperature}
        if response_format is not None:
            kwargs["response_format"] = response_format
        if cancel is not None:
            # the connection keeps the client's own timeout: given up sooner, it stays open until the server's
            # next token, which is when the server is free again (closing it earlier would not stop the server)
            return self._streamed(self._client, kwargs, cancel, timeout_s or self.timeout_s, on_closed)
        client = self._client if timeout_s is None else self._client.with_options(timeout=timeout_s)
        with self._translated_errors():
            completion = client.chat.completions.create(**kwargs)
        text = (completion.choices[0].message.content or "") if completion.choices else ""
        usage = Usage()
        if completion.usage:
            usage = Usage(completion.usage.prompt_tokens or 0, completion.usage.completion_tokens or 0)
        return text, usage

    def _streamed(self, client: OpenAI, kwargs: dict[str, Any], cancel: threading.Event,
                  timeout_s: float, on_closed: Callable[[], None] | None = None) -> tuple[str, Usage]:
        """The answer streamed in a helper thread while this one waits for it, the call being called off or the
        timeout: httpx's timeout bounds each read, and a stream trickling a token at a time never trips it."""
        box: dict[str, Any] = {}
        finished, give_up = threading.Event(), threading.Event()
        deadline = time.monotonic() + timeout_s

        def run() -> None:
            try:
                with self._translated_errors():
                    # include_usage: OpenAI and vLLM then send the counts; servers that do not know it ignore it
                    stream = client.chat.completions.create(**kwargs, stream=True,
                                                            stream_options={"include_usage": True})
                    parts: list[str] = []
                    tokens, finish, usage = 0, None, None
                    for chunk in stream:
                        if cancel.is_set() or give_up.is_set():
                            stream.close()
                            return
                        if chunk.usage:
                            usage = chunk.usage
                        for choice in chunk.choices:
                            if choice.delta and choice.delta.content:
                                parts.append(choice.delta.content)
                                tokens += 1
                            finish = choice.finish_reason or finish
                box["answer"] = ("".join(parts), tokens, finish, usage)
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc
            finally:
                finished.set()
                if on_closed is not None:
                    on_closed()

        threading.Thread(target=run, name="hcp-llm-stream", daemon=True).start()
        while not finished.wait(0.05):
            if cancel.is_set():
                raise LLMCancelled("llm_cancelled", "the call was called off before the LLM finished")
            if time.monotonic() > deadline:
                give_up.set()
                raise LLMError("llm_timeout", f"the LLM at {self.base_url} did not answer in time")
        if "error" in box:
            raise box["error"]
        if "answer" not in box:
            raise LLMCancelled("llm_cancelled", "the call was called off before the LLM finished")
        text, tokens, finish, usage = box["answer"]
        if finish is None:  # the stream ended without a finish reason: the server cut it short
            raise LLMError("llm_interrupted", f"the LLM at {self.base_url} ended its answer early")
        if usage is not None and usage.prompt_tokens:
            return text, Usage(usage.prompt_tokens, usage.completion_tokens or tokens)
        return text, Usage(self.prompt_counter(kwargs["messages"]), tokens, estimated=True)

    def structured(self, messages: list[dict[str, str]], model: type[T], *, max_tokens: int = 512,
                   temperature: float = 0.0, timeout_s: float | None = None,
                   cancel: threading.Event | None = None, on_closed: Callable[[], None] | None = None
                   ) -> StructuredAnswer[T]:
        """A chat completion constrained to ``model``'s JSON schema and validated by it."""
        schema = model.model_json_schema()
        text, usage = self.chat(messages, max_tokens=max_tokens, temperature=temperature,
                                response_format=self.response_format(schema, model.__name__), timeout_s=timeout_s,
                                cancel=cancel, on_closed=on_closed)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LLMError("llm_invalid_json", f"the LLM answered text that is not JSON: {text[:200]!r}",
                           feedback=f"the answer is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                           ) from exc
        try:
            value = model.model_validate(data)
        except ValidationError as exc:
            raise LLMError("llm_schema_mismatch",
                           f"the LLM's JSON does not match {model.__name__}: {exc.error_count()} errors",
                           feedback=validation_feedback(exc)) from exc
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
            if isinstance(exc.__cause__, httpx.ConnectTimeout):  # never connected: not there, not slow
                raise LLMError("llm_unreachable", f"cannot reach the LLM at {self.base_url}") from exc
            raise LLMError("llm_timeout", f"the LLM at {self.base_url} did not answer in time") from exc
        except openai.APIConnectionError as exc:
            raise LLMError("llm_unreachable", f"cannot reach the LLM at {self.base_url}") from exc
        except openai.APIStatusError as exc:
            raise LLMError("llm_http_error", f"the LLM at {self.base_url} answered HTTP {exc.status_code}") from exc

    def with_timeout(self, timeout_s: float) -> LLMClient:
        """A copy with another timeout (health probes must not wait two minutes)."""
        clone = object.__new__(LLMClient)
        clone.base_url, clone.model, clone.structured_mode = self.base_url, self.model, self.structured_mode
        clone.timeout_s, clone.prompt_counter = timeout_s, self.prompt_counter
        clone._client = self._client.with_options(timeout=timeout_s, max_retries=0)
        return clone
