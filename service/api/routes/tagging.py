"""Tag raw text or a file without storing anything."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile

from indexers.document import TextBlock
from indexers.errors import IngestError
from service.api.auth import require
from service.api.deps import ComponentsDep
from service.api.errors import ApiError
from service.api.schemas import TagResultOut, TagResultTag, TagTextRequest
from service.api.uploads import safe_name, save_upload
from service.auth.keys import Principal
from service.ingest import IngestConfig, tag_file_unstored, tag_unstored
from service.llm.client import LLMCancelled
from service.runtime import Components
from service.tagging.result import Mode, TaggingResult

router = APIRouter(prefix="/v1/tag", tags=["tagging"])


def _out(result: TaggingResult) -> TagResultOut:
    return TagResultOut(tags=[TagResultTag(dimension=t.dimension, value=t.value, confidence=t.confidence,
                                           method=t.method, evidence=t.evidence,
                                           evidence_verified=t.evidence_verified, needs_review=t.needs_review)
                              for t in result.tags],
                        status=result.status, taxonomy=result.taxonomy, prompt_version=result.prompt_version,
                        models=result.models, prompt_tokens=result.prompt_tokens,
                        completion_tokens=result.completion_tokens)


def _interactive(c: Components, tag: Callable[[float], TaggingResult]) -> TagResultOut:
    # a person is waiting: the LLM gets the interactive deadline, not a background job's per-call timeout
    try:
        return _out(tag(c.settings.llm_interactive_deadline_s))
    except LLMCancelled as err:
        raise ApiError(503, "shutting_down", "The service is restarting; send the request again in a moment.") \
            from err


@router.post("", response_model=TagResultOut, summary="Tag text (nothing is stored)")
def tag_text(body: TagTextRequest, c: ComponentsDep,
             _: Annotated[Principal, Depends(require("tag:run"))]) -> TagResultOut:
    if not body.text.strip():
        raise ApiError(422, "empty_text", "The text is empty.")
    return _interactive(c, lambda deadline: tag_unstored(
        c.tagger, c.embedder, IngestConfig.of(c.settings), body.text, title=body.title, language=body.language,
        blocks=[TextBlock(text=body.text)], metadata={}, mode=body.mode, deadline_s=deadline))


@router.post("/file", response_model=TagResultOut, summary="Tag a file (nothing is stored)")
def tag_file(c: ComponentsDep, _: Annotated[Principal, Depends(require("tag:run"))],
             file: Annotated[UploadFile, File()], mode: Annotated[Mode | None, Form()] = None) -> TagResultOut:
    name = safe_name(file.filename)
    with tempfile.TemporaryDirectory(prefix="hcp-tag-") as tmp:
        path = Path(tmp) / name
        save_upload(file, path, c.settings.max_file_bytes)
        try:
            return _interactive(c, lambda deadline: tag_file_unstored(
                c.tagger, c.embedder, IngestConfig.of(c.settings), path, mode=mode, deadline_s=deadline))
        except IngestError as err:
            status = 415 if err.code in ("unsupported_type", "wrong_extension") else \
                413 if err.code in ("file_too_large", "zip_bomb") else 422
            raise ApiError(status, err.code, err.message, {"file": name}) from err

