"""A request the rules of a stage refuse, raised below the API and answered by it with one error shape.

Stages under the API (tagging, the store) must not import it, yet their refusals are what a user sees: a tag
that does not exist, a value outside the taxonomy, a tag already replaced. They raise ``Refused`` with a
machine-readable ``code`` and a message a person understands; ``service.api.errors`` answers it with the status
of its ``kind``."""

from __future__ import annotations

from typing import Any, Literal

Kind = Literal["not_found", "conflict", "invalid", "no_space", "unavailable"]


class Refused(Exception):
    def __init__(self, kind: Kind, code: str, message: str, details: Any | None = None) -> None:
        super().__init__(message)
        self.kind, self.code, self.message, self.details = kind, code, message, details
