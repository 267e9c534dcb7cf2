"""Coherent tags: what the taxonomy's ``implies`` says, the tagger keeps to.

A value that implies another (a key message its product, a disease or a product its therapy area) cannot hold
while what it implies does not. Each dimension's probabilities come from its own models, so the tags they choose
can disagree: a key message tagged and its product not. Then one of two claims must go: "some tagged value that
implies it holds" (1 - the product of their 1 - p: "Oncotinib" and "NSCLC" both argue for oncology) or "the
implied value does not hold" (1 - q). The more probable claim stays:

- the implied value is tagged too, at the probability of its most probable supporter;
- or the supporters are dropped, each held to q.

A tagged value also lends its probability to the implied value it agrees with (a value is never more probable
than what it implies). Dimensions read from the file's metadata are facts: never raised, only obeyed. So content
plainly about Cardiovex cannot carry an Oncotinib key message however its words read, and a confident product or
disease brings its therapy area with it when that dimension's own signal was weak. (Reading every dimension's
probability as independent evidence and conditioning on the implications counts the same words twice, a key
message's and its product's: on the sample gold that tagged products onto news items, so only disagreements are
mended.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from service.core.taxonomy import Dimension, Taxonomy

Pair = tuple[str, str]  # (dimension, value)
Select = Callable[[Dimension, dict[str, float]], list[str]]  # the values a dimension tags at these probabilities


class Coherence:
    """The taxonomy's implications, read once."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        # dimension -> value -> implied dimension -> the implied values (any one of them will do)
        self.needs: dict[str, dict[str, dict[str, set[str]]]] = {
            d.id: {v.id: {t: set(values) for t, values in v.implies.items()} for v in d.values if v.implies}
            for d in taxonomy.dimensions}

    def resolve(self, probs: dict[str, dict[str, float]], select: Select, fixed: Mapping[str, set[str]],
                calibrated: set[str] | frozenset[str] = frozenset()) -> dict[str, list[str]]:
        """The values each dimension of ``probs`` tags, held to the implications; ``probs`` is updated in place
        (implied values raised, dropped values lowered). ``fixed``: dimensions already decided from the file's
        metadata, with their values, which constrain the others and are never changed. An implied dimension in
        neither constrains nothing (a caller or gold that leaves it out). ``calibrated``: the dimensions whose
        probabilities mean what they say; where an implied dimension tags nothing and is not calibrated, its low
        probability is only the absence of evidence, and the implied value is tagged along."""
        chosen = {d: select(self.taxonomy.dimension(d), p) for d, p in probs.items()}
        dropped: set[Pair] = set()
        # each round either raises an implied value or drops a tagged one, and a dropped value is never tagged
        # again, so this ends; the bound only guards against a taxonomy this reasoning did not foresee
        for _ in range(1 + sum(len(v) for v in probs.values())):
            if not self._settle_one(probs, chosen, dropped, select, fixed, calibrated):
                return chosen
        return chosen

    def ruled_out(self, dim_id: str, value: str, chosen: Mapping[str, list[str]], fixed: Mapping[str, set[str]]
                  ) -> bool:
        """Whether ``value`` contradicts what is tagged: an implied dimension tags values, none of them one it
        implies (an Oncotinib key message on content tagged Cardiovex). Such a value is never offered to the LLM:
        an answer that names it, whatever the document told the model, would only be taken back."""
        for target_dim, targets in self.needs.get(dim_id, {}).get(value, {}).items():
            tagged = fixed.get(target_dim) or set(chosen.get(target_dim, []))
            if tagged and not tagged & targets:
                return True
        return False

    def _settle_one(self, probs: dict[str, dict[str, float]], chosen: dict[str, list[str]],
                    dropped: set[Pair], select: Select, fixed: Mapping[str, set[str]],
                    calibrated: set[str] | frozenset[str]) -> bool:
        """Lends tagged values' probability to the implied values they agree with, then mends the disagreement
        of the most probable tagged value (so a strong product settles its therapy area before a weak disease
        can claim another); False when nothing changed."""
        changed = False
        unmet: list[tuple[float, str, str, str, set[str]]] = []
        for dim_id, values in chosen.items():
            for value in values:
                p = probs[dim_id][value]
                for target_dim, targets in self.needs.get(dim_id, {}).get(value, {}).items():
                    if target_dim in fixed:
                        if not fixed[target_dim] & targets:
                            unmet.append((p, dim_id, value, target_dim, targets))
                        continue
                    if target_dim not in probs:
                        continue
                    theirs = probs[target_dim]
                    held = [t for t in chosen[target_dim] if t in targets]
                    if not held:
                        unmet.append((p, dim_id, value, target_dim, targets))
                        continue
                    best = max(held, key=lambda t: theirs[t])
                    if theirs[best] < p:  # never more probable than what it implies
                        theirs[best] = p
                        changed = True
        if not unmet:
            return changed
        p, dim_id, value, target_dim, targets = max(unmet, key=lambda u: u[0])
        if target_dim in fixed:
            self._drop(probs, chosen, dropped, [(dim_id, value)], 0.0, select)
            return True
        theirs = probs[target_dim]
        best = max(targets, key=lambda t: theirs.get(t, 0.0))
        q = theirs.get(best, 0.0)
        supporters = self._supporters(chosen, target_dim, best)
        doubt = math.prod(1 - probs[d][v] for d, v in supporters)
        # a contradiction (it tags another value) or a calibrated "no" is weighed; silence is not
        weighed = bool(chosen[target_dim]) or target_dim in calibrated
        if (1 - doubt > 1 - q or not weighed) and (target_dim, best) not in dropped:
            theirs[best] = max(q, max(probs[d][v] for d, v in supporters))
            dim = self.taxonomy.dimension(target_dim)
            chosen[target_dim] = [v for v in select(dim, theirs) if (target_dim, v) not in dropped]
            if best in chosen[target_dim]:
                return True
        self._drop(probs, chosen, dropped, supporters, theirs.get(best, 0.0), select)
        return True

    def _supporters(self, chosen: Mapping[str, list[str]], target_dim: str, target: str) -> list[Pair]:
        """The tagged values whose implication into ``target_dim`` ``target`` would satisfy and which have no
        other tagged value there that does."""
        out = []
        for dim_id, values in chosen.items():
            for value in values:
                targets = self.needs.get(dim_id, {}).get(value, {}).get(target_dim)
                if targets and target in targets and not set(chosen.get(target_dim, [])) & targets:
                    out.append((dim_id, value))
        return out

    def _drop(self, probs: dict[str, dict[str, float]], chosen: dict[str, list[str]], dropped: set[Pair],
              pairs: list[Pair], ceiling: float, select: Select) -> None:
        """Drops ``pairs``, each held to ``ceiling``; their dimensions choose again among the values not dropped
        (a single-valued one may then tag its next value)."""
        for dim_id, value in pairs:
            probs[dim_id][value] = min(probs[dim_id][value], ceiling)
            dropped.add((dim_id, value))
        for dim_id in {d for d, _ in pairs}:
            remaining = {v: p for v, p in probs[dim_id].items() if (dim_id, v) not in dropped}
            chosen[dim_id] = select(self.taxonomy.dimension(dim_id), remaining)
