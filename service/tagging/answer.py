"""The LLM's answer as a pydantic model generated from the taxonomy: per dimension, a list of choices
whose ``value`` is an enum of that dimension's candidate ids. The JSON schema goes to the server
(llama.cpp turns it into a grammar), and the answer is validated against the same model."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from service.core.taxonomy import Taxonomy

EVIDENCE_MAX_CHARS = 160


def answer_model(taxonomy: Taxonomy, candidates: dict[str, list[str]], *, max_choices: int | None = None,
                 evidence_chars: int = EVIDENCE_MAX_CHARS) -> type[BaseModel]:
    """``max_choices`` caps a multi-valued dimension's list and ``evidence_chars`` each quote: a budgeted call's
    answer must fit the tokens it was given, or it is cut off mid-JSON."""
    fields: dict[str, Any] = {}
    for dim_id, values in candidates.items():
        if not values:
            continue
        dim = taxonomy.dimension(dim_id)
        choice = create_model(
            f"Choice_{dim_id}",
            __config__=ConfigDict(extra="forbid"),
            value=(Literal[tuple(values)], ...),  # type: ignore[valid-type,arg-type]
            confidence=(float, Field(ge=0.0, le=1.0)),
            evidence=(str, Field(max_length=evidence_chars)),
        )
        limit = 1 if dim.cardinality == "single" else min(len(values), max_choices or len(values))
        fields[dim_id] = (list[choice], Field(default_factory=list, max_length=limit))  # type: ignore[valid-type]
    return create_model("TaggingAnswer", __config__=ConfigDict(extra="forbid"), **fields)
