"""LLM answers cached in the database: re-tagging an unchanged asset costs no tokens.

The key covers the content hash, the taxonomy version, the model names, the prompt version and the
exact messages sent (which the learned heads, the few-shot examples and the budget shape), so a
cached answer is only reused for exactly the question that produced it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from service.store.db import Database
from service.store.models import LLMTagCache


def cache_key(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


class TagCache:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: str) -> dict[str, Any] | None:
        with self.db.session() as s:
            row = s.get(LLMTagCache, key)
            return dict(row.answer) if row is not None else None

    def put(self, key: str, answer: dict[str, Any], model: str, prompt_version: str, prompt_tokens: int,
            completion_tokens: int) -> None:
        with self.db.session() as s:
            if s.get(LLMTagCache, key) is None:
                s.add(LLMTagCache(key=key, answer=answer, model=model, prompt_version=prompt_version,
                                  prompt_tokens=prompt_tokens, completion_tokens=completion_tokens))
