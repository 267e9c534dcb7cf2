"""Constrained string types for request contracts: the OpenAPI spec states each limit, pydantic enforces it.

Free text refuses ASCII control characters other than tab, line feed, form feed and carriage return:
PostgreSQL cannot store a NUL, a file path with one is an error in every OS call, and none of them belongs in a
title, a comment or a question. Identifiers follow the taxonomy's id pattern.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from service.core.taxonomy import ID_PATTERN

NO_CONTROL_CHARS = r"^[^\x00-\x08\x0b\x0e-\x1f\x7f]*$"
HCP_ID_PATTERN = r"^[\w.:@-]+$"
# a name shown to others (a key's, in the audit log): no control characters and no bidirectional controls, which
# make "admin\u202egnp.exe" read as something it is not
NO_CONTROL_OR_BIDI = r"^[^\x00-\x08\x0b\x0e-\x1f\x7f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$"


# free text; give each field its own length limit with Field(max_length=...)
Text = Annotated[str, StringConstraints(pattern=NO_CONTROL_CHARS)]
Name = Annotated[str, StringConstraints(pattern=NO_CONTROL_OR_BIDI)]
TaxonomyId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=ID_PATTERN)]
HcpId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=HCP_ID_PATTERN)]
# integer row ids are 32-bit in PostgreSQL; a larger number can name no row (and must not reach the driver)
INT32_MAX = 2**31 - 1
# asset, job and report ids are hex or UUID-like (and cursors URL-safe base64); nothing else can name one
RECORD_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
RecordId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=RECORD_ID_PATTERN)]
