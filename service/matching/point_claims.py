"""Talking points held to the claim checker: whether an LLM point's claims stand on the passages it cites.

An LLM point whose claims the checker flags (a number not in its passages, a comparison its source contradicts, an
off-label indication, a superlative the source never makes) is dropped with the reason and the sentence it failed
on; a point that stands keeps only the citations whose passage holds a sentence supporting it, and that sentence
becomes the citation's quote, so the console marks what the point rests on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from service.claims.check import ClaimChecker


@dataclass
class PointVerdict:
    problem: str | None = None  # a flag kind, or None when the point's claims stand
    claim: str | None = None
    quote: str | None = None
    detail: str | None = None
    support: dict[int, str] = field(default_factory=dict)  # cited passage index -> its supporting sentence


def check_point(checker: ClaimChecker, text: str, passages: list[str]) -> PointVerdict:
    """``text``'s claims against the passages it cites (each cited chunk's whole text, in citation order)."""
    result = checker.check(text, passages)
    if result.flags:
        worst = max(result.flags, key=lambda f: f.score)
        return PointVerdict(worst.kind, worst.claim, worst.quote, worst.detail)
    verdict = PointVerdict()
    for support in result.support:
        verdict.support.setdefault(support.passage, support.quote)
    return verdict
