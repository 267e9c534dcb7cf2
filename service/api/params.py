"""Path parameters shared by routes, with the limits the spec states (nothing outside them reaches the database)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from service.core.fields import HCP_ID_PATTERN, INT32_MAX, RECORD_ID_PATTERN

RecordIdPath = Annotated[str, Path(max_length=64, pattern=RECORD_ID_PATTERN, description="The record's id.")]
TagIdPath = Annotated[int, Path(ge=1, le=INT32_MAX, description="The tag's id.")]
HcpIdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=HCP_ID_PATTERN,
                                description="The CRM's pseudonymous HCP id.")]
