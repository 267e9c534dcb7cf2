"""``hcp-content eval claims``: the claim checker on the perturbation set (samples/claims/), beside exact-text
linking, in one run.

Every claim is checked against the sample file it came from. A kind's recall is the share of its claims flagged
with the expected kind; the false-flag rate is the share of faithful claims (translations included) flagged with
anything. The checker's flags carry a score, so recall is reported at the lowest score threshold at which
the false-flag rate is at most ``max_false_flags``. The baseline is how PromoMats-style linking decides: a claim
is supported when 20 or more of its characters occur verbatim in the reference, and flagged otherwise.
Pieces: a piece with its safety statements dropped must be flagged for fair balance; the same piece as written
must not.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from indexers.reader import read_file
from service.claims.check import ClaimChecker
from service.claims.draft import unbalanced
from service.core.taxonomy import Taxonomy

FAITHFUL = ("faithful", "faithful_translated")
EXACT_CHARS = 20


@dataclass
class ClaimsReport:
    claims: int
    pieces: int
    threshold: float
    false_flag_rate: float
    baseline_false_flag_rate: float
    recall: dict[str, float]
    baseline_recall: dict[str, float]
    counts: dict[str, int]
    fair_balance_found: float
    fair_balance_false: float
    false_flags: list[dict[str, Any]] = field(default_factory=list)
    misses: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def exact_text_linked(claim: str, reference: str, chars: int = EXACT_CHARS) -> bool:
    """Whether ``chars`` or more consecutive characters of the claim occur verbatim in the reference."""
    if len(claim) < chars:
        return claim in reference
    return any(claim[i:i + chars] in reference for i in range(len(claim) - chars + 1))


def _load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate_claims(folder: Path, content: Path, taxonomy: Taxonomy, max_false_flags: float = 0.05
                    ) -> ClaimsReport:
    claims, pieces = _load(folder / "claims.jsonl"), _load(folder / "pieces.jsonl")
    checker = ClaimChecker(taxonomy)
    texts: dict[str, str] = {}
    sources: dict[str, list] = {}
    for ref in sorted({c["reference"] for c in claims} | {p["reference"] for p in pieces}):
        texts[ref] = read_file(content / ref, content).text
        sources[ref] = checker.sources([texts[ref]])
    scored = []  # (item, flag kinds with scores, baseline flagged)
    for item in claims:
        result = checker.check(item["text"], sources=sources[item["reference"]])
        scored.append((item, [(f.kind, f.score) for f in result.flags],
                       not exact_text_linked(item["text"], texts[item["reference"]])))
    faithful = [s for s in scored if s[0]["kind"] in FAITHFUL]
    thresholds = sorted({score for _, flags, _ in scored for _, score in flags} | {1.01})
    threshold = next(t for t in thresholds
                     if _rate([any(sc >= t for _, sc in flags) for _, flags, _ in faithful]) <= max_false_flags)
    kinds: dict[str, list[tuple[dict, list, bool]]] = defaultdict(list)
    for s in scored:
        if s[0]["kind"] not in FAITHFUL:
            kinds[s[0]["kind"]].append(s)
    recall = {kind: _rate([any(k in item["expect"] and sc >= threshold for k, sc in flags)
                           for item, flags, _ in rows]) for kind, rows in sorted(kinds.items())}
    baseline = {kind: _rate([b for _, _, b in rows]) for kind, rows in sorted(kinds.items())}
    dropped = [p for p in pieces if p["kind"] == "dropped_safety"]
    kept = [p for p in pieces if p["kind"] == "faithful"]
    lexicon = checker.lexicon
    return ClaimsReport(
        claims=len(claims), pieces=len(pieces), threshold=threshold,
        false_flag_rate=_rate([any(sc >= threshold for _, sc in flags) for _, flags, _ in faithful]),
        baseline_false_flag_rate=_rate([b for _, _, b in faithful]),
        recall=recall, baseline_recall=baseline,
        counts={**{k: len(v) for k, v in kinds.items()}, "faithful": len(faithful)},
        fair_balance_found=_rate([unbalanced(p["sentences"], lexicon) is not None for p in dropped]),
        fair_balance_false=_rate([unbalanced(p["sentences"], lexicon) is not None for p in kept]),
        false_flags=[{"id": item["id"], "text": item["text"], "flags": flags} for item, flags, _ in faithful
                     if any(sc >= threshold for _, sc in flags)],
        misses=[{"id": item["id"], "kind": item["kind"], "text": item["text"], "flags": flags}
                for item, flags, _ in scored if item["kind"] not in FAITHFUL
                and not any(k in item["expect"] and sc >= threshold for k, sc in flags)])


def _rate(values: list[bool]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0
