"""POST /v1/content/check: a draft's claims checked against the references it cites, before MLR review.

Nothing is stored but the audit entry: the draft and uploaded references are parsed from a temporary folder
that is gone when the answer is."""

from __future__ import annotations

import hashlib
import tempfile
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import BaseModel, Field

from indexers.document import ParsedDocument
from indexers.errors import IngestError
from indexers.reader import parse_file
from service.api.auth import require, scope_of
from service.api.deps import ComponentsDep, SessionDep
from service.api.errors import ApiError
from service.api.uploads import safe_name, save_upload
from service.auth.keys import Principal
from service.claims.check import ClaimChecker
from service.claims.draft import Passage, Reference, check_draft
from service.store import assets as asset_store
from service.store import audit

router = APIRouter(tags=["content"])
MAX_REFERENCES = 20
Checker = Annotated[Principal, Depends(require("content:check"))]


class CheckFlag(BaseModel):
    kind: str = Field(description="`unsupported_number`, `contradicts_source`, `off_label`, "
                      "`unsupported_superlative`, `missing_fair_balance`, `expired_reference` or "
                      "`unapproved_reference`.")
    detail: str
    claim: str | None = Field(None, description="The words that failed: a number, a comparison, a superlative.")
    score: float = Field(description="How surely the flag holds, 0-1 (1: a number or word simply absent).")
    sentence: str | None = Field(None, description="The draft's sentence (none for a reference's own flag).")
    start: int | None = Field(None, description="The sentence's character offsets in `text`.")
    end: int | None = None
    page: int | None = None
    slide: int | None = None
    reference: str | None = Field(None, description="The reference whose passage it failed on (asset id or file).")
    quote: str | None = Field(None, description="That reference's sentence: what contradicts the claim, or the "
                              "closest it comes.")
    chunk_id: str | None = None
    reference_page: int | None = None
    reference_slide: int | None = None


class CheckedReference(BaseModel):
    id: str
    title: str
    kind: str = Field(description="`asset` (stored) or `file` (uploaded with the draft).")
    approval_status: str | None = None
    valid_until: date | None = None


class ContentCheckOut(BaseModel):
    draft: str
    text: str = Field(description="The draft's text as parsed; flags point into it.")
    sentences: int
    claims: int
    flags: list[CheckFlag]
    references: list[CheckedReference]


def _parse(upload: UploadFile, folder: Path, limit: int, field: str) -> tuple[str, ParsedDocument, str]:
    name = safe_name(upload.filename)
    path = folder / f"{len(list(folder.iterdir()))}-{name}"
    save_upload(upload, path, limit)
    try:
        parsed, data = parse_file(path, display=name)
    except IngestError as err:
        status = 415 if err.code in ("unsupported_type", "wrong_extension") else \
            413 if err.code in ("file_too_large", "zip_bomb") else 422
        raise ApiError(status, err.code, err.message, {"file": name, "field": field}) from err
    return name, parsed, hashlib.sha256(data).hexdigest()


@router.post("/v1/content/check", response_model=ContentCheckOut,
             summary="Check a draft's claims against the references it cites (editors, reviewers)")
def check_content(
    c: ComponentsDep, s: SessionDep, principal: Checker,
    file: Annotated[UploadFile, File(description="The draft, in any format ingest reads.")],
    reference_ids: Annotated[list[str] | None, Form(description="Stored assets the draft cites.")] = None,
    references: Annotated[list[UploadFile] | None, File(description="Reference files not in the library.")] = None,
) -> ContentCheckOut:
    ids = list(dict.fromkeys(i.strip() for i in (reference_ids or []) if i and i.strip()))
    uploads = references or []
    if not ids and not uploads:
        raise ApiError(422, "no_references", "Name at least one reference: reference_ids (stored assets) or "
                       "references (files).")
    if len(ids) + len(uploads) > MAX_REFERENCES:
        raise ApiError(422, "too_many_references", f"At most {MAX_REFERENCES} references per check.",
                       {"limit": MAX_REFERENCES})
    scope = scope_of(principal, c)
    cited: list[Reference] = []
    out_refs: list[CheckedReference] = []
    for asset_id in ids:
        asset = asset_store.read_asset(s, asset_id)
        if asset is None or (scope is not None and scope.products and asset.product not in scope.products):
            raise ApiError(404, "reference_not_found", f"No asset {asset_id!r} to cite.", {"reference": asset_id})
        cited.append(Reference(asset.id, asset.title, [Passage(ch.text, ch.id, ch.page, ch.slide)
                                                       for ch in asset.chunks if ch.kind != "notes"],
                               approved=asset.approval_status == "approved", valid_until=asset.valid_until))
        out_refs.append(CheckedReference(id=asset.id, title=asset.title, kind="asset",
                                         approval_status=asset.approval_status, valid_until=asset.valid_until))
    with tempfile.TemporaryDirectory(prefix="hcp-check-") as tmp:
        folder = Path(tmp)
        name, draft, digest = _parse(file, folder, c.settings.max_file_bytes, "file")
        for upload in uploads:
            ref_name, parsed, _ = _parse(upload, folder, c.settings.max_file_bytes, "references")
            cited.append(Reference(ref_name, parsed.title or ref_name,
                                   [Passage(b.text, None, b.page, b.slide) for b in parsed.blocks
                                    if b.kind != "notes"]))
            out_refs.append(CheckedReference(id=ref_name, title=parsed.title or ref_name, kind="file"))
    report = check_draft(draft, cited, ClaimChecker(c.tagger.taxonomy))
    flags = [CheckFlag(kind=f.kind, detail=f.detail, claim=f.claim, score=f.score,
                       sentence=f.sentence.text if f.sentence else None,
                       start=f.sentence.start if f.sentence else None, end=f.sentence.end if f.sentence else None,
                       page=f.sentence.page if f.sentence else None, slide=f.sentence.slide if f.sentence else None,
                       reference=f.reference, quote=f.quote, chunk_id=f.chunk_id, reference_page=f.page,
                       reference_slide=f.slide) for f in report.flags]
    counts = Counter(f.kind for f in flags)
    # the check is audited (who checked which draft against what, and what it found); the draft is not kept
    audit.record(s, principal.key_id, principal.role, "content.check", "draft", digest, None,
                 {"draft": name, "references": [r.id for r in out_refs], "claims": report.claims,
                  "flags": dict(counts)})
    return ContentCheckOut(draft=name, text=report.text, sentences=report.sentences, claims=report.claims,
                           flags=flags, references=out_refs)
